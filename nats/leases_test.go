package nats

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/portrait-cdp/portrait"
)

// TestNamedLeaseFailsOver: two nodes compete for the "applier" lease. One
// runs; the other waits. The holder's connection dies without a word
// (kill -9): its function is cancelled before the lease can have expired,
// and the other node takes over within about one TTL. Then the new holder
// stops cleanly and gives the lease back: the first node (reconnected)
// takes it at once, with a fresh call. At no moment do two run.
func TestNamedLeaseFailsOver(t *testing.T) {
	b := openBus(t, Config{Partitions: 2})
	cfg := b.cfg
	ttl := 1500 * time.Millisecond

	var running, most atomic.Int32
	var mu sync.Mutex
	terms := map[string]int{}             // node → calls of fn
	revs := map[uint64]string{}           // revision → node
	stopped := map[string]chan struct{}{} // closed when the node's current fn returns
	node := func(name string) (*Bus, context.CancelFunc, chan error) {
		nb, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- nb.HoldLease(ctx, "applier", name, ttl, func(ctx context.Context, rev uint64) {
				n := running.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				ch := make(chan struct{})
				mu.Lock()
				terms[name]++
				if prev, ok := revs[rev]; ok {
					t.Errorf("revision %d given to %s and %s", rev, prev, name)
				}
				revs[rev] = name
				stopped[name] = ch
				mu.Unlock()
				<-ctx.Done()
				running.Add(-1)
				close(ch)
			})
		}()
		return nb, cancel, done
	}
	holder := func() string {
		h, err := b.LeaseHolder(context.Background(), "applier")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	termsOf := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return terms[name]
	}

	a, stopA, doneA := node("a")
	waitFor(t, "a to hold the lease", 10*time.Second, func() bool { return holder() == "a" && termsOf("a") == 1 })
	nb, stopB, doneB := node("b")
	defer nb.Close()
	time.Sleep(2 * ttl) // b tries and fails several times
	if h := holder(); h != "a" || termsOf("b") != 0 {
		t.Fatalf("holder %q with a live holder a; b ran %d times", h, termsOf("b"))
	}

	// a dies: its connection closes, nothing is given back.
	mu.Lock()
	aStopped := stopped["a"]
	mu.Unlock()
	a.nc.Close()
	start := time.Now()
	select {
	case <-aStopped:
	case <-time.After(ttl):
		t.Fatalf("a's function still runs %v after its connection died", ttl)
	}
	waitFor(t, "b to take the lease", 10*time.Second, func() bool { return holder() == "b" && termsOf("b") == 1 })
	if took := time.Since(start); took > 2*ttl+2*time.Second {
		t.Errorf("take-over took %v with a lease time of %v", took, ttl)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}

	// a comes back and waits; b stops cleanly: a takes over at once
	// (well within a TTL), in a new term.
	a2, stopA2, doneA2 := node("a")
	defer a2.Close()
	time.Sleep(ttl)
	if termsOf("a") != 1 {
		t.Fatalf("a ran while b held the lease")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitFor(t, "a to take the lease back", 10*time.Second, func() bool { return holder() == "a" && termsOf("a") == 2 })
	if took := time.Since(start); took > ttl {
		t.Errorf("a took a lease given back after %v (ttl %v): it waited for expiry", took, ttl)
	}
	stopA2()
	if err := <-doneA2; err != nil {
		t.Fatal(err)
	}
	if h := holder(); h != "" {
		t.Errorf("lease held by %q after every node stopped", h)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d functions ran at once", m)
	}
}

func TestNamedLeaseRefusesPartitionKeys(t *testing.T) {
	b := openBus(t, Config{Partitions: 2})
	for _, name := range []string{"", "p.1", "node.x", "a b"} {
		if err := b.HoldLease(context.Background(), name, "n", time.Second, func(context.Context, uint64) {}); err == nil {
			t.Errorf("lease name %q accepted", name)
		}
	}
}

