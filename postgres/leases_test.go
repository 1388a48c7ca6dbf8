package postgres

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// A lease's terms: taken while free, refused while held, expired on the
// database's clock, taken again with a larger term; a holder paused past
// its lease can neither renew it nor pass the fence (CheckLease), and the
// fence asks for a margin of time left.
func TestLeaseTermsFenceAStaleHolder(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	ttl := time.Second
	t1, err := db.TakeLease(ctx, "jobs", "a", ttl)
	if err != nil || t1 == 0 {
		t.Fatalf("a takes the free lease: term %d, %v", t1, err)
	}
	if t2, err := db.TakeLease(ctx, "jobs", "b", ttl); err != nil || t2 != 0 {
		t.Fatalf("b takes a held lease: term %d, %v", t2, err)
	}
	if err := db.CheckLease(ctx, "jobs", "a", t1, 0); err != nil {
		t.Errorf("a's fence while it holds the lease: %v", err)
	}
	if err := db.CheckLease(ctx, "jobs", "a", t1, 2*ttl); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence asking for more time than the lease has: %v, want conflict", err)
	}
	if h, _ := db.LeaseHolder(ctx, "jobs"); h != "a" {
		t.Errorf("holder %q, want a", h)
	}

	time.Sleep(ttl + 200*time.Millisecond) // a is paused past its lease
	if ok, err := db.RenewLease(ctx, "jobs", "a", t1, ttl); err != nil || ok {
		t.Errorf("a renews a lapsed term: %v %v, want refused", ok, err)
	}
	t2, err := db.TakeLease(ctx, "jobs", "b", ttl)
	if err != nil || t2 <= t1 {
		t.Fatalf("b takes the expired lease: term %d (a's was %d), %v", t2, t1, err)
	}
	if err := db.CheckLease(ctx, "jobs", "a", t1, 0); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a's fence after b took the lease: %v, want conflict", err)
	}
	if ok, err := db.RenewLease(ctx, "jobs", "a", t1, ttl); err != nil || ok {
		t.Errorf("a renews b's lease: %v %v", ok, err)
	}
	if ok, err := db.RenewLease(ctx, "jobs", "b", t2, ttl); err != nil || !ok {
		t.Errorf("b renews its lease: %v %v", ok, err)
	}
	// Given back: taken at once, with a larger term still.
	if err := db.ReleaseLease(ctx, "jobs", "b", t2); err != nil {
		t.Fatal(err)
	}
	if h, _ := db.LeaseHolder(ctx, "jobs"); h != "" {
		t.Errorf("holder %q after release, want none", h)
	}
	if t3, err := db.TakeLease(ctx, "jobs", "a", ttl); err != nil || t3 <= t2 {
		t.Errorf("a takes the released lease: term %d (b's was %d), %v", t3, t2, err)
	}
	if err := db.CheckLease(ctx, "jobs", "b", t2, 0); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("b's fence after giving the lease back: %v", err)
	}
}

// HoldLease on two nodes, each with its own connections to one database:
// one runs at a time; the holder cut off from the database (its pool
// closed, as a node killed or partitioned away) stops within its safe time
// and the other takes over within about the lease time, with a larger
// term; a holder stopping gives the lease back, and the other takes it at
// its next try.
func TestHoldLeaseHandsOverWhenTheHolderDies(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	open := func() *DB {
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		db.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		return db
	}
	ttl := 1500 * time.Millisecond
	var (
		mu      sync.Mutex
		running = map[string]uint64{}
		overlap atomic.Int32
		log     []string
	)
	hold := func(db *DB, node string) (stop func()) {
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			db.HoldLease(hctx, "jobs", node, ttl, func(ctx context.Context, term uint64) {
				mu.Lock()
				running[node] = term
				if len(running) > 1 {
					overlap.Add(1)
				}
				log = append(log, node)
				mu.Unlock()
				<-ctx.Done()
				mu.Lock()
				delete(running, node)
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
	dbA, dbB := open(), open()
	defer dbB.Close()
	stopA := hold(dbA, "a")
	waitFor(t, 10*time.Second, "a holds the lease", func() bool { n, _ := holder(); return n == "a" })
	stopB := hold(dbB, "b")
	defer stopB()
	time.Sleep(2 * ttl)
	if n, _ := holder(); n != "a" {
		t.Fatalf("holder %q after two lease times, want a still", n)
	}
	_, termA := holder()

	// a is cut off: its renewals fail; it stops before its row expires,
	// and b takes the lease once it has.
	cut := time.Now()
	dbA.Close()
	waitFor(t, 4*ttl, "b takes over", func() bool { n, _ := holder(); return n == "b" })
	took := time.Since(cut)
	stopA()
	if n, termB := holder(); n != "b" || termB <= termA {
		t.Errorf("holder %q term %d after a's term %d", n, termB, termA)
	}
	// ttl/3 for b's next try after expiry, and a loaded machine.
	if took > ttl+ttl/3+time.Second {
		t.Errorf("b took over %s after a was cut off, lease time %s", took, ttl)
	}
	if overlap.Load() != 0 {
		t.Errorf("two holders ran at once %d times (%v)", overlap.Load(), log)
	}
	t.Logf("b took over %s after a was cut off (lease time %s)", took.Round(time.Millisecond), ttl)

	// A holder that stops gives the lease back: a third node takes it at
	// its next try, not after the TTL.
	dbC := open()
	defer dbC.Close()
	stopC := hold(dbC, "c")
	defer stopC()
	time.Sleep(ttl / 2)
	stopB()
	waitFor(t, ttl, "c takes the lease b gave back", func() bool { n, _ := holder(); return n == "c" })
	if overlap.Load() != 0 {
		t.Errorf("two holders ran at once (%v)", log)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
