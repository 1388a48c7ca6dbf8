package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
)

// hookReceiver counts the segment events a webhook receives, by profile
// and kind, and the POSTs.
type hookReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	seen  map[string]int // profile/kind → times received
	posts atomic.Int64
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{seen: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Events []*segment.Event `json:"events"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		r.posts.Add(1)
		r.mu.Lock()
		for _, e := range body.Events {
			r.seen[e.Profile+"/"+e.Kind]++
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// allNode opens an "all" node over a shared store without a bus whose
// webhooks may reach loopback. before runs between OpenApp and Start.
func allNode(t *testing.T, url, name string, ttl time.Duration, before func(*App)) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error"}
	cfg.Role, cfg.Node, cfg.AnalyticsEvery, cfg.LeaseTTL = "all", name, 0, ttl
	cfg.Hardening.EgressAllow = "127.0.0.1"
	a, err := OpenApp(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { a.Close() })
	if before != nil {
		before(a)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

// Two nodes on one PostgreSQL database, no bus, one segment webhook: each
// profile's entry reaches the receiver exactly once, through a change of
// jobs owner. Every node evaluates every change; before, the node that
// did not hold the jobs lease queued what it evaluated and, once it took
// the lease over, sent its whole backlog again.
func TestSegmentWebhookCalledOnceOverASharedStoreWithoutABus(t *testing.T) {
	url := pgtest.URL(t)
	ttl := 1500 * time.Millisecond
	recv := newHookReceiver(t)
	a, b := twoNodes(t, url, ttl)
	st, _ := everyoneHooked(t, a, b, recv)
	entered := func() int {
		n := 0
		for k := range recv.counts() {
			if len(k) > 6 && k[len(k)-6:] == "/enter" {
				n++
			}
		}
		return n
	}
	identify(t, a, 0, 20, nil)
	within(t, 20*time.Second, "20 entries received", func() bool { return entered() >= 20 })
	// b has followed the same changes by now (the follower reads the feed
	// every few hundred milliseconds).
	time.Sleep(2 * time.Second)

	a.Close()
	within(t, 10*time.Second, "b takes the jobs lease", func() bool { return jobsHolder(t, b) == "b" })
	identify(t, b, 20, 20, nil)
	within(t, 20*time.Second, "40 entries received", func() bool { return entered() >= 40 })
	time.Sleep(2 * time.Second) // anything more would be a second copy
	for k, n := range recv.counts() {
		if n != 1 {
			t.Errorf("%s received %d times, want once", k, n)
		}
	}
	if got := entered(); got != 40 {
		t.Errorf("%d profiles entered, want 40", got)
	}
	// Both nodes evaluated the 40 entries; the history lists each once
	// (it held 60 rows before it was written once per change).
	if n := historyOnce(t, b, st.ID); n != 40 {
		t.Errorf("history holds %d rows for 40 entries", n)
	}
	t.Logf("%d POSTs for 40 entries", recv.posts.Load())
}

// setDataKey gives the nodes a test opens a data key (through the
// environment, as a deployment may).
func setDataKey(t *testing.T) {
	t.Helper()
	line, err := datakey.NewKeyLine("k-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(datakey.EnvVar, line)
}

// countingPurge counts the quarantine sweeps that reached the store.
type countingPurge struct {
	erasure.QuarantineStore
	n *atomic.Int64
}

func (c countingPurge) PurgeQuarantine(ctx context.Context, before time.Time) (int64, error) {
	c.n.Add(1)
	return c.QuarantineStore.PurgeQuarantine(ctx, before)
}

// countingReseal is a reseal store that counts, per node, the passes that
// asked for jobs and the steps (writes) made.
type countingReseal struct {
	storeseal.RaiseStore
	lists, steps atomic.Int64
}

func (c *countingReseal) ResealJobs(ctx context.Context) ([]storeseal.Job, error) {
	c.lists.Add(1)
	return c.RaiseStore.ResealJobs(ctx)
}

func (c *countingReseal) ResealStep(ctx context.Context, j storeseal.Job) (storeseal.Job, bool, error) {
	c.steps.Add(1)
	return c.RaiseStore.ResealStep(ctx, j)
}

// Three nodes on one PostgreSQL database with a data key, no bus: a level
// raised to secret is sealed by one background pass, on the jobs owner.
// Before, every process node ran the reseal worker: each listed and
// stepped the jobs (harmless, each write conditional, but three passes).
func TestResealRunsOnTheJobsOwnerOnly(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	setDataKey(t)
	ttl := 1500 * time.Millisecond
	counters := map[string]*countingReseal{}
	count := func(name string) func(*App) {
		return func(a *App) {
			if a.reseal == nil {
				t.Fatalf("%s: no reseal worker (no data key?)", name)
			}
			c := &countingReseal{RaiseStore: a.reseal.Store}
			a.reseal.Store, a.reseal.Wait, a.reseal.Poll = c, 0, 200*time.Millisecond
			counters[name] = c
		}
	}
	a := allNode(t, url, "a", ttl, count("a"))
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	allNode(t, url, "b", ttl, count("b"))
	allNode(t, url, "c", ttl, count("c"))
	if err := a.reseal.Schedule(ctx, "trait", "salary"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the reseal job done", func() bool {
		js, err := a.reseal.Store.ResealJobs(ctx)
		return err == nil && len(js) == 0 && counters["a"].steps.Load() > 0
	})
	time.Sleep(time.Second) // five polls of every node
	if counters["a"].lists.Load() == 0 {
		t.Error("the jobs owner never looked for reseal jobs")
	}
	for _, n := range []string{"b", "c"} {
		if l, s := counters[n].lists.Load(), counters[n].steps.Load(); l+s > 0 {
			t.Errorf("node %s, not the jobs owner, listed reseal jobs %d times and stepped %d", n, l, s)
		}
	}
}

// A jobs owner paused past its lease runs none of the other scheduled
// jobs either: no segment webhook POST, no reseal step, no retention
// sweep, once another node's term has begun in the store (the take-over
// written directly, while a's own lease has 30 s of local life left).
// Before, only deliveries and analyses asked.
func TestPausedJobsOwnerSendsNoWebhookAndSealsNothing(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	setDataKey(t)
	recv := newHookReceiver(t)
	var steps atomic.Int64
	var sweeps atomic.Int64
	a := allNode(t, url, "a", 30*time.Second, func(a *App) {
		c := &countingReseal{RaiseStore: a.reseal.Store}
		a.reseal.Store, a.reseal.Wait, a.reseal.Poll = c, 0, 100*time.Millisecond
		go func() { // mirror the step count
			for range time.Tick(20 * time.Millisecond) {
				steps.Store(c.steps.Load())
			}
		}()
		a.retention.Every, a.retention.QuarantineAge = 100*time.Millisecond, time.Hour
		a.retention.Store = countingPurge{a.retention.Store, &sweeps}
	})
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	wh, err := a.HTTP.Segments.Webhooks.Create(ctx, &segment.Webhook{URL: recv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	a.HTTP.Segments.Webhooks.Enqueue([]*segment.Event{{Segment: "s", Profile: "p-before", Kind: segment.Enter, At: time.Now()}})
	within(t, 10*time.Second, "a posts while it holds the lease", func() bool { return recv.posts.Load() == 1 })
	within(t, 10*time.Second, "a sweeps while it holds the lease", func() bool { return sweeps.Load() > 0 })

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE leases SET holder = 'b', term = term + 1, expires = clock_timestamp() + interval '30 seconds' WHERE name = 'jobs'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a sweep in flight ends
	sw, st := sweeps.Load(), steps.Load()
	a.HTTP.Segments.Webhooks.Enqueue([]*segment.Event{{Segment: "s", Profile: "p-after", Kind: segment.Enter, At: time.Now()}})
	if err := a.reseal.Schedule(ctx, "trait", "salary"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := recv.posts.Load(); n != 1 {
		t.Errorf("a posted %d webhook batches after losing the jobs lease", n-1)
	}
	if n := steps.Load() - st; n != 0 {
		t.Errorf("a made %d reseal steps after losing the jobs lease", n)
	}
	if n := sweeps.Load() - sw; n != 0 {
		t.Errorf("a swept the quarantine %d times after losing the jobs lease", n)
	}
	if dl, err := a.DB.DeadLetters(ctx, wh.ID, 10); err != nil || len(dl) != 1 {
		t.Errorf("dead letters after the refused POST: %d %v, want the batch kept there", len(dl), err)
	}
}

// A scheduled delivery to a webhook over two nodes on one PostgreSQL
// database: node a, the jobs owner, pauses on the send path of its first
// slot (a hook: after claiming it, or after moving it to sending), its
// lease expires meanwhile and b takes the jobs over and runs the schedule
// on; then a resumes. Every slot reaches the receiver once, with its
// Idempotency-Key: paused after its claim, a's slot is proven abandoned
// and b sends it, and a, resuming, may not; paused past the point of no
// return, b leaves the slot to a. Without the claims (svc.Term unset, as
// before), the slot a was sending went out twice.
func TestPausedSenderDeliversASlotAtMostOnce(t *testing.T) {
	for _, point := range []string{"claimed", "sending"} {
		t.Run(point, func(t *testing.T) { pausedSender(t, point) })
	}
}

func pausedSender(t *testing.T, point string) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var mu sync.Mutex
	keys := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer recv.Close()
	received := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range keys {
			out[k] = v
		}
		return out
	}
	clock := fastClock()
	ttl := 1500 * time.Millisecond
	a := jobsNode(t, url, "a", ttl, clock)
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.HTTP.Deliveries.Pause = func(at string, d *delivery.Delivery, slot int64) {
		if at == point && slot == 1 {
			once.Do(func() { close(paused); <-resume })
		}
	}
	b := jobsNode(t, url, "b", ttl, clock)
	st, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "everyone", Expression: `true`})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b knows the segment", func() bool { _, err := b.HTTP.Segments.Get(st.ID); return err == nil })
	d, err := a.HTTP.Deliveries.Create(ctx, &delivery.Delivery{Segment: st.ID, Identifiers: []string{portrait.IDEmail},
		Target: delivery.Target{Kind: delivery.Webhook, URL: recv.URL + "/drop"}, EveryText: "1m", CreatedBy: "admin", Role: "admin", Clearance: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-paused:
	case <-time.After(20 * time.Second):
		runs, err := a.DB.DeliveryRuns(ctx, d.ID, -1)
		c, cerr := a.DB.(delivery.Claims).LastDeliveryClaim(ctx, d.ID)
		h, f, n := a.jobsTermNow()
		t.Fatalf("a never reached its first slot: runs %d %v, last claim %+v %v; a's term %s %s %d", len(runs), err, c, cerr, h, f, n)
	}
	// a is paused: its lease runs out and b takes the jobs over.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE leases SET expires = clock_timestamp() - interval '1 second' WHERE name = 'jobs'`); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "b takes the jobs lease", func() bool { return jobsHolder(t, b) == "b" })
	slot := func(n int) string { return fmt.Sprintf("%s:%d", d.ID, n) }
	within(t, 20*time.Second, "b sends slots 2 and 3", func() bool { r := received(); return r[slot(2)] > 0 && r[slot(3)] > 0 })
	close(resume)
	time.Sleep(time.Second) // a sends what it may
	r := received()
	for k, n := range r {
		if n != 1 {
			t.Errorf("%s received %d times, want once", k, n)
		}
	}
	if r[slot(1)] != 1 {
		t.Errorf("slot 1 received %d times, want once (%v)", r[slot(1)], r)
	}
	runs, err := b.DB.DeliveryRuns(ctx, d.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	bySlot := map[int64]int{}
	for _, run := range runs {
		bySlot[run.Slot]++
		if run.Slot == 0 || run.Key != fmt.Sprintf("%s:%d", d.ID, run.Slot) {
			t.Errorf("run %d: slot %d key %q", run.ID, run.Slot, run.Key)
		}
	}
	for s, n := range bySlot {
		if n != 1 {
			t.Errorf("slot %d recorded %d runs", s, n)
		}
	}
	t.Logf("paused %s: %d slots received, %d runs recorded", point, len(r), len(runs))
}

