package http_test

import (
	"testing"
	"time"
)

// GET /v1/quality is served from the cache while nothing changed, says so,
// and is recomputed as soon as an import commits new data.
func TestQualityCachedUntilDataChanges(t *testing.T) {
	ts, _ := importServer(t)
	importAndWait := func(source string) {
		t.Helper()
		resp, out := upload(t, ts.URL, map[string]string{"source": source, "format": "csv", "mapping": peopleMap}, []byte(peopleCSV))
		if resp.StatusCode != 202 {
			t.Fatalf("upload: %d %v", resp.StatusCode, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, s := getJSON(t, ts.URL+"/v1/imports/"+out["id"].(string))
			if s["state"] == "done" {
				return
			}
			if s["state"] == "failed" || time.Now().After(deadline) {
				t.Fatalf("import %v", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	quality := func() (cached bool, sources int) {
		t.Helper()
		code, q := getJSON(t, ts.URL+"/v1/quality")
		if code != 200 {
			t.Fatalf("quality %d %v", code, q)
		}
		f, ok := q["freshness"].(map[string]any)
		if !ok || f["data_version"] == "" || f["computed_at"] == nil {
			t.Fatalf("no freshness in %v", q)
		}
		return f["cached"] == true, len(q["sources"].([]any))
	}
	importAndWait("crm")
	if cached, n := quality(); cached || n != 1 {
		t.Fatalf("first report: cached=%v sources=%d", cached, n)
	}
	if cached, n := quality(); !cached || n != 1 {
		t.Fatalf("unchanged data: cached=%v sources=%d", cached, n)
	}
	importAndWait("pos")
	if cached, n := quality(); cached || n != 2 {
		t.Fatalf("after a second import: cached=%v sources=%d, want a recomputed report with both sources", cached, n)
	}
}
