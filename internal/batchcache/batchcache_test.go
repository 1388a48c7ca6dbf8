package batchcache_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/batchcache"
)

type state struct{ n int }

func TestGetDecodesOnceUntilTaken(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	p := &portrait.Profile{ID: "p1"}
	decodes := 0
	decode := func(*portrait.Profile) *state { decodes++; return &state{} }
	c.Get(p, decode).n++
	c.Get(p, decode).n++
	if decodes != 1 {
		t.Fatalf("decoded %d times, want 1", decodes)
	}
	if st := c.Take(p); st == nil || st.n != 2 {
		t.Fatalf("Take = %+v, want the state with n 2", st)
	}
	if st := c.Take(p); st != nil {
		t.Fatalf("second Take = %+v, want nil", st)
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d after Take, want 0", c.Len())
	}
	c.Get(p, decode)
	if decodes != 2 {
		t.Fatalf("a Get after Take decoded %d times in all, want 2", decodes)
	}
}

// A profile re-read from storage is another object: it decodes afresh
// rather than seeing the state of the object it replaces.
func TestKeyedByObject(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	a, b := &portrait.Profile{ID: "same"}, &portrait.Profile{ID: "same"}
	c.Get(a, func(*portrait.Profile) *state { return &state{n: 1} })
	if st := c.Get(b, func(*portrait.Profile) *state { return &state{n: 2} }); st.n != 2 {
		t.Fatalf("second object got n %d, want its own state (2)", st.n)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// Entries whose profiles nobody can reach any more (a failed batch's, a
// replayed profile's) are released; entries still to be finished are kept
// however many were abandoned, past the 500,000 at which the enrichers'
// caches used to restart and lose the live ones.
func TestAbandonedReleasedLiveKept(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	live := &portrait.Profile{ID: "live"}
	c.Get(live, func(*portrait.Profile) *state { return &state{} }).n = 7
	const abandoned = 500_001
	for range abandoned {
		c.Get(&portrait.Profile{}, func(*portrait.Profile) *state { return &state{} })
	}
	if st := c.Get(live, func(*portrait.Profile) *state { return &state{} }); st.n != 7 {
		t.Fatalf("live state lost after %d abandoned entries: n %d, want 7", abandoned, st.n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Len() > 1 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d after collection, want 1 (the live entry)", n)
	}
	if st := c.Take(live); st == nil || st.n != 7 {
		t.Fatalf("Take(live) = %+v, want n 7", st)
	}
}

// Insertions sweep the entries of collected objects as they go, so that
// a long run of abandoned entries (a batch failing again and again) does
// not grow the cache between calls of Len.
func TestInsertionsSweep(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	for i := range 100_000 {
		if i%1000 == 0 {
			runtime.GC()
		}
		c.Get(&portrait.Profile{}, func(*portrait.Profile) *state { return &state{} })
		if n := batchcache.RawLen(&c); n > 4096 {
			t.Fatalf("%d entries held after %d abandoned ones, collected every 1,000", n, i+1)
		}
	}
}

// Profiles are enriched on all cores: concurrent Gets and Takes of
// different profiles each see their own state.
func TestConcurrentProfiles(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				p := &portrait.Profile{}
				for range 3 {
					c.Get(p, func(*portrait.Profile) *state { return &state{n: g * i} }).n++
				}
				if st := c.Take(p); st == nil || st.n != g*i+3 {
					t.Errorf("goroutine %d profile %d: Take = %+v, want n %d", g, i, st, g*i+3)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() != 0 {
		t.Fatalf("Len = %d, want 0", c.Len())
	}
}

// BenchmarkGetTake is the cache's cost per profile and batch: one Get that
// decodes, one that hits, one Take.
func BenchmarkGetTake(b *testing.B) {
	var c batchcache.Cache[portrait.Profile, state]
	ps := make([]*portrait.Profile, 1024)
	for i := range ps {
		ps[i] = &portrait.Profile{}
	}
	decode := func(*portrait.Profile) *state { return &state{} }
	i := 0
	for b.Loop() {
		p := ps[i%len(ps)]
		c.Get(p, decode)
		c.Get(p, decode)
		c.Take(p)
		i++
	}
}

// Put replaces the state a later Get returns without decoding.
func TestPutReplaces(t *testing.T) {
	var c batchcache.Cache[portrait.Profile, state]
	p := &portrait.Profile{ID: "p"}
	c.Get(p, func(*portrait.Profile) *state { return &state{n: 1} })
	c.Put(p, &state{n: 2})
	if st := c.Get(p, func(*portrait.Profile) *state { t.Fatal("decoded after Put"); return nil }); st.n != 2 {
		t.Fatalf("Get after Put = %d, want 2", st.n)
	}
	q := &portrait.Profile{ID: "q"}
	c.Put(q, &state{n: 3})
	if st := c.Take(q); st == nil || st.n != 3 {
		t.Fatalf("Take after Put of a new object = %+v, want n 3", st)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
}
