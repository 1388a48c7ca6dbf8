package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/tag"
)

// openSharedApp opens and starts an App on the PostgreSQL database at url
// with the given role and no bus (one "all" node plus api nodes).
func openSharedApp(t *testing.T, url, name, role string) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error"}
	cfg.Role, cfg.Node, cfg.AnalyticsEvery = role, name, 0
	a, err := OpenApp(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

// within polls ok every 50 ms for up to d.
func within(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two nodes on one PostgreSQL database: b applies events (role all), a is
// an api node. A tag defined through a reaches b without a restart, and b,
// the applier, evaluates it over the profiles it already holds (the
// backfill a's definition asked for, which a cannot run). A segment and a
// classification level defined through a reach b too.
func TestDefinitionsReachOtherNodes(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	b := openSharedApp(t, url, "b", "all")
	a := openSharedApp(t, url, "a", "api")

	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i := range 4 {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at, Traits: json.RawMessage(fmt.Sprintf(`{"age":%d}`, 20+10*i))})
	}
	if _, err := b.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b applies the events", func() bool { n, _ := b.DB.CountProfiles(ctx); return n == 4 })

	// The applier saves the traits it observes every 5 s; a learns their
	// types from the store.
	within(t, 20*time.Second, "a knows the trait age observed by b", func() bool { _, ok := a.Enrich.Traits.Enricher.Schema.Types()["age"]; return ok })
	if _, err := a.Enrich.Tags.Define(ctx, tag.Definition{Name: "over_35", Dimension: "basic", Expression: `age >= 35`}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	within(t, 10*time.Second, "b holds the tag defined through a", func() bool {
		return slices.ContainsFunc(b.Enrich.Tags.List(), func(d tag.Definition) bool { return d.Name == "over_35" })
	})
	tagged := func() []string {
		var out []string
		b.DB.AllProfiles(ctx, func(p *portrait.Profile) error {
			if slices.ContainsFunc(p.Tags, func(x portrait.ProfileTag) bool { return x.Name == "over_35" }) {
				out = append(out, p.ID)
			}
			return nil
		})
		return out
	}
	within(t, 10*time.Second, "b evaluates the tag over the profiles it holds", func() bool { return len(tagged()) == 2 })
	t.Logf("tag defined on a evaluated by b after %s", time.Since(start).Round(time.Millisecond))

	st, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "tagged", Expression: `"over_35" in tags`})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "b holds the segment created through a, with its members", func() bool {
		got, err := b.HTTP.Segments.Get(st.ID)
		return err == nil && got.Size == 2
	})
	if err := a.HTTP.Segments.Delete(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "b drops the segment deleted through a", func() bool {
		_, err := b.HTTP.Segments.Get(st.ID)
		return portrait.ErrorCode(err) == portrait.ENOTFOUND
	})

	if err := a.HTTP.Classifications.SetClassification(ctx, access.KindTrait, "age", "secret"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "b knows the classification level set through a", func() bool {
		l, ok := b.HTTP.Classifier.Trait("age")
		return ok && l.String() == "secret"
	})
}

// Rewrites asked of a node that does not apply are performed by the one
// that does, and the caller gets its answer: a's erasure returns b's
// receipt and the profile is gone; an erasure of an unknown profile
// returns b's not_found; a re-scoring returns how many b rewrote.
func TestRewritesAreForwardedToTheApplier(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	b := openSharedApp(t, url, "b", "all")
	a := openSharedApp(t, url, "a", "api")
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i := range 3 {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at, Traits: json.RawMessage(`{"plan":"gold"}`)})
	}
	if _, err := b.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b applies the events", func() bool { n, _ := b.DB.CountProfiles(ctx); return n == 3 })
	var ids []string
	b.DB.AllProfiles(ctx, func(p *portrait.Profile) error { ids = append(ids, p.ID); return nil })

	if err := a.mayRewrite(); portrait.ErrorCode(err) != portrait.EUNAVAILABLE {
		t.Fatalf("a may rewrite profiles itself: %v", err)
	}
	start := time.Now()
	rc, err := a.HTTP.Erasure.Erase(ctx, ids[0], "admin@test", "asked")
	if err != nil {
		t.Fatalf("an erasure through a: %v", err)
	}
	t.Logf("erasure forwarded and answered in %s", time.Since(start).Round(time.Millisecond))
	if rc.ProfileID != ids[0] || rc.By != "admin@test" || rc.Hash == "" {
		t.Errorf("receipt %+v", rc)
	}
	if _, err := b.DB.Profile(ctx, ids[0]); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the erased profile is still stored: %v", err)
	}
	if _, err := a.HTTP.Erasure.Erase(ctx, "no-such-profile", "admin@test", ""); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("erasing an unknown profile through a: %v, want %s", err, portrait.ENOTFOUND)
	}
	if _, err := a.Enrich.Traits.Rescore(ctx, ids[1:]); err != nil {
		t.Errorf("a re-scoring through a: %v", err)
	}
}
