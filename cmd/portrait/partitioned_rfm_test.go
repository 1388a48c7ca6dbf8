package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/traits"
)

// Under partitioned application the node that recomputes the RFM
// boundaries (the applier-lease holder) is not the one writing most
// profiles: other nodes apply their partitions meanwhile, scoring against
// their own copy of the boundaries. A customer another node writes after
// the population was read, against the boundaries being replaced (here
// none yet, then the first ones), is scored against the new ones too, not
// left with stale or no scores until the next recomputation (the
// partitioned form of traits' TestRFMRecomputeScoresCustomersWrittenMeanwhile;
// Settle was not set there at all).
func TestPartitionedRFMRecomputeScoresCustomersOtherNodesWrote(t *testing.T) {
	pg := pgtest.URL(t)
	natsU := natstest.URL(t)
	stream := natstest.Stream(t, natsU, "portrait_rfm")
	ctx := context.Background()
	const parts = 4
	open := func(name string) *App {
		t.Helper()
		cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: pg, Bus: natsU, LogLevel: "error"}
		cfg.BusStream, cfg.BusPartitions, cfg.Apply = stream, parts, applyPartitioned
		cfg.Role, cfg.Node, cfg.AnalyticsEvery = "process", name, 0
		a, err := OpenApp(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	// a recomputes (it would hold the applier lease); b applies the
	// partitions. Neither is started: the test drives both.
	a, b := open("a"), open("b")
	a.applying.Store(true) // as if a held the applier lease
	st := b.DB.(partitionedStore)
	now := time.Now().UTC()
	msg := 0
	order := func(user string, n int) {
		t.Helper()
		for range n {
			msg++
			e := &portrait.Event{MessageID: fmt.Sprintf("rfm-%d", msg), Type: portrait.EventTrack, Source: "web", UserID: user,
				Name: "Order Completed", Timestamp: now.Add(-48*time.Hour + time.Duration(msg)*time.Second), ReceivedAt: now,
				Properties: json.RawMessage(`{"revenue": 100}`)}
			p := portrait.Partition(e, parts)
			if _, err := st.AppendPartition(ctx, p, []*portrait.Event{e}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.partitionProc(p).ApplyPartition(ctx, profile.Term{}, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 1; i <= 10; i++ {
		order(fmt.Sprintf("u%d", i), i)
	}
	svc := a.Enrich.Traits
	each := svc.Each
	// New customers buy on node b once a has read the population, before
	// the boundaries computed from it are in place.
	arrive := func(users ...string) {
		done := false
		svc.Each = func(ctx context.Context, fn func(*portrait.Profile) error) error {
			if err := each(ctx, fn); err != nil || done {
				return err
			}
			done = true
			for _, u := range users {
				order(u, 3)
			}
			return nil
		}
	}
	check := func(when string, n int) {
		t.Helper()
		bs := svc.Enricher.Boundaries()
		for i := 1; i <= n; i++ {
			p, err := a.DB.(*postgres.DB).ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: fmt.Sprintf("u%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			in, _ := traits.RFMInputOf(p, time.Now())
			r, f, m := bs.Score(in.Days, in.Count, in.Revenue)
			if want := fmt.Sprintf("%d%d%d", r, f, m); p.Traits["rfm_score"].Value != want {
				t.Errorf("%s: u%d has rfm_score %v, the boundaries give %s", when, i, p.Traits["rfm_score"].Value, want)
			}
		}
	}
	arrive("u11")
	if _, err := svc.RecomputeRFM(ctx); err != nil {
		t.Fatal(err)
	}
	check("first boundaries", 11)
	// Against boundaries in place: heavy buyers move the frequency cuts
	// up, and a customer b writes meanwhile was scored against the old.
	for i := 12; i <= 16; i++ {
		order(fmt.Sprintf("u%d", i), 20)
	}
	arrive("u17")
	if _, err := svc.RecomputeRFM(ctx); err != nil {
		t.Fatal(err)
	}
	check("new boundaries", 17)
}
