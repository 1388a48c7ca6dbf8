package quality_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/quality"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// The cached report equals a full recomputation after every change of the
// data, and is served from the cache only while nothing changed.
func TestCacheEqualsFullRecomputation(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	add := func(source string, traits ...string) {
		t.Helper()
		var evs []*portrait.Event
		for _, tr := range traits {
			n++
			evs = append(evs, &portrait.Event{MessageID: fmt.Sprintf("m%d", n), Type: "identify", Source: source,
				UserID: fmt.Sprintf("u%d", n%7), Traits: []byte(tr), Timestamp: at, ReceivedAt: at})
		}
		rej := []*portrait.Rejected{{Source: source, Index: n, Reason: "event has neither userId nor anonymousId", Raw: []byte(`{}`), ReceivedAt: at}}
		if _, err := db.Append(ctx, evs, rej); err != nil {
			t.Fatal(err)
		}
		last, err := db.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := proc.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	c := &quality.Cache{Store: db, Versions: db}
	check := func(step string, wantCached bool) {
		t.Helper()
		now := at.Add(time.Duration(n) * time.Minute)
		got, err := c.Report(ctx, now, 5)
		if err != nil {
			t.Fatal(err)
		}
		want, err := quality.Build(ctx, db, now, 5)
		if err != nil {
			t.Fatal(err)
		}
		if got.Freshness == nil || got.Freshness.Cached != wantCached || got.Freshness.DataVersion == "" {
			t.Fatalf("%s: freshness %+v, want cached=%v", step, got.Freshness, wantCached)
		}
		got.Freshness, got.GeneratedAt, want.GeneratedAt = nil, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: cached report differs from a full recomputation\ngot  %+v\nwant %+v", step, got, want)
		}
	}
	add("crm", `{"name":"张伟","phone":"13800138000","email":"zw@example.com"}`, `{"name":"王芳","phone":"not a phone"}`)
	check("first", false)
	check("unchanged", true)
	add("shop", `{"email":"broken@","city":"上海市"}`, `{"gender":"female"}`)
	check("after new events", false)
	check("unchanged again", true)
	if err := db.SaveImport(ctx, "imp1", "crm", "done", []byte(`{"source":"crm","rows":4,"accepted":3,"fields":{"phone":{"present":3,"valid":2,"invalid":1}}}`)); err != nil {
		t.Fatal(err)
	}
	check("after an import summary", false)
	// The report of a different top bound is a different report.
	r, err := c.Report(ctx, at, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Freshness.Cached {
		t.Fatal("a report with another top bound was served from the cache")
	}
}
