package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func importServer(t *testing.T) (*httptest.Server, *sqlite.DB) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Importer = &importer.Importer{Log: db, Runs: db, Parser: s.Parser}
	s.ImportRuns, s.QualityStore = db, db
	s.ImportDir = t.TempDir()
	ts := httptest.NewServer(s.Handler())
	// The server owns background imports: Close stops and waits for them,
	// so none writes to the store after it is closed.
	t.Cleanup(func() { ts.Close(); s.Close(ctx); db.Close() })
	return ts, db
}

func upload(t *testing.T, url string, fields map[string]string, file []byte) (*http.Response, map[string]any) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "people.csv")
		fw.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", url+"/v1/imports", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The third row has only an email, which identifies it; the fourth has no
// crm_id and no valid identifier.
const peopleCSV = "crm_id,email,phone\nc1, Zhang.San@Example.COM ,13800138000\nc2,broken,\n,nobody@example.com,\n,broken-too,\n"
const peopleMap = "identity: {user_id: crm_id}\ncolumns:\n  - {column: email, trait: email, kind: email}\n  - {column: phone, trait: phone, kind: phone}\n"

func TestImportUploadAndPoll(t *testing.T) {
	ts, db := importServer(t)
	resp, out := upload(t, ts.URL, map[string]string{"source": "crm", "format": "csv", "mapping": peopleMap}, []byte(peopleCSV))
	if resp.StatusCode != http.StatusAccepted || out["id"] == "" {
		t.Fatalf("upload: %d %v", resp.StatusCode, out)
	}
	id := out["id"].(string)
	var st map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, s := getJSON(t, ts.URL+"/v1/imports/"+id)
		if code != 200 {
			t.Fatalf("status %d %v", code, s)
		}
		if s["state"] == importer.StateDone || s["state"] == importer.StateFailed {
			st = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still %v", s["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st["state"] != "done" || st["rows"] != 4.0 || st["accepted"] != 3.0 || st["quarantined"] != 1.0 {
		t.Fatalf("summary %v", st)
	}
	if r := st["reasons"].(map[string]any); r["event has neither userId nor anonymousId"] != 1.0 {
		t.Errorf("reasons %v", r)
	}
	if n, _ := db.CountEvents(context.Background()); n != 3 {
		t.Errorf("%d events logged", n)
	}

	// The quality report counts the import's fields and quarantine.
	code, q := getJSON(t, ts.URL+"/v1/quality")
	if code != 200 {
		t.Fatalf("quality %d %v", code, q)
	}
	srcs := q["sources"].([]any)
	if len(srcs) != 1 {
		t.Fatalf("sources %v", srcs)
	}
	src := srcs[0].(map[string]any)
	if src["source"] != "crm" || src["quarantined"] != 1.0 || src["events"] != 3.0 {
		t.Errorf("source %v", src)
	}
	var email map[string]any
	for _, f := range src["fields"].([]any) {
		if f.(map[string]any)["field"] == "trait:email" {
			email = f.(map[string]any)
		}
	}
	if email == nil || email["present"] != 4.0 || email["invalid"] != 2.0 || email["validity"] != 2.0/4.0 {
		t.Errorf("email quality %v", email)
	}
}

func TestImportUploadErrors(t *testing.T) {
	ts, _ := importServer(t)
	for _, tc := range []struct {
		fields map[string]string
		file   []byte
		want   int
	}{
		{map[string]string{"format": "csv"}, []byte(peopleCSV), 400},                                        // no source
		{map[string]string{"source": "crm"}, nil, 400},                                                      // no file
		{map[string]string{"source": "crm", "mapping": "mode: nonsense"}, []byte(peopleCSV), 400},           // bad mapping
		{map[string]string{"source": "crm", "mapping": peopleMap, "colour": "red"}, []byte(peopleCSV), 400}, // unknown field
	} {
		resp, out := upload(t, ts.URL, tc.fields, tc.file)
		if resp.StatusCode != tc.want {
			t.Errorf("%v: %d %v, want %d", tc.fields, resp.StatusCode, out, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/quality", nil)
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 401 {
		t.Errorf("quality without a token: %d", resp.StatusCode)
	}
	if code, _ := getJSON(t, ts.URL+"/v1/imports/imp_nope"); code != 404 {
		t.Errorf("unknown import: %d", code)
	}
}

// GET /v1/imports lists the imports, most recent first, a page at a time.
func TestImportList(t *testing.T) {
	ts, _ := importServer(t)
	var ids []string
	for i, src := range []string{"crm", "pos", "survey"} {
		resp, out := upload(t, ts.URL, map[string]string{"source": src, "format": "csv", "mapping": peopleMap}, []byte(peopleCSV))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload %d: %d %v", i, resp.StatusCode, out)
		}
		id := out["id"].(string)
		ids = append(ids, id)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, st := getJSON(t, ts.URL+"/v1/imports/"+id)
			if st["state"] == importer.StateDone {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("import %s: %v", id, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Millisecond) // distinct update times
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		url := ts.URL + "/v1/imports?limit=2"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		code, out := getJSON(t, url)
		if code != 200 {
			t.Fatalf("list: %d %v", code, out)
		}
		for _, x := range out["imports"].([]any) {
			doc := x.(map[string]any)
			if doc["state"] != "done" || doc["rows"] != 4.0 {
				t.Errorf("listed import %v", doc)
			}
			got = append(got, doc["id"].(string))
		}
		next, _ := out["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 3 || got[0] != ids[2] || got[1] != ids[1] || got[2] != ids[0] {
		t.Errorf("listed %v, want newest first %v", got, []string{ids[2], ids[1], ids[0]})
	}
	if code, _ := getJSON(t, ts.URL+"/v1/imports?cursor=garbage"); code != 400 {
		t.Errorf("a bad cursor: %d", code)
	}
}

// Without a mapping and without an identifying column, the API's error
// tells how to send a mapping through the API, not the command line's flag.
func TestImportErrorNamesTheAPIField(t *testing.T) {
	ts, _ := importServer(t)
	resp, out := upload(t, ts.URL, map[string]string{"source": "crm", "format": "csv"}, []byte("name,city\n王芳,北京\n"))
	e, _ := out["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if resp.StatusCode != 400 || strings.Contains(msg, "--map") || !strings.Contains(msg, `form field "mapping"`) {
		t.Errorf("%d %q", resp.StatusCode, msg)
	}
}

// The upload answer and the status show the mapping used: the one given,
// or the one inferred from the header, column by column.
func TestImportShowsMapping(t *testing.T) {
	ts, _ := importServer(t)
	columns := func(m any) map[string]string {
		t.Helper()
		mm, ok := m.(map[string]any)
		if !ok {
			t.Fatalf("no mapping: %v", m)
		}
		out := map[string]string{}
		for _, c := range mm["columns"].([]any) {
			c := c.(map[string]any)
			kind, _ := c["kind"].(string)
			out[c["column"].(string)] = c["field"].(string) + "/" + kind
		}
		return out
	}
	resp, out := upload(t, ts.URL, map[string]string{"source": "crm", "format": "csv", "mapping": peopleMap}, []byte(peopleCSV))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %v", resp.StatusCode, out)
	}
	want := map[string]string{"crm_id": "userId/", "email": "traits.email/email", "phone": "traits.phone/phone"}
	if got := columns(out["mapping"]); !maps.Equal(got, want) || out["mapping"].(map[string]any)["inferred"] != false {
		t.Errorf("given mapping: %v", out["mapping"])
	}
	// Once done, the stored summary keeps it.
	id := out["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, st := getJSON(t, ts.URL+"/v1/imports/"+id)
		if st["state"] == importer.StateDone {
			if got := columns(st["mapping"]); !maps.Equal(got, want) {
				t.Errorf("mapping of the finished import: %v", st["mapping"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still %v", st["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Without a mapping: 手机 is read as the phone, customer_id as the user.
	resp, out = upload(t, ts.URL, map[string]string{"source": "shop"}, []byte("customer_id,姓名,手机\n7,王芳,13912345678\n"))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %v", resp.StatusCode, out)
	}
	got := columns(out["mapping"])
	if got["customer_id"] != "userId/" || got["手机"] != "traits.phone/phone" || out["mapping"].(map[string]any)["inferred"] != true {
		t.Errorf("inferred mapping: %v", out["mapping"])
	}
}
