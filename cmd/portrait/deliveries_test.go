package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
)

// Scheduled deliveries across nodes (issue 17): two nodes on one
// PostgreSQL store and one bus; b holds the jobs lease and runs the
// deliveries. A delivery created through a runs on b at once (it used to
// wait for b's next minute's check); a run on a counts for b's schedule;
// a delivery deleted through a no longer runs on b.
func TestDeliveriesFollowedByTheJobsNode(t *testing.T) {
	url := pgtest.URL(t)
	busURL := natstest.URL(t)
	ctx := context.Background()
	stream := natstest.Stream(t, busURL, "portrait_test_dlv")
	open := func(name string) *App {
		cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error", Bus: busURL}
		cfg.BusStream, cfg.LeaseTTL = stream, 3*time.Second
		cfg.Role, cfg.Node, cfg.AnalyticsEvery = "all", name, 0
		a, err := OpenApp(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { a.Close() })
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	b := open("b")
	within(t, 20*time.Second, "b holds the jobs lease", func() bool { h, _ := b.bus.LeaseHolder(ctx, "jobs"); return h == "b" })
	a := open("a")

	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i := range 3 {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at, Traits: json.RawMessage(fmt.Sprintf(`{"email":"u%d@example.com"}`, i))})
	}
	if _, err := b.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "the events applied", func() bool { n, _ := b.DB.CountProfiles(ctx); return n == 3 })
	st, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "everyone", Expression: `true`})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b knows the segment", func() bool { _, err := b.HTTP.Segments.Get(st.ID); return err == nil })

	runs := func(id string) []*delivery.Run {
		rs, err := a.DB.DeliveryRuns(ctx, id, -1)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	created := time.Now()
	d, err := a.HTTP.Deliveries.Create(ctx, &delivery.Delivery{Segment: st.ID, Identifiers: []string{portrait.IDEmail},
		Target: delivery.Target{Kind: delivery.File, Name: "everyone"}, EveryText: "1h", CreatedBy: "admin", Role: "admin", Clearance: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 15*time.Second, "the delivery created through a runs", func() bool { return len(runs(d.ID)) > 0 })
	t.Logf("created through a, run %s later", time.Since(created).Round(time.Millisecond))
	first := runs(d.ID)
	if len(first) != 1 || first[0].Status != "ok" || !strings.HasPrefix(first[0].Where, filepath.Join(b.Config.DataDir, "deliveries")) {
		t.Fatalf("runs %+v: want one, ok, in b's drop directory %s", first, b.Config.DataDir)
	}

	// A run now on a, 50 minutes after b's: b's schedule counts from a's.
	now := time.Now()
	a.HTTP.Deliveries.Now = func() time.Time { return now.Add(50 * time.Minute) }
	if r := a.HTTP.Deliveries.Deliver(ctx, d); r.Status != "ok" {
		t.Fatalf("run on a: %+v", r)
	}
	b.HTTP.Deliveries.Now = func() time.Time { return now.Add(70 * time.Minute) }
	if err := b.HTTP.Deliveries.Due(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(runs(d.ID)); n != 2 {
		t.Errorf("b ran the delivery 20 minutes after a did, 70 after its own run (every hour): %d runs, want 2", n)
	}

	// Deleted through a: b, woken by the change, two hours on, runs nothing.
	b.HTTP.Deliveries.Now = func() time.Time { return now.Add(3 * time.Hour) }
	if err := a.HTTP.Deliveries.Store.DeleteDelivery(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := len(runs(d.ID)); n != 2 {
		t.Errorf("the deleted delivery ran on: %d runs, want 2", n)
	}
}

// The jobs lease's term ending (runDeliveries returning) leaves the
// delivery NATS connection open: the node may take the lease again, or
// run a delivery through the API meanwhile. It used to close it there, so
// every later NATS delivery of the node failed on a closed connection.
// The app closes it with the stores.
func TestDeliveryPublisherOutlivesTheJobsTerm(t *testing.T) {
	url := natstest.URL(t)
	ctx := context.Background()
	a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), LogLevel: "error", DeliveryNATS: url}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := a.HTTP.Deliveries.NATS.(*natsbus.Publisher)
	if !ok {
		t.Fatalf("deliveries publish through %T, want the NATS publisher", a.HTTP.Deliveries.NATS)
	}
	term, end := context.WithCancel(ctx)
	end()
	a.runDeliveries(term) // a term that has ended
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pub.Publish(pctx, "portrait_test_dlv_term.x", []byte("{}"), nil); err != nil {
		t.Fatalf("publishing after the jobs term ended: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(pctx, "portrait_test_dlv_term.x", []byte("{}"), nil); err == nil {
		t.Fatal("the publisher is still open after the app closed")
	}
}