// TestPublishCountsDuplicates: a retried batch (the same message ids within
// the duplicate window) is counted as duplicates and stores nothing new.
func TestPublishCountsDuplicates(t *testing.T) {
	b := openBus(t, Config{Partitions: 2})
	evs := events(5, 3) // 15 events
	ctx := context.Background()
	if d, err := b.PublishCounted(ctx, evs[:10]); err != nil || d != 0 {
		t.Fatalf("first publish: %d duplicates, %v", d, err)
	}
	if d, err := b.PublishCounted(ctx, evs); err != nil || d != 10 {
		t.Fatalf("retry with 5 new events: %d duplicates (%v), want 10", d, err)
	}
	if n, err := b.Pending(ctx); err != nil || n != 15 {
		t.Fatalf("pending %d (%v), want 15", n, err)
	}
}

// countingHandler counts the log records whose message contains a word.
type countingHandler struct {
	word string
	n    *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.word) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// A node whose consumers are busy keeps the partitions it keeps: when a
// second node arrives, the first gives two partitions back, each waiting
// for its consumer to finish a batch that takes twice the lease time, and
// meanwhile its other leases are renewed. Renewal used to wait behind each
// release, so the leases it kept expired (issue 17: leases flapping under
// load).
func TestBusyNodeKeepsItsLeasesWhileGivingSomeBack(t *testing.T) {
	var lostA atomic.Int64
	cfg := Config{Partitions: 4, Batch: 5}
	b := openBus(t, cfg)
	cfg.Stream, cfg.URL = b.cfg.Stream, b.cfg.URL
	ttl := 1500 * time.Millisecond
	publish(t, b, events(40, 5), 50)

	node := func(name string, log *slog.Logger) (*Bus, context.CancelFunc, chan error) {
		c := cfg
		c.Log = log
		nb, err := Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nb.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- nb.Serve(ctx, name, ttl, func(ctx context.Context, p int, evs []*portrait.Event) error {
				time.Sleep(2 * ttl) // a batch that takes long to apply, whatever ctx says
				return nil
			})
		}()
		return nb, cancel, done
	}
	owners := func() map[int]string {
		o, err := b.Owners(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	count := func(o map[int]string, name string) int {
		n := 0
		for _, v := range o {
			if v == name {
				n++
			}
		}
		return n
	}
	_, stopA, doneA := node("a", slog.New(countingHandler{"lost", &lostA}))
	waitFor(t, "a to take every partition", 10*time.Second, func() bool { return count(owners(), "a") == 4 })
	time.Sleep(ttl) // every consumer of a is inside a batch
	_, stopB, doneB := node("b", nil)
	waitFor(t, "a and b to share", 30*time.Second, func() bool { o := owners(); return count(o, "a") == 2 && count(o, "b") == 2 })
	time.Sleep(2 * ttl)
	if o := owners(); count(o, "a") != 2 || count(o, "b") != 2 {
		t.Errorf("owners after sharing: %v", o)
	}
	if n := lostA.Load(); n != 0 {
		t.Errorf("a lost %d leases while giving two back", n)
	}
	stopB()
	stopA()
	<-doneA
	<-doneB
}

// One slow round trip to NATS (1.2 s, longer than a third of the lease
// time, well within it) does not end a lease's term: renewals used to be
// bounded by a third of the TTL and the lease dropped at the first that
// took longer.
func TestSlowRenewalKeepsTheNamedLease(t *testing.T) {
	direct := openBus(t, Config{Partitions: 1})
	link := newSlowLink(t, direct.cfg.URL)
	var lostN atomic.Int64
	slow, err := Open(context.Background(), Config{URL: link.url(), Stream: direct.cfg.Stream, Partitions: 1, Log: slog.New(countingHandler{"lost", &lostN})})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	ttl := 3 * time.Second
	var terms, ended atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- slow.HoldLease(ctx, "applier", "a", ttl, func(ctx context.Context, _ uint64) {
			terms.Add(1)
			<-ctx.Done()
			ended.Add(1)
		})
	}()
	waitFor(t, "a to hold the lease", 10*time.Second, func() bool { return terms.Load() == 1 })
	time.Sleep(ttl / 3)
	link.delay.Store(int64(1200 * time.Millisecond))
	time.Sleep(2 * time.Second)
	link.delay.Store(0)
	time.Sleep(ttl)
	if terms.Load() != 1 || ended.Load() != 0 || lostN.Load() != 0 {
		t.Errorf("after one slow spell: %d terms, %d ended, %d leases lost; want 1, 0, 0", terms.Load(), ended.Load(), lostN.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// ServeTaking runs take for each partition taken, before its consumer
// hands over any event, with the lease's revision in the context of both;
// a node taking a partition over gets a larger revision than the holder
// before it (the term that fences the old one).
func TestServeTakingHandsTheTermToTakeAndHandle(t *testing.T) {
	cfg := Config{Partitions: 2, Batch: 20}
	b := openBus(t, cfg)
	cfg.Stream, cfg.URL = b.cfg.Stream, b.cfg.URL
	publish(t, b, events(20, 2), 20)
	type seen struct {
		mu      sync.Mutex
		taken   map[int]uint64
		handled map[int]uint64
		bad     []string
	}
	serve := func(name string, s *seen) (context.CancelFunc, chan error) {
		nb, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nb.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- nb.ServeTaking(ctx, name, 1500*time.Millisecond, func(ctx context.Context, p int) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.taken[p] = PartitionTerm(ctx)
				return nil
			}, func(ctx context.Context, p int, _ []*portrait.Event) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				if tk, ok := s.taken[p]; !ok || tk != PartitionTerm(ctx) {
					s.bad = append(s.bad, fmt.Sprintf("partition %d handled under term %d, taken under %d (%v)", p, PartitionTerm(ctx), tk, ok))
				}
				s.handled[p] = PartitionTerm(ctx)
				return nil
			})
		}()
		return cancel, done
	}
	first := &seen{taken: map[int]uint64{}, handled: map[int]uint64{}}
	stop, done := serve("first", first)
	deadline := time.Now().Add(20 * time.Second)
	for {
		first.mu.Lock()
		n := len(first.handled)
		first.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	second := &seen{taken: map[int]uint64{}, handled: map[int]uint64{}}
	stop2, done2 := serve("second", second)
	defer func() { stop2(); <-done2 }()
	for {
		second.mu.Lock()
		n := len(second.taken)
		second.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.mu.Lock()
	second.mu.Lock()
	defer first.mu.Unlock()
	defer second.mu.Unlock()
	if len(first.handled) != 2 || len(second.taken) != 2 || len(first.bad) > 0 {
		t.Fatalf("first node handled %v (taken %v, %v); second took %v", first.handled, first.taken, first.bad, second.taken)
	}
	for p := range 2 {
		if first.taken[p] == 0 || second.taken[p] <= first.taken[p] {
			t.Errorf("partition %d: first term %d, the next holder's %d: want 0 < first < next", p, first.taken[p], second.taken[p])
		}
	}
}

// The twin of postgres' TestHoldLeaseHandsOverWhenTheHolderDies: two
// nodes, each with its own connection; a holds the lease, b waits. a's
// connection closes right after one of its renewals: a stops within its
// safe time (5/6 of the lease time after that renewal was sent), not at its
// next tick after it (a whole lease time: the bucket may have expired the
// key and b taken it by then); b takes over with a larger term; never two
// at once. Before the holder loop was shared with the store's, the bus's
// had no timer at the safe time and a ran until its next tick.
func TestHoldLeaseHandsOverWhenTheHolderDies(t *testing.T) {
	b := openBus(t, Config{Partitions: 1})
	cfg := b.cfg
	ttl := 6 * time.Second
	ctx := context.Background()
	var (
		mu      sync.Mutex
		running = map[string]uint64{}
		overlap atomic.Int32
		ended   = map[string]time.Time{}
	)
	hold := func(nb *Bus, node string) (stop func()) {
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			nb.HoldLease(hctx, "jobs", node, ttl, func(ctx context.Context, term uint64) {
				mu.Lock()
				running[node] = term
				if len(running) > 1 {
					overlap.Add(1)
				}
				mu.Unlock()
				<-ctx.Done()
				mu.Lock()
				delete(running, node)
				ended[node] = time.Now()
				mu.Unlock()
			})
		}()
		return func() { cancel(); <-done }
	}
	holder := func() (string, uint64) {
		mu.Lock()
		defer mu.Unlock()
		for n, term := range running {
			return n, term
		}
		return "", 0
	}
	open := func() *Bus {
		nb, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nb.Close() })
		return nb
	}
	a, nb := open(), open()
	stopA := hold(a, "a")
	waitFor(t, "a holds the lease", 10*time.Second, func() bool { n, _ := holder(); return n == "a" })
	stopB := hold(nb, "b")
	defer stopB()
	_, termA := holder()

	// Watch the key: cut a off right after a renewal of its own.
	kv, err := b.js.KeyValue(ctx, leaseBucket(cfg.Stream))
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "jobs", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// cut is when the server stored the renewal (the same machine's
	// clock): a's safe time runs from before it, when a sent it.
	var cut time.Time
	for e := range w.Updates() {
		if e != nil && string(e.Value()) == "a" && e.Revision() > termA {
			// Once a has its answer: cut as the answer travels, the
			// renewal would not count and a's safe time would end
			// earlier.
			time.Sleep(200 * time.Millisecond)
			a.nc.Close()
			cut = e.Created()
			break
		}
	}
	waitFor(t, "a stops", 2*ttl, func() bool { mu.Lock(); defer mu.Unlock(); return !ended["a"].IsZero() })
	mu.Lock()
	stoppedAfter := ended["a"].Sub(cut)
	mu.Unlock()
	t.Logf("a stopped %s after its last renewal was stored, then cut off (lease time %s)", stoppedAfter.Round(time.Millisecond), ttl)
	if safe := ttl - ttl/6; stoppedAfter > safe+500*time.Millisecond {
		t.Errorf("a stopped %s after its last renewal: past its safe time %s", stoppedAfter, safe)
	}
	waitFor(t, "b takes over", 3*ttl, func() bool { n, _ := holder(); return n == "b" })
	took := time.Since(cut)
	stopA()
	if n, termB := holder(); n != "b" || termB <= termA {
		t.Errorf("holder %q term %d after a's term %d", n, termB, termA)
	}
	if took > ttl+ttl/3+2*time.Second {
		t.Errorf("b took over %s after a was cut off, lease time %s", took, ttl)
	}
	if overlap.Load() != 0 {
		t.Errorf("two holders ran at once %d times", overlap.Load())
	}
}

