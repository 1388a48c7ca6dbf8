package segment_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// memStore is an in-memory segment.Store.
type memStore struct {
	mu     sync.Mutex
	defs   map[string]*segment.Definition
	events []*segment.Event
	hooks  map[string]*segment.Webhook
	dead   []*segment.DeadLetter
}

func newMemStore() *memStore {
	return &memStore{defs: map[string]*segment.Definition{}, hooks: map[string]*segment.Webhook{}}
}
func (m *memStore) SaveSegment(_ context.Context, d *segment.Definition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defs[d.ID] = d
	return nil
}
func (m *memStore) DeleteSegment(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.defs, id)
	return nil
}
func (m *memStore) Segments(context.Context) ([]*segment.Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*segment.Definition
	for _, d := range m.defs {
		out = append(out, d)
	}
	return out, nil
}
func (m *memStore) AppendSegmentEvents(_ context.Context, evs []*segment.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		e.ID = int64(len(m.events) + 1)
		m.events = append(m.events, e)
	}
	return nil
}
func (m *memStore) SegmentEvents(_ context.Context, id string, after int64, limit int) ([]*segment.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*segment.Event
	for _, e := range m.events {
		if e.Segment == id && e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}
func (m *memStore) RecordedMembers(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := map[string]string{}
	for _, e := range m.events {
		if e.Segment == id {
			last[e.Profile] = e.Kind
		}
	}
	var out []string
	for p, k := range last {
		if k == segment.Enter {
			out = append(out, p)
		}
	}
	return out, nil
}
func (m *memStore) SaveWebhook(_ context.Context, w *segment.Webhook) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hooks[w.ID] = w
	return nil
}
func (m *memStore) DeleteWebhook(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.hooks, id)
	return nil
}
func (m *memStore) Webhooks(context.Context) ([]*segment.Webhook, error) { return nil, nil }
func (m *memStore) SaveDeadLetter(_ context.Context, d *segment.DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead = append(m.dead, d)
	return nil
}
func (m *memStore) DeadLetters(context.Context, string, int) ([]*segment.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*segment.DeadLetter(nil), m.dead...), nil
}

func prof(id string, age float64, tags ...string) *portrait.Profile {
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{"age": {Value: age}}}
	for _, t := range tags {
		p.Tags = append(p.Tags, portrait.ProfileTag{Name: t})
	}
	return p
}

func kinds(evs []*segment.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Profile+":"+e.Kind)
	}
	return out
}

