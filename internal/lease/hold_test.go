package lease

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeLease answers from its fields: a renewal succeeds (fresh or not)
// until fail is set, then fails at once with an error (unreachable).
type fakeLease struct {
	mu        sync.Mutex
	fail      bool
	stale     bool      // renewals held but not fresh
	lastFresh time.Time // when the last fresh renewal (or the take) was sent
}

func (f *fakeLease) Acquire(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFresh = time.Now()
	return 7, nil
}

func (f *fakeLease) Renew(context.Context, uint64) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return true, false, errors.New("unreachable")
	}
	if f.stale {
		return true, false, nil
	}
	f.lastFresh = time.Now()
	return true, true, nil
}

func (f *fakeLease) Release(context.Context, uint64) error { return nil }

func (f *fakeLease) set(fn func(f *fakeLease)) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
	return f.lastFresh
}

// holdUntilStopped holds l and returns when fn was cancelled (or fails
// the test after wait).
func holdUntilStopped(t *testing.T, l Lease, ttl time.Duration, after func(), wait time.Duration) time.Time {
	t.Helper()
	h := &Holder{Lease: l, Name: "jobs", Node: "a", TTL: ttl, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, ended := make(chan struct{}), make(chan time.Time, 1)
	go h.Hold(ctx, func(ctx context.Context, term uint64) {
		close(started)
		<-ctx.Done()
		ended <- time.Now()
	})
	<-started
	after()
	select {
	case at := <-ended:
		return at
	case <-time.After(wait):
		t.Fatalf("fn still runs %s later", wait)
		return time.Time{}
	}
}

// Renewals that fail at once (the other side unreachable) stop the holder
// at its safe time, 5/6 of the lease time after its last fresh renewal was
// sent, not at the next tick after it (a whole lease time).
func TestHolderStopsAtItsSafeTimeWhenRenewalsFailFast(t *testing.T) {
	ttl := 3 * time.Second
	f := &fakeLease{}
	var last time.Time
	at := holdUntilStopped(t, f, ttl, func() {
		time.Sleep(ttl/3 + 100*time.Millisecond) // one fresh renewal
		last = f.set(func(f *fakeLease) { f.fail = true })
	}, 2*ttl)
	if d, safe := at.Sub(last), SafeUntil(last, ttl).Sub(last); d < safe-50*time.Millisecond || d > safe+250*time.Millisecond {
		t.Errorf("stopped %s after the last fresh renewal; the safe time is %s", d, safe)
	}
}

// A renewal found stored but not by this call (its answer lost) keeps the
// term held without moving its safe time: the holder stops at the safe
// time of its last fresh renewal.
func TestHolderDoesNotMoveItsSafeTimeOnAStaleRenewal(t *testing.T) {
	ttl := 3 * time.Second
	f := &fakeLease{}
	var last time.Time
	at := holdUntilStopped(t, f, ttl, func() {
		last = f.set(func(f *fakeLease) { f.stale = true })
	}, 2*ttl)
	if d, safe := at.Sub(last), SafeUntil(last, ttl).Sub(last); d > safe+250*time.Millisecond {
		t.Errorf("stopped %s after the last fresh renewal; the safe time is %s", d, safe)
	}
}