// CheckLease, the jobs' fence with a bus: it lets the holder through with
// its term, and refuses it once the key names another node or is gone
// (expired, given back), and a term it never held.
func TestCheckLeaseFencesAStaleHolder(t *testing.T) {
	b := openBus(t, Config{Partitions: 1})
	ctx := context.Background()
	ttl := 3 * time.Second
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	terms := make(chan uint64, 1)
	held := make(chan struct{})
	go func() {
		defer close(held)
		b.HoldLease(hctx, "jobs", "a", ttl, func(ctx context.Context, term uint64) {
			select {
			case terms <- term:
			default:
			}
			<-ctx.Done()
		})
	}()
	var term uint64
	select {
	case term = <-terms:
	case <-time.After(10 * time.Second):
		t.Fatal("a never held the lease")
	}
	if err := b.CheckLease(ctx, "jobs", "a", term); err != nil {
		t.Errorf("a's fence while it holds the lease: %v", err)
	}
	time.Sleep(ttl / 2) // renewed at least once: a later revision, the same term
	if err := b.CheckLease(ctx, "jobs", "a", term); err != nil {
		t.Errorf("a's fence after a renewal: %v", err)
	}
	if err := b.CheckLease(ctx, "jobs", "b", term); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("b's fence on a's lease: %v, want conflict", err)
	}
	if err := b.CheckLease(ctx, "jobs", "a", term+1000); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence for a term not begun: %v, want conflict", err)
	}
	// b's term begins behind a's back (a paused past its lease).
	kv, err := b.js.KeyValue(ctx, leaseBucket(b.cfg.Stream))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "jobs", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckLease(ctx, "jobs", "a", term); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence once b holds the lease: %v, want conflict", err)
	}
	// a stops (before b's key expires and a could take the lease again).
	stop()
	<-held
	if err := kv.Delete(ctx, "jobs"); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckLease(ctx, "jobs", "a", term); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence once the lease is gone: %v, want conflict", err)
	}
}
