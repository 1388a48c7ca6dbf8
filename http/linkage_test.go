package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// linkServer is the real server as serve wires it for linkage: the
// embedded store, the processor with trait cleaning running behind it,
// imports, and the linkage service reading the merge journal.
func linkServer(t *testing.T, traits []string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	for kind, secret := range map[string]string{portrait.KeyWrite: writeKey, portrait.KeyAdmin: adminKey} {
		if err := db.CreateKey(ctx, &portrait.Key{Kind: kind, Name: "web"}, secret); err != nil {
			t.Fatal(err)
		}
	}
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	proc := profile.NewProcessor(db, rules)
	proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	proc.Notify = db.Appended
	done := make(chan struct{})
	go func() { proc.Run(ctx); close(done) }()
	s := porthttp.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Parser.Blocked = rules.IsBlocked
	s.NormalizeID = rules.Normalize
	s.Lag = func() (int64, float64, error) { return 0, 0, nil }
	// As cmd/portrait wires it: an event is applied once the processor's
	// committed position passed it.
	s.Applied = func(ctx context.Context, id string) (bool, error) {
		ev, err := db.EventByMessageID(ctx, id)
		if err != nil || ev == nil {
			return false, err
		}
		return proc.Checkpoint() >= ev.Seq, nil
	}
	s.Importer = &importer.Importer{Log: db, Runs: db, Parser: s.Parser}
	s.ImportRuns, s.QualityStore = db, db
	s.ImportDir = t.TempDir()
	s.Linkage = &linkage.Service{Profiles: db, Store: db, Log: db, Journal: db, Now: time.Now, Traits: traits}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		cancel()
		<-done
		db.Close()
	})
	return &server{url: s.URL(), db: db, proc: proc}
}

func (s *server) admin(t *testing.T, method, path string) resp {
	return s.do(t, method, path, nil, map[string]string{"Authorization": "Bearer " + adminKey})
}

// A customer known online is imported again from the CRM under another
// CRM id, with the phone and e-mail typed differently. The user_id limit
// keeps the two profiles apart, rightly so for the merge, but the import
// summary and the duplicates listing must show them for review. A family
// member sharing only the phone is not a probable duplicate.
func TestImportShowsProbableDuplicates(t *testing.T) {
	s := linkServer(t, nil)
	r := s.post(t, "/v1/identify", `{"userId":"cust-00017","traits":{"name":"朱秀英","phone":"138 1234 5678","email":"zhu.xiuying@qq.com","city":"厦门"}}`)
	if r.status != 200 {
		t.Fatalf("identify: %d %s", r.status, r.raw)
	}
	r = s.post(t, "/v1/identify", `{"userId":"cust-00018","traits":{"name":"王芳","phone":"13900001111","email":"wangfang@163.com"}}`)
	if r.status != 200 {
		t.Fatalf("identify: %d %s", r.status, r.raw)
	}
	s.settle(t)

	csv := "crm_id,name,email,phone\n" +
		"C-9001,朱秀英, Zhu.Xiuying@QQ.com ,+86 138-1234-5678\n" + // the same customer
		"C-9002,王小明,xiaoming@163.com,13900001111\n" + // shares only a phone: a family member
		"C-9003,李娜,lina@126.com,13700002222\n"
	mapping := "identity: {user_id: crm_id}\ncolumns:\n  - {column: name, trait: name, kind: name}\n  - {column: email, trait: email, kind: email}\n  - {column: phone, trait: phone, kind: phone}\n"
	resp, out := upload(t, s.url, map[string]string{"source": "crm", "format": "csv", "mapping": mapping}, []byte(csv))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %v", resp.StatusCode, out)
	}
	id := out["id"].(string)
	var sum map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, st := getJSON(t, s.url+"/v1/imports/"+id); st["state"] == importer.StateDone || st["state"] == importer.StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("import did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.settle(t)
	if _, sum = getJSON(t, s.url+"/v1/imports/"+id); sum["state"] != "done" {
		t.Fatalf("import: %v", sum)
	}
	pd, _ := sum["probable_duplicates"].(map[string]any)
	if pd == nil || pd["count"] != 1.0 {
		t.Fatalf("import summary probable_duplicates = %v, want one pair", sum["probable_duplicates"])
	}
	pair := pd["pairs"].([]any)[0].(map[string]any)
	var shared []string
	for _, x := range pair["shared"].([]any) {
		shared = append(shared, x.(map[string]any)["type"].(string))
	}
	if strings.Join(shared, ",") != "email,phone" {
		t.Errorf("shared %v, want email and phone", shared)
	}
	online, err := s.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: "cust-00017"})
	if err != nil {
		t.Fatal(err)
	}
	crm, err := s.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: "C-9001"})
	if err != nil {
		t.Fatal(err)
	}
	if online.ID == crm.ID {
		t.Fatal("the limit did not keep the two user ids apart")
	}
	if got := []string{pair["a_profile"].(string), pair["b_profile"].(string)}; !(got[0] == online.ID && got[1] == crm.ID || got[0] == crm.ID && got[1] == online.ID) {
		t.Errorf("pair %v, want %s and %s", got, online.ID, crm.ID)
	}

	r = s.admin(t, "GET", "/v1/linkage/duplicates")
	if r.status != 200 || r.body["count"] != 1.0 {
		t.Fatalf("GET /v1/linkage/duplicates: %d %s", r.status, r.raw)
	}
	if r = s.admin(t, "GET", "/v1/linkage/duplicates?limit=x"); r.status != 400 {
		t.Errorf("bad limit: %d %s", r.status, r.raw)
	}
}

