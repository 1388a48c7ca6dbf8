package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/delivery"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// Insight, set operations, list uploads, lookalikes and activation
// exports over HTTP, on profiles built from events.
func TestInsightAndAudiencesOverHTTP(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	defer db.Close()
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Now = func() time.Time { return now }
	svc := segment.NewService(segment.NewIndex(), db)
	svc.Now, svc.Behaviour = proc.Now, db.SegmentBehaviour
	proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		if err := svc.Apply(ctx, c, d, applied); err != nil {
			t.Error(err)
		}
	}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Segments, s.NormalizeID = svc, clean.Identifier
	drop := t.TempDir()
	s.Deliveries = delivery.NewService(db, s.ActivationRows)
	s.Deliveries.Dir = drop
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	var evs []*portrait.Event
	for i := range 120 {
		city, plan := "北京市", "basic"
		if i%3 == 0 {
			city = "上海市"
		}
		if i < 40 {
			plan = "gold"
			if i%4 != 0 {
				city = "上海市" // gold customers live in Shanghai more often
			}
		}
		traits := fmt.Sprintf(`{"city": %q, "plan": %q, "age": %d, "phone": "+86138001%05d", "email": "User%d@Example.com"}`, city, plan, 20+i%30, i, i)
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, UserID: fmt.Sprint("u", i), Traits: json.RawMessage(traits),
			Timestamp: now.Add(-time.Hour), MessageID: fmt.Sprint("m", i), ReceivedAt: now.Add(-time.Hour)})
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := proc.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	call := func(method, path, ctype string, body []byte) (int, map[string]any, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		json.Unmarshal(raw, &out)
		return res.StatusCode, out, raw, res.Header
	}
	create := func(body string) string {
		t.Helper()
		code, out, raw, _ := call("POST", "/v1/segments", "application/json", []byte(body))
		if code != 201 {
			t.Fatalf("create %s: %d %s", body, code, raw)
		}
		return out["id"].(string)
	}
	gold := create(`{"name": "gold", "expression": "traits.plan == \"gold\""}`)
	shanghai := create(`{"name": "shanghai", "expression": "traits.city == \"上海市\""}`)

	// insight: the interface names, and Shanghai over-represented among gold
	code, out, raw, _ := call("GET", "/v1/segments/"+gold+"/insight?base=all", "", nil)
	if code != 200 {
		t.Fatalf("insight: %d %s", code, raw)
	}
	var sh map[string]any
	for _, a := range out["attributes"].([]any) {
		m := a.(map[string]any)
		for _, k := range []string{"attribute", "value", "share_target", "share_base", "tgi", "p_value", "significant"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("attribute row without %s: %v", k, m)
			}
		}
		if m["attribute"] == "traits.city" && m["value"] == "上海市" {
			sh = m
		}
	}
	if sh == nil || sh["tgi"].(float64) < 150 || sh["significant"] != true {
		t.Errorf("Shanghai among gold: %v", sh)
	}
	if num, _ := out["numeric"].([]any); len(num) != 1 || num[0].(map[string]any)["attribute"] != "traits.age" {
		t.Errorf("numeric: %v", out["numeric"])
	}
	if code, _, raw, _ = call("GET", "/v1/segments/"+gold+"/insight?base="+shanghai, "", nil); code != 200 || !strings.Contains(string(raw), `"base_size":`) {
		t.Errorf("insight against a segment: %d %s", code, raw)
	}
	if code, _, _, _ = call("GET", "/v1/segments/"+gold+"/insight?base=seg_nope", "", nil); code != 404 {
		t.Errorf("unknown base: %d", code)
	}

	// set operations
	both := create(fmt.Sprintf(`{"name": "gold in Shanghai", "intersect": [%q, %q]}`, gold, shanghai))
	if _, out, _, _ = call("GET", "/v1/segments/"+both, "", nil); out["size"] != 34.0 {
		t.Errorf("gold ∩ Shanghai: %v", out["size"])
	}

	// a list upload: three known phones (in other spellings), one unknown,
	// one invalid
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("name", "uploaded")
	fw, _ := mw.CreateFormFile("file", "list.csv")
	io.WriteString(fw, "phone\n138 0010 0001\n0086 13800100002\n+8613800100003\n+8613999999999\nabc\n")
	mw.Close()
	code, out, raw, _ = call("POST", "/v1/segments/upload", mw.FormDataContentType(), form.Bytes())
	if code != 201 {
		t.Fatalf("upload: %d %s", code, raw)
	}
	rep := out["report"].(map[string]any)
	if rep["rows"] != 5.0 || rep["matched"] != 3.0 || rep["unmatched"] != 1.0 || rep["invalid"] != 1.0 || rep["match_rate"] != 0.6 {
		t.Errorf("report %v", rep)
	}
	uploaded := out["segment"].(map[string]any)["id"].(string)

	// activation export of the uploaded segment, hashed
	code, _, raw, hdr := call("GET", "/v1/segments/"+uploaded+"/export?format=csv&hash=sha256&identifiers=phone,email", "", nil)
	if code != 200 {
		t.Fatalf("export: %d %s", code, raw)
	}
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(recs) != 4 || !slices.Equal(recs[0], []string{"phone_sha256", "email_sha256"}) || hdr.Get("X-Portrait-Skipped") != "0" {
		t.Fatalf("export: %v %v %q", recs, err, raw)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0]+" "+r[1])
	}
	slices.Sort(got)
	var want []string
	for i := 1; i <= 3; i++ {
		want = append(want, sum(fmt.Sprintf("+86138001%05d", i))+" "+sum(fmt.Sprintf("user%d@example.com", i)))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("hashed rows %v, want %v", got, want)
	}
	if code, _, _, _ = call("GET", "/v1/segments/"+uploaded+"/export?identifiers=fax", "", nil); code != 400 {
		t.Errorf("unknown identifier type: %d", code)
	}

	// a scheduled delivery of the same file to the drop, run now, recorded
	code, out, raw, _ = call("POST", "/v1/segment-deliveries", "application/json", []byte(fmt.Sprintf(`{"segment_id": %q, "identifiers": ["phone", "email"], "hash": true, "target": {"kind": "file", "name": "uploaded"}, "every": "24h"}`, uploaded)))
	if code != 201 {
		t.Fatalf("delivery: %d %s", code, raw)
	}
	dlv := out["id"].(string)
	code, out, raw, _ = call("POST", "/v1/segment-deliveries/"+dlv+"/run", "", nil)
	if code != 200 || out["status"] != "ok" || out["rows"] != 3.0 {
		t.Fatalf("run: %d %s", code, raw)
	}
	if b, err := os.ReadFile(out["where"].(string)); err != nil || string(b) != strings.Join(append([]string{"phone_sha256,email_sha256"}, func() []string {
		var l []string
		for _, r := range recs[1:] {
			l = append(l, strings.Join(r, ","))
		}
		return l
	}()...), "\n")+"\n" {
		t.Errorf("dropped file %q %v, want the export's rows", b, err)
	}
	dropped, _ := os.ReadFile(out["where"].(string))
	runID := int64(out["id"].(float64))
	if code, out, _, _ = call("GET", "/v1/segment-deliveries/"+dlv+"/runs", "", nil); code != 200 || len(out["runs"].([]any)) != 1 {
		t.Errorf("runs: %d %v", code, out)
	}
	// the download path gives the dropped file back
	if code, _, raw, _ = call("GET", fmt.Sprintf("/v1/segment-deliveries/%s/runs/%d/file", dlv, runID), "", nil); code != 200 || string(raw) != string(dropped) {
		t.Errorf("download: %d %q, want %q", code, raw, dropped)
	}
	if code, _, _, _ = call("GET", fmt.Sprintf("/v1/segment-deliveries/%s/runs/%d/file", dlv, runID+99), "", nil); code != 404 {
		t.Errorf("download of a run that is not: %d", code)
	}
	if code, _, _, _ = call("POST", "/v1/segment-deliveries", "application/json", []byte(fmt.Sprintf(`{"segment_id": %q, "identifiers": ["phone"], "target": {"kind": "file", "name": "../x"}, "every": "24h"}`, uploaded))); code != 400 {
		t.Errorf("a file name leaving the drop: %d", code)
	}

	// lookalike: evaluate, then save the top 10
	code, out, raw, _ = call("POST", "/v1/segments/"+gold+"/lookalike", "application/json", []byte(`{"size": 10, "name": "like gold"}`))
	if code != 201 {
		t.Fatalf("lookalike: %d %s", code, raw)
	}
	model := out["model"].(map[string]any)
	if model["excluded"].([]any)[0] != "trait:plan" || len(model["curve"].([]any)) == 0 || len(model["top_features"].([]any)) == 0 {
		t.Errorf("lookalike model %s", raw)
	}
	if out["segment"].(map[string]any)["size"] != 10.0 {
		t.Errorf("saved lookalike: %v", out["segment"])
	}
}
