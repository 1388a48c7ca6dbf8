package segment_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/segment"
)

// memOutbox is a recorded history with a cursor.
type memOutbox struct {
	mu     sync.Mutex
	evs    []*segment.Event
	cursor int64
}

func (o *memOutbox) add(kind string, profiles ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range profiles {
		o.evs = append(o.evs, &segment.Event{ID: int64(len(o.evs) + 1), Segment: "s", Profile: p, Kind: kind, At: now})
	}
}

func (o *memOutbox) SegmentEventsAfter(_ context.Context, after int64, limit int) ([]*segment.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*segment.Event
	for _, e := range o.evs {
		if e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (o *memOutbox) WebhookCursor(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cursor, nil
}

func (o *memOutbox) MoveWebhookCursor(_ context.Context, from, to int64) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cursor != from || to <= from {
		return false, nil
	}
	o.cursor = to
	return true, nil
}

func (o *memOutbox) at() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cursor
}

// With an Outbox, Run sends the recorded history in batches from the
// cursor and moves it; a batch the fence refuses is neither sent nor
// dead-lettered and the cursor stays, so the next run (the next jobs
// owner) sends it.
func TestDispatcherSendsTheHistoryFromItsCursor(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Events []segment.Event `json:"events"`
		}
		json.Unmarshal(b, &body)
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		for _, e := range body.Events {
			got[e.Profile+"/"+e.Kind]++
		}
	}))
	defer srv.Close()
	received := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range got {
			n += c
		}
		return len(got), n
	}
	store := newMemStore()
	ob := &memOutbox{}
	d := segment.NewDispatcher(store)
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	d.Outbox, d.Poll, d.Batch = ob, 20*time.Millisecond, 3
	var refuse atomic.Bool
	d.Fence = func(context.Context) error {
		if refuse.Load() {
			return errors.New("another node holds the jobs")
		}
		return nil
	}
	ctx := context.Background()
	if _, err := d.Create(ctx, &segment.Webhook{URL: srv.URL, Secret: "s3cret-s3cret-s3cret"}); err != nil {
		t.Fatal(err)
	}
	ob.add(segment.Enter, "a", "b", "c", "d", "e")
	run := func() (stop func()) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); d.Run(c) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	waitFor(t, "5 events sent", func() bool { _, n := received(); return n == 5 })
	waitFor(t, "the cursor at 5", func() bool { return ob.at() == 5 })
	// The node loses the jobs: what is recorded now is not sent, not
	// dead-lettered, and the cursor stays.
	refuse.Store(true)
	ob.add(segment.Exit, "a", "b")
	time.Sleep(200 * time.Millisecond)
	stop()
	if _, n := received(); n != 5 || ob.at() != 5 || len(store.dead) != 0 {
		t.Fatalf("while refused: %d received, cursor %d, %d dead letters; want 5, 5, 0", n, ob.at(), len(store.dead))
	}
	// The next owner (here the same dispatcher, run again) sends them.
	refuse.Store(false)
	stop = run()
	defer stop()
	d.Wake()
	waitFor(t, "the 2 exits sent", func() bool { _, n := received(); return n == 7 })
	waitFor(t, "the cursor at 7", func() bool { return ob.at() == 7 })
	if distinct, n := received(); distinct != 7 || n != 7 {
		t.Errorf("%d distinct events in %d received, want each of 7 once", distinct, n)
	}
	if len(keys) != 3 { // 3 + 2 before, 2 after
		t.Errorf("%d POSTs, want 3 (batches of 3)", len(keys))
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