// A segment created through the node that does not hold the jobs lease:
// its entries reach the webhook once, sent by the jobs owner when it reads
// the new definition. The creating node records them and, not sending,
// drops its copy (before, it queued them: sent only if it took the lease
// over one day, or dead-lettered once its queue was full).
func TestSegmentCreatedOnAnotherNodeReachesTheWebhookOnce(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	ttl := 1500 * time.Millisecond
	recv := newHookReceiver(t)
	a, b := twoNodes(t, url, ttl)
	var evs []*portrait.Event
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at})
	}
	if _, err := a.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "both nodes index the 10 profiles", func() bool {
		return a.HTTP.Segments.Index.Len() == 10 && b.HTTP.Segments.Index.Len() == 10
	})
	if _, err := a.HTTP.Segments.Webhooks.Create(ctx, &segment.Webhook{URL: recv.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b knows the webhook", func() bool { return len(b.HTTP.Segments.Webhooks.List()) == 1 })
	if _, err := b.HTTP.Segments.Create(ctx, &segment.Definition{Name: "everyone", Expression: `true`}); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "10 entries received", func() bool { return len(recv.counts()) >= 10 })
	time.Sleep(2 * time.Second)
	for k, n := range recv.counts() {
		if n != 1 {
			t.Errorf("%s received %d times, want once", k, n)
		}
	}
	if n := len(recv.counts()); n != 10 {
		t.Errorf("%d entries received, want 10", n)
	}
}
