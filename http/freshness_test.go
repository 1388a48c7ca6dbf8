package http

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeVersion struct {
	mu sync.Mutex
	v  string
}

func (f *fakeVersion) DataVersion(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, nil
}

func (f *fakeVersion) set(v string) { f.mu.Lock(); f.v = v; f.mu.Unlock() }

// The answer cache: fresh while the version holds (and within trustFor),
// the previous answer marked stale with one background refresh (not before
// minRefresh) once it changed, computed in the request beyond maxStale,
// and one computation shared by concurrent misses.
func TestAnswerCache(t *testing.T) {
	ver := &fakeVersion{v: "1"}
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var bg background
	defer bg.stop()
	c := &answerCache{version: ver, trustFor: time.Minute, minRefresh: 5 * time.Second, maxStale: 5 * time.Minute, maxEntries: 4, bg: &bg}
	var calls atomic.Int64
	fn := func(context.Context) (any, error) {
		n := calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return n, nil
	}
	ctx := context.Background()
	check := func(label string, wantVal int64, cached, stale bool) {
		t.Helper()
		v, f, err := c.get(ctx, "k", clock, fn)
		if err != nil {
			t.Fatal(err)
		}
		if v.(int64) != wantVal || f.Cached != cached || f.Stale != stale {
			t.Fatalf("%s: value %v cached %v stale %v; want %v %v %v", label, v, f.Cached, f.Stale, wantVal, cached, stale)
		}
	}
	check("first", 1, false, false)
	check("same version", 1, true, false)
	ver.set("2")
	check("changed a moment ago", 1, true, true)
	if calls.Load() != 1 {
		t.Fatalf("refreshed before minRefresh: %d computations", calls.Load())
	}
	advance(6 * time.Second)
	check("changed, refresh due", 1, true, true)
	waitFor(t, func() bool { v, f, _ := c.get(ctx, "k", clock, fn); return v.(int64) == 2 && !f.Stale })
	if calls.Load() != 2 {
		t.Fatalf("%d computations, want one refresh", calls.Load())
	}
	// Same version but older than trustFor: served stale, refreshed.
	advance(2 * time.Minute)
	check("past trustFor", 2, true, true)
	waitFor(t, func() bool { v, _, _ := c.get(ctx, "k", clock, fn); return v.(int64) == 3 })
	// Beyond maxStale: computed in the request.
	ver.set("3")
	advance(6 * time.Minute)
	check("past maxStale", 4, false, false)

	// Concurrent misses of a new key share one computation.
	before := calls.Load()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.get(ctx, "other", clock, fn); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load() - before; n != 1 {
		t.Errorf("8 concurrent misses made %d computations", n)
	}

	// An answer cheaper than syncBelow is recomputed in the request once
	// data changed.
	c.syncBelow = time.Hour
	ver.set("3b")
	check("cheap answer, changed", calls.Load()+1, false, false)
	c.syncBelow = 0

	// Closed: no refresh starts; answers are still served.
	bg.stop()
	ver.set("4")
	advance(10 * time.Second)
	v, _, _ := c.get(ctx, "k", clock, fn)
	check("after stop", v.(int64), true, true)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never landed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