// FEBRL through the API: every record is an identify call from a system
// that gave it its own anonymous id, a linkage run merges what it finds
// through the identity graph, and the merged profiles, read back through
// the API, are scored against the truth in the record ids.
func TestDatasetFEBRLThroughTheAPI(t *testing.T) {
	dir := sharedDataDir(t)
	for _, tc := range []struct {
		file         string
		minP, minR   float64
		minCP, minCR float64
	}{
		{"dataset1.csv", 0.99, 0.99, 0.98, 0.98},
		{"dataset2.csv", 0.99, 0.97, 0.97, 0.95},
	} {
		t.Run(tc.file, func(t *testing.T) {
			recs := readFEBRL(t, filepath.Join(dir, "febrl", tc.file))
			s := linkServer(t, []string{"first_name", "last_name", "address", "city", "postcode", "state", "birth_date", "soc_sec_id"})
			var batch []map[string]any
			send := func() {
				if len(batch) == 0 {
					return
				}
				b, _ := json.Marshal(map[string]any{"batch": batch})
				if r := s.post(t, "/v1/batch", string(b)); r.status != 200 {
					t.Fatalf("batch: %d %s", r.status, r.raw)
				}
				batch = batch[:0]
			}
			for _, r := range recs {
				traits := map[string]string{"first_name": r["given_name"], "last_name": r["surname"],
					"address": strings.TrimSpace(r["street_number"] + " " + r["address_1"] + " " + r["address_2"]),
					"city":    r["suburb"], "postcode": r["postcode"], "state": r["state"], "birth_date": r["date_of_birth"], "soc_sec_id": r["soc_sec_id"]}
				for k, v := range traits {
					if v == "" {
						delete(traits, k)
					}
				}
				batch = append(batch, map[string]any{"type": "identify", "anonymousId": r["rec_id"], "messageId": "febrl-" + r["rec_id"], "traits": traits})
				if len(batch) == 200 {
					send()
				}
			}
			send()
			s.settle(t)
			run := s.admin(t, "POST", "/v1/linkage/runs")
			if run.status != 200 {
				t.Fatalf("linkage run: %d %s", run.status, run.raw)
			}
			if run.body["model_credible"] != true {
				t.Fatalf("model not credible on FEBRL: %s", run.raw)
			}
			s.settle(t)

			// Read every record's profile back through the API.
			labels := make([]string, len(recs))
			entity := map[string][]int{}
			truth := regexp.MustCompile(`rec-(\d+)`)
			for i, r := range recs {
				labels[i] = truth.FindStringSubmatch(r["rec_id"])[1]
				p := s.get(t, "/v1/profiles/lookup?type=anonymous_id&value="+url.QueryEscape(r["rec_id"]))
				if p.status != 200 {
					t.Fatalf("lookup %s: %d %s", r["rec_id"], p.status, p.raw)
				}
				pid := p.body["id"].(string)
				entity[pid] = append(entity[pid], i)
			}
			var entities [][]int
			for _, e := range entity {
				entities = append(entities, e)
			}
			var pairs [][2]int
			for _, e := range entities {
				for x := range e {
					for y := x + 1; y < len(e); y++ {
						pairs = append(pairs, [2]int{e[x], e[y]})
					}
				}
			}
			ps := linkage.Evaluate(pairs, labels)
			cs := linkage.EvaluateClusters(entities, labels)
			t.Logf("%s: run %s; merged profiles %d: pairs P=%.4f R=%.4f F1=%.4f; profiles P=%.4f R=%.4f F1=%.4f (%d true, %d merged)",
				tc.file, run.raw, len(entity), ps.Precision, ps.Recall, ps.F1, cs.Precision, cs.Recall, cs.F1, cs.TrueClusters, cs.PredictedClusters)
			if ps.Precision < tc.minP || ps.Recall < tc.minR || cs.Precision < tc.minCP || cs.Recall < tc.minCR {
				t.Errorf("below the floor: pairs P %.4f R %.4f (want ≥ %.2f, %.2f), profiles P %.4f R %.4f (want ≥ %.2f, %.2f)",
					ps.Precision, ps.Recall, tc.minP, tc.minR, cs.Precision, cs.Recall, tc.minCP, tc.minCR)
			}
		})
	}
}

func sharedDataDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		for _, p := range []string{filepath.Join(d, "data"), d} {
			if fi, err := os.Stat(filepath.Join(p, "febrl")); err == nil && fi.IsDir() {
				return p
			}
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data")
		if fi, err := os.Stat(filepath.Join(p, "febrl")); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("FEBRL data not found: set PORTRAIT_SHARED or run below a directory containing shared/data")
		}
		dir = parent
	}
}

func readFEBRL(t *testing.T, path string) []linkage.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("FEBRL file %s not available: %v", path, err)
	}
	defer f.Close()
	_, recs, err := linkage.ReadCSV(f, filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal(fmt.Sprintf("%s: no records", path))
	}
	return recs
}
