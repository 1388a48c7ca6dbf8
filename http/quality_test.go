package http_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// GET /v1/quality is served from the cache while nothing changed and says
// so; once an import commits, the report counts it (rebuilt in the request,
// or, when a build is slow, after one background rebuild); a report older
// than 5 minutes is rebuilt in the request. TestAnswerCache covers the
// stale path exactly.
func TestQualityCachedUntilDataChanges(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := porthttp.NewServer()
	s.Now = clock
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Importer = &importer.Importer{Log: db, Runs: db, Parser: s.Parser}
	s.ImportRuns, s.QualityStore = db, db
	s.ImportDir = t.TempDir()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close(ctx); db.Close() })

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
	type state struct {
		cached, stale bool
		sources       int
	}
	quality := func() state {
		t.Helper()
		code, q := getJSON(t, ts.URL+"/v1/quality")
		if code != 200 {
			t.Fatalf("quality %d %v", code, q)
		}
		f, ok := q["freshness"].(map[string]any)
		if !ok || f["data_version"] == "" || f["computed_at"] == nil || f["max_stale_seconds"] != 300.0 {
			t.Fatalf("no freshness in %v", q)
		}
		return state{f["cached"] == true, f["stale"] == true, len(q["sources"].([]any))}
	}
	importAndWait("crm")
	if q := quality(); q != (state{false, false, 1}) {
		t.Fatalf("first report: %+v", q)
	}
	if q := quality(); q != (state{true, false, 1}) {
		t.Fatalf("unchanged data: %+v", q)
	}
	importAndWait("pos")
	// Changed: a report this cheap to build is rebuilt in the request; one
	// that took 50 ms or more (a loaded machine) is served stale while it
	// is rebuilt in the background, no sooner than 10 s after the last.
	if q := quality(); q != (state{false, false, 2}) {
		if q != (state{true, true, 1}) {
			t.Fatalf("right after a second import: %+v, want a rebuilt report or the previous one marked stale", q)
		}
		advance(11 * time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for q := quality(); q.stale || q.sources != 2; q = quality() {
			if time.Now().After(deadline) {
				t.Fatalf("the background rebuild never served both sources: %+v", q)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Beyond the staleness bound the request rebuilds it itself.
	importAndWait("shop")
	advance(6 * time.Minute)
	if q := quality(); q != (state{false, false, 3}) {
		t.Fatalf("after a third import, 6 minutes on: %+v, want a report rebuilt in the request", q)
	}
}