func TestRealTimeEnterAndExit(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	ix := segment.NewIndex()
	svc := segment.NewService(ix, store)
	clock := now
	svc.Now = func() time.Time { return clock }
	if err := svc.Apply(ctx, []*portrait.Profile{prof("a", 35, "vip"), prof("b", 20, "vip")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Create(ctx, &segment.Definition{Name: "vip 30+", Expression: `"vip" in tags && traits.age >= 30`})
	if err != nil || st.Size != 1 || st.EvaluatedAt.IsZero() {
		t.Fatalf("create: %+v %v", st, err)
	}
	sub := svc.Subscribe(st.ID)
	defer svc.Unsubscribe(sub)
	// b turns 30: enters; a loses the tag: exits; c (new, matching) enters
	clock = clock.Add(time.Second)
	svc.Apply(ctx, []*portrait.Profile{prof("b", 30, "vip"), prof("a", 35), prof("c", 50, "vip")}, nil, nil)
	evs, _ := store.SegmentEvents(ctx, st.ID, 0, 100)
	got := map[string]bool{}
	for _, k := range kinds(evs) {
		got[k] = true
	}
	for _, want := range []string{"a:enter", "b:enter", "a:exit", "c:enter"} {
		if !got[want] {
			t.Errorf("missing %s in %v", want, kinds(evs))
		}
	}
	// a change that touches nothing the segment reads emits nothing
	n := len(store.events)
	p := prof("b", 30, "vip")
	p.Traits["city"] = portrait.Trait{Value: "深圳市"}
	svc.Apply(ctx, []*portrait.Profile{p}, nil, nil)
	// a merged-away profile exits
	svc.Apply(ctx, nil, []string{"c"}, nil)
	if len(store.events) != n+1 || store.events[n].Profile != "c" || store.events[n].Kind != segment.Exit {
		t.Fatalf("after merge: %v", kinds(store.events[n:]))
	}
	if st, _ := svc.Get(st.ID); st.Size != 1 {
		t.Fatalf("size %d, want 1 (b)", st.Size)
	}
	// the stream saw the same changes, in order
	var streamed []string
	for len(sub) > 0 {
		streamed = append(streamed, (<-sub).Profile)
	}
	if len(streamed) != 4 {
		t.Fatalf("stream %v", streamed)
	}
}

func TestScheduledExitWhenWindowPasses(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	svc := segment.NewService(segment.NewIndex(), store)
	clock := now
	svc.Now = func() time.Time { return clock }
	sum := segment.Summary{}
	sum.Add("Order Completed", now.Add(-20*24*time.Hour), 800)
	sum.Add("Order Completed", now.Add(-10*24*time.Hour), 600)
	p := prof("a", 40)
	p.TrackCounts = map[string]int{"Order Completed": 2}
	svc.Behaviour = func(context.Context, *portrait.Profile) (segment.Summary, error) { return sum, nil }
	svc.Apply(ctx, []*portrait.Profile{p}, nil, nil)
	st, err := svc.Create(ctx, &segment.Definition{Name: "buyers", Expression: `event_count("Order Completed", "30d", amount > 500) >= 2`})
	if err != nil || st.Size != 1 || !st.TimeBased {
		t.Fatalf("%+v %v", st, err)
	}
	clock = now.Add(9 * 24 * time.Hour) // the older order is now 29 days old
	svc.Tick(ctx)
	if st, _ := svc.Get(st.ID); st.Size != 1 {
		t.Fatal("exited too early")
	}
	clock = now.Add(11 * 24 * time.Hour) // 31 days: out of the window
	svc.Tick(ctx)
	st, _ = svc.Get(st.ID)
	evs, _ := store.SegmentEvents(ctx, st.ID, 0, 10)
	if st.Size != 0 || len(evs) != 2 || evs[1].Kind != segment.Exit || !evs[1].At.Equal(clock) {
		t.Fatalf("size %d events %v", st.Size, kinds(evs))
	}
}

func TestConsentHookExcludesProfiles(t *testing.T) {
	ctx := context.Background()
	svc := segment.NewService(segment.NewIndex(), newMemStore())
	svc.Now = func() time.Time { return now }
	svc.Consent = func(purpose, id string) bool { return !(purpose == "marketing" && id == "b") }
	svc.Apply(ctx, []*portrait.Profile{prof("a", 35, "vip"), prof("b", 36, "vip")}, nil, nil)
	mk, _ := svc.Create(ctx, &segment.Definition{Name: "m", Expression: `"vip" in tags`, Purpose: "marketing"})
	any, _ := svc.Create(ctx, &segment.Definition{Name: "all", Expression: `"vip" in tags`})
	if mk.Size != 1 || any.Size != 2 {
		t.Fatalf("marketing %d, unrestricted %d", mk.Size, any.Size)
	}
	ex, in, err := svc.Explain(mk.ID, "b")
	if err != nil || in || ex.Reason == "" {
		t.Fatalf("%+v %v %v", ex, in, err)
	}
	// real time respects consent too
	svc.Apply(ctx, []*portrait.Profile{prof("b", 37, "vip")}, nil, nil)
	if st, _ := svc.Get(mk.ID); st.Size != 1 {
		t.Fatalf("size %d after change", st.Size)
	}
}

func TestWebhookSignedRetriedAndDeadLettered(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var bodies [][]byte
	var keys []string // Idempotency-Key of every attempt
	failFirst := int32(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := calls.Add(1)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if segment.Signature("s3cret-s3cret-s3cret", r.Header.Get("X-Portrait-Timestamp"), body) != r.Header.Get("X-Portrait-Signature") {
			t.Errorf("bad signature")
		}
		if n <= atomic.LoadInt32(&failFirst) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
	}))
	defer srv.Close()
	store := newMemStore()
	d := segment.NewDispatcher(store)
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} // the test server
	var waits []time.Duration
	d.Backoff = func(n int) time.Duration {
		waits = append(waits, time.Duration(n)*time.Millisecond)
		return time.Millisecond
	}
	d.MaxAttempts = 4
	ctx := context.Background()
	if _, err := d.Create(ctx, &segment.Webhook{URL: "ftp://x"}); err == nil {
		t.Fatal("a non-http URL was accepted")
	}
	wh, err := d.Create(ctx, &segment.Webhook{URL: srv.URL, Secret: "s3cret-s3cret-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	evs := []*segment.Event{{ID: 1, Segment: "s", Profile: "a", Kind: segment.Enter, At: now}}
	d.Deliver(ctx, evs)
	if calls.Load() != 3 || len(bodies) != 1 || len(waits) != 2 {
		t.Fatalf("calls %d deliveries %d waits %v", calls.Load(), len(bodies), waits)
	}
	var got struct {
		Events []segment.Event `json:"events"`
	}
	if err := json.Unmarshal(bodies[0], &got); err != nil || len(got.Events) != 1 || got.Events[0].Profile != "a" {
		t.Fatalf("%s %v", bodies[0], err)
	}
	// every attempt of the batch carries one key, so a receiver that
	// answered too late can drop the retry
	if want := segment.IdempotencyKey(wh.ID, bodies[0]); len(keys) != 3 || keys[0] != want || keys[1] != want || keys[2] != want {
		t.Errorf("idempotency keys %q, want %q on each attempt", keys, want)
	}
	// an endpoint that never recovers: dead letter after MaxAttempts
	calls.Store(0)
	atomic.StoreInt32(&failFirst, 1000)
	d.Deliver(ctx, evs)
	if calls.Load() != 4 || len(store.dead) != 1 || store.dead[0].Attempts != 4 || store.dead[0].Webhook != wh.ID {
		t.Fatalf("calls %d dead %+v", calls.Load(), store.dead)
	}
	// a webhook for another segment is not called
	d.Delete(ctx, wh.ID)
	d.Create(ctx, &segment.Webhook{URL: srv.URL, Secret: "s3cret-s3cret-s3cret", Segments: []string{"other"}})
	calls.Store(0)
	d.Deliver(ctx, evs)
	if calls.Load() != 0 {
		t.Fatalf("filtered webhook called %d times", calls.Load())
	}
}

// A full delivery queue dead-letters instead of delivering on the caller's
// goroutine: one slow endpoint must not stall segments and processing.
func TestFullWebhookQueueDeadLettersWithoutBlocking(t *testing.T) {
	store := newMemStore()
	d := segment.NewDispatcher(store)
	d.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ctx := context.Background()
	if _, err := d.Create(ctx, &segment.Webhook{URL: "http://127.0.0.1:1/never", Secret: "s3cret-s3cret-s3cret"}); err != nil {
		t.Fatal(err)
	}
	evs := []*segment.Event{{ID: 1, Segment: "s", Profile: "a", Kind: segment.Enter, At: now}}
	start := time.Now()
	for range 1100 { // more than the queue holds; Run is not running
		d.Enqueue(evs)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("enqueueing took %s: deliveries ran on the caller", el)
	}
	if len(store.dead) != 1100-1024 {
		t.Errorf("%d dead letters, want the %d that did not fit", len(store.dead), 1100-1024)
	}
}

// What changed while the server was stopped is reported at start: the
// evaluation is compared with the membership the history recorded.
func TestChangesWhileStoppedAreReportedAtStart(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	ix := segment.NewIndex()
	svc := segment.NewService(ix, store)
	svc.Now = func() time.Time { return now }
	ix.Upsert(prof("a", 35, "vip"), nil)
	ix.Upsert(prof("b", 40, "vip"), nil)
	st, err := svc.Create(ctx, &segment.Definition{Name: "vip", Expression: `"vip" in tags`})
	if err != nil || st.Size != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	// Restart: a lost the tag, c has it now (both while stopped).
	ix2 := segment.NewIndex()
	ix2.Upsert(prof("a", 35), nil)
	ix2.Upsert(prof("b", 40, "vip"), nil)
	ix2.Upsert(prof("c", 22, "vip"), nil)
	svc2 := segment.NewService(ix2, store)
	svc2.Now = func() time.Time { return now.Add(time.Hour) }
	if err := svc2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := store.SegmentEvents(ctx, st.ID, 2, 100) // after the two enters at creation
	if got := kinds(evs); !reflect.DeepEqual(got, []string{"c:enter", "a:exit"}) {
		t.Errorf("events at start %v, want c:enter a:exit", got)
	}
	// A second start with nothing changed reports nothing.
	svc3 := segment.NewService(ix2, store)
	if err := svc3.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _ := store.SegmentEvents(ctx, st.ID, 4, 100); len(evs) != 0 {
		t.Errorf("an unchanged restart reported %v", kinds(evs))
	}
}

// A segment without time conditions is current with every change: its lag
// stays 0 however long ago it was evaluated. A time-based one lags by the
// time since its last evaluation, until the next tick.
func TestLagOnlyForTimeBasedSegments(t *testing.T) {
	ctx := context.Background()
	svc := segment.NewService(segment.NewIndex(), newMemStore())
	clock := now
	svc.Now = func() time.Time { return clock }
	svc.Apply(ctx, []*portrait.Profile{prof("a", 35, "vip")}, nil, nil)
	static, err := svc.Create(ctx, &segment.Definition{Name: "vip", Expression: `"vip" in tags`})
	if err != nil {
		t.Fatal(err)
	}
	timed, err := svc.Create(ctx, &segment.Definition{Name: "recent", Expression: `days_since_event("Order Completed") < 30`})
	if err != nil {
		t.Fatal(err)
	}
	clock = now.Add(3 * time.Hour)
	if st, _ := svc.Get(static.ID); st.LagSeconds != 0 {
		t.Errorf("static segment lag %v after 3h without changes, want 0", st.LagSeconds)
	}
	if st, _ := svc.Get(timed.ID); st.LagSeconds != 3*3600 {
		t.Errorf("time-based segment lag %v, want %v", st.LagSeconds, 3*3600)
	}
	svc.Tick(ctx)
	if st, _ := svc.Get(timed.ID); st.LagSeconds != 0 {
		t.Errorf("time-based segment lag %v right after a tick, want 0", st.LagSeconds)
	}
}

// Segments read traits by bare name as tag rules do (revenue is
// traits.revenue), and a misspelt trait or tag is refused with the name it
// was probably meant to be; a name unlike any known one is accepted (data
// may bring it later) with a warning.
func TestBareNamesAndDidYouMean(t *testing.T) {
	ctx := context.Background()
	svc := segment.NewService(segment.NewIndex(), newMemStore())
	svc.Now = func() time.Time { return now }
	a := prof("a", 35, "高价值")
	a.Traits["revenue"] = portrait.Trait{Value: 12000.0}
	a.Traits["interests"] = portrait.Trait{Value: []any{"tea", "books"}}
	b := prof("b", 22)
	b.Traits["revenue"] = portrait.Trait{Value: 300.0}
	svc.Apply(ctx, []*portrait.Profile{a, b}, nil, nil)
	svc.KnownTraits = func() []string { return []string{"days_since_last_purchase"} }
	for _, c := range []struct {
		bare, dotted string
		size         int
	}{
		{`revenue >= 1000 && age in 30..40`, `traits.revenue >= 1000 && traits.age in 30..40`, 1},
		{`"tea" in interests`, `"tea" in traits.interests`, 1},
		{`revenue != nil`, `traits.revenue != nil`, 2},
	} {
		x, err := svc.Create(ctx, &segment.Definition{Name: "bare", Expression: c.bare})
		if err != nil {
			t.Fatalf("%s: %v", c.bare, err)
		}
		y, err := svc.Create(ctx, &segment.Definition{Name: "dotted", Expression: c.dotted})
		if err != nil {
			t.Fatalf("%s: %v", c.dotted, err)
		}
		if x.Size != c.size || y.Size != c.size || x.Plan != y.Plan {
			t.Errorf("%s: size %d plan %s; %s: size %d plan %s; want size %d", c.bare, x.Size, x.Plan, c.dotted, y.Size, y.Plan, c.size)
		}
	}
	for expr, want := range map[string]string{
		`traits.revenu > 100`:          "did you mean revenue?",
		`revnue > 100`:                 "did you mean revenue?",
		`days_since_last_purchse < 30`: "did you mean days_since_last_purchase?", // known to the schema only
		`"高价直" in tags && revenue > 0`: `did you mean "高价值"?`,
	} {
		_, err := svc.Create(ctx, &segment.Definition{Name: "typo", Expression: expr})
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), want) {
			t.Errorf("%s: %v, want %q", expr, err, want)
		}
		if _, _, _, err := svc.Preview(&segment.Definition{Expression: expr}, 5); !strings.Contains(portrait.ErrorMessage(err), want) {
			t.Errorf("preview %s: %v", expr, err)
		}
	}
	// The null case: nothing like it is known; accepted, with a warning.
	st, err := svc.Create(ctx, &segment.Definition{Name: "future", Expression: `loyalty_points > 100`})
	if err != nil || st.Size != 0 || len(st.Warnings) == 0 {
		t.Errorf("a trait nothing knows yet: %+v %v", st, err)
	}
}
