package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
)

// jobsNode opens an api node over a shared store without a bus, checking
// for due deliveries every 100 ms on a clock that runs a minute per
// second, so an hourly schedule is not needed to see several runs.
func jobsNode(t *testing.T, url, name string, ttl time.Duration, clock func() time.Time) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error"}
	cfg.Role, cfg.Node, cfg.AnalyticsEvery, cfg.LeaseTTL = "api", name, 0, ttl
	a, err := OpenApp(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { a.Close() })
	a.deliveryCheck, a.HTTP.Deliveries.Now = 100*time.Millisecond, clock
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

// fastClock runs a minute per second from now.
func fastClock() func() time.Time {
	start := time.Now()
	return func() time.Time { return start.Add(60 * time.Since(start)) }
}

func jobsHolder(t *testing.T, a *App) string {
	t.Helper()
	h, err := a.DB.(interface {
		LeaseHolder(ctx context.Context, name string) (string, error)
	}).LeaseHolder(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// everyMinute creates a segment and a file delivery of it every minute
// through a, once b knows the segment.
func everyMinute(t *testing.T, a, b *App) *delivery.Delivery {
	t.Helper()
	ctx := context.Background()
	st, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "everyone", Expression: `true`})
	if err != nil {
		t.Fatal(err)
	}
	if b != nil {
		within(t, 20*time.Second, "b knows the segment", func() bool { _, err := b.HTTP.Segments.Get(st.ID); return err == nil })
	}
	d, err := a.HTTP.Deliveries.Create(ctx, &delivery.Delivery{Segment: st.ID, Identifiers: []string{portrait.IDEmail},
		Target: delivery.Target{Kind: delivery.File, Name: "everyone"}, EveryText: "1m", CreatedBy: "admin", Role: "admin", Clearance: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Two api nodes on one PostgreSQL database, no bus (issue 17): they elect
// one jobs owner in the store, so a scheduled delivery runs on one node,
// once per schedule; when the owner stops, the other takes the lease
// within the lease time and runs the schedule on. Without the lease both
// nodes ran every scheduled job.
func TestScheduledDeliveryRunsOnceOverASharedStoreWithoutABus(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	clock := fastClock()
	ttl := 1500 * time.Millisecond
	a := jobsNode(t, url, "a", ttl, clock)
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	b := jobsNode(t, url, "b", ttl, clock)
	d := everyMinute(t, b, a) // created through b: a, the owner, hears of it

	runs := func() []*delivery.Run {
		rs, err := b.DB.DeliveryRuns(ctx, d.ID, -1) // b: it outlives a
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	within(t, 20*time.Second, "three scheduled runs", func() bool { return len(runs()) >= 3 })
	time.Sleep(2 * time.Second) // both nodes check ten times a schedule
	// check: every run on node n's drop directory, a schedule (a minute
	// on the test's clock) apart; it returns how many.
	check := func(n *App) int {
		t.Helper()
		rs := runs()
		on := 0
		for i, r := range rs { // newest first
			if strings.HasPrefix(r.Where, filepath.Join(n.Config.DataDir, "deliveries")) {
				on++
			}
			if i+1 < len(rs) && r.At.Sub(rs[i+1].At) < time.Minute {
				t.Errorf("runs at %s and %s: within one schedule", rs[i+1].At.Format(time.StampMilli), r.At.Format(time.StampMilli))
			}
		}
		return on
	}
	if n, on := len(runs()), check(a); on != n || n < 4 {
		t.Fatalf("%d runs, %d of them on a (the jobs owner): want every run on a", n, on)
	}

	// a stops: b takes the jobs over within the lease time.
	before := len(runs())
	stopped := time.Now()
	a.Close()
	within(t, ttl+time.Second, "b takes the jobs lease", func() bool { return jobsHolder(t, b) == "b" })
	t.Logf("b holds the jobs lease %s after a stopped", time.Since(stopped).Round(time.Millisecond))
	within(t, 10*time.Second, "b runs the schedule on", func() bool { return len(runs()) >= before+2 })
	if onB := len(runs()) - check(a); onB < 2 {
		t.Errorf("%d runs on b after a stopped", onB)
	}
}

// A jobs owner paused past its lease, back before its own renewal has
// told it so, runs no scheduled job: each run first asks the store
// whether this node's term still holds (fenceJobs), and another node's
// term has begun. Here the other node's take-over is written into the
// store directly while a's lease has 30 s of local life left.
func TestPausedJobsOwnerRunsNothingAfterLosingTheLease(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	a := jobsNode(t, url, "a", 30*time.Second, fastClock())
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	d := everyMinute(t, a, nil)
	runs := func() int {
		rs, err := a.DB.DeliveryRuns(ctx, d.ID, -1)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	within(t, 10*time.Second, "a runs the delivery", func() bool { return runs() >= 2 })
	if err := a.fenceJobs(ctx); err != nil {
		t.Fatalf("a's fence while it holds the lease: %v", err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE leases SET holder = 'b', term = term + 1, expires = clock_timestamp() + interval '30 seconds' WHERE name = 'jobs'`); err != nil {
		t.Fatal(err)
	}
	n := runs()
	time.Sleep(3 * time.Second) // three schedules on a's clock
	if got := runs(); got != n {
		t.Errorf("a ran the delivery %d times after losing the jobs lease", got-n)
	}
	if err := a.fenceJobs(ctx); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence after b took the lease: %v, want conflict", err)
	}
	if err := a.Jobs.Fence(ctx); err == nil {
		t.Error("the scheduled analyses' fence lets a run")
	}
}

// Two "all" nodes on one PostgreSQL database, no bus: one applies events
// to profiles (the applier lease held in the store, its terms fencing the
// state transactions as the bus's do), and when it stops the other takes
// over and applies what comes next. Both applied at once before, two
// writers behind each other's caches.
func TestOneApplierOverASharedStoreWithoutABus(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	open := func(name string) *App {
		cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error"}
		cfg.Role, cfg.Node, cfg.AnalyticsEvery, cfg.LeaseTTL = "all", name, 0, 1500*time.Millisecond
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
	within(t, 10*time.Second, "b applies", func() bool { return b.applying.Load() })
	c := open("c")
	send := func(from, n int) {
		t.Helper()
		var evs []*portrait.Event
		at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		for i := from; i < from+n; i++ {
			evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
				UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at})
		}
		if _, err := c.DB.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	send(0, 5)
	within(t, 20*time.Second, "the events applied", func() bool { n, _ := c.DB.CountProfiles(ctx); return n == 5 })
	time.Sleep(2 * time.Second) // two lease times
	if !b.applying.Load() || c.applying.Load() {
		t.Fatalf("applying: b %v, c %v; want b alone", b.applying.Load(), c.applying.Load())
	}
	b.Close()
	within(t, 5*time.Second, "c applies once b stopped", func() bool { return c.applying.Load() })
	send(5, 5)
	within(t, 20*time.Second, "c applies the next events", func() bool { n, _ := c.DB.CountProfiles(ctx); return n == 10 })
}
