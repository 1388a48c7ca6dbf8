package http

import (
	"context"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait/quality"
)

// answerCache keeps derived answers that read every profile (the quality
// report, the lifecycle over time) so that a page's call costs a map read,
// not a pass over the data, even under a steady stream of events:
//
//   - an answer computed at the store's current data version is served as
//     it is (fresh);
//   - once data changed, the old answer is still served for up to maxStale
//     (marked stale), and one background computation replaces it, at most
//     every minRefresh: the next request gets the new one;
//   - an answer older than maxStale, or none, is computed in the request;
//   - so is one whose last computation took less than syncBelow: when it
//     is that cheap, an exact answer is worth the wait.
//
// The data version (quality.Versioner: SQLite's data_version of both files)
// changes on every commit. The segment index follows commits a moment
// later, so an answer read from it may be computed at a version whose
// changes it does not show yet; trustFor bounds how long an answer is
// trusted on the version alone (a refresh follows, in the background).
// Without a version, answers are fresh for trustFor.
type answerCache struct {
	version    quality.Versioner // nil: time alone
	trustFor   time.Duration
	minRefresh time.Duration
	maxStale   time.Duration
	syncBelow  time.Duration
	maxEntries int

	mu      sync.Mutex
	entries map[string]*cachedAnswer
	bg      *background
}

type cachedAnswer struct {
	compute    sync.Mutex // one computation of this key at a time
	val        any
	version    string
	at         time.Time     // computed at (wall clock of the computation's start)
	gen        int           // computations so far
	cost       time.Duration // the last computation's duration (real time)
	refreshing bool
}

// answerFreshness says how current a served answer is.
type answerFreshness struct {
	DataVersion string    `json:"data_version,omitempty"`
	ComputedAt  time.Time `json:"computed_at"`
	Cached      bool      `json:"cached"` // served without computing it in this request
	// Stale: data changed since it was computed; a newer answer is being
	// computed and answers at most max_stale_seconds old are served.
	Stale           bool    `json:"stale"`
	AgeSeconds      float64 `json:"age_seconds"`
	MaxStaleSeconds float64 `json:"max_stale_seconds"`
}

// background runs the caches' refreshes; Server.Close stops and waits.
type background struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (b *background) init() {
	b.once.Do(func() { b.ctx, b.cancel = context.WithCancel(context.Background()) })
}

// goDo runs fn in the background unless the server is closing (false).
func (b *background) goDo(fn func(ctx context.Context)) bool {
	b.init()
	if b.ctx.Err() != nil {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn(b.ctx)
	}()
	return true
}

// stop cancels the refreshes in flight and waits for them.
func (b *background) stop() {
	b.init()
	b.cancel()
	b.wg.Wait()
}

// get returns key's answer, computing it with fn when needed (see above).
func (c *answerCache) get(ctx context.Context, key string, now func() time.Time, fn func(ctx context.Context) (any, error)) (any, answerFreshness, error) {
	version := ""
	if c.version != nil {
		v, err := c.version.DataVersion(ctx)
		if err != nil {
			return nil, answerFreshness{}, err
		}
		version = v
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*cachedAnswer{}
	}
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= c.maxEntries { // many distinct queries: start over rather than grow
			clear(c.entries)
		}
		e = &cachedAnswer{}
		c.entries[key] = e
	}
	t := now()
	if e.val != nil {
		age := t.Sub(e.at)
		fresh := age < c.trustFor && (c.version == nil || e.version == version)
		if fresh || age < c.maxStale && e.cost >= c.syncBelow {
			if !fresh && !e.refreshing && age >= c.minRefresh {
				e.refreshing = c.bg.goDo(func(bctx context.Context) { c.refresh(bctx, e, now, fn) })
			}
			f := c.freshness(e, t, true, !fresh)
			val := e.val
			c.mu.Unlock()
			return val, f, nil
		}
	}
	gen := e.gen
	c.mu.Unlock()

	// Computed in the request: concurrent requests for the key wait for
	// one computation and share it.
	e.compute.Lock()
	defer e.compute.Unlock()
	c.mu.Lock()
	if e.gen != gen && e.val != nil { // computed while this request waited
		f := c.freshness(e, now(), true, false)
		val := e.val
		c.mu.Unlock()
		return val, f, nil
	}
	c.mu.Unlock()
	start, began := now(), time.Now()
	val, err := fn(ctx)
	if err != nil {
		return nil, answerFreshness{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.val, e.version, e.at, e.cost = val, version, start, time.Since(began)
	e.gen++
	return val, c.freshness(e, now(), false, false), nil
}

// refresh recomputes e in the background.
func (c *answerCache) refresh(ctx context.Context, e *cachedAnswer, now func() time.Time, fn func(ctx context.Context) (any, error)) {
	defer func() {
		c.mu.Lock()
		e.refreshing = false
		c.mu.Unlock()
	}()
	e.compute.Lock()
	defer e.compute.Unlock()
	version := ""
	if c.version != nil {
		v, err := c.version.DataVersion(ctx)
		if err != nil {
			return // the next request tries again
		}
		version = v
	}
	start, began := now(), time.Now()
	val, err := fn(ctx)
	if err != nil {
		return
	}
	c.mu.Lock()
	e.val, e.version, e.at, e.cost = val, version, start, time.Since(began)
	e.gen++
	c.mu.Unlock()
}

func (c *answerCache) freshness(e *cachedAnswer, now time.Time, cached, stale bool) answerFreshness {
	return answerFreshness{DataVersion: e.version, ComputedAt: e.at.UTC(), Cached: cached, Stale: stale,
		AgeSeconds: max(0, now.Sub(e.at).Seconds()), MaxStaleSeconds: c.maxStale.Seconds()}
}

// syncBelow: answers computed faster than this are computed in the request
// once data changed (exact), slower ones served stale while refreshed.
const syncBelow = 50 * time.Millisecond

// speedCaches are the server's answer caches and their background work.
type speedCaches struct {
	once      sync.Once
	bg        background
	quality   *answerCache
	lifecycle *answerCache
}

// caches returns the server's answer caches, made on first use from the
// stores' versions.
func (s *Server) caches() *speedCaches {
	c := &s.speed
	c.once.Do(func() {
		// The quality report reads the stores themselves: an answer at
		// the current version is exact, kept while nothing is committed.
		c.quality = &answerCache{trustFor: 10 * time.Second, minRefresh: 10 * time.Second, maxStale: 5 * time.Minute, syncBelow: syncBelow, maxEntries: 16, bg: &c.bg}
		// Keyed on what the report reads (quality.VersionOf: the content
		// version where the store has one), so sign-ins and audit records,
		// which commit too, keep the answers.
		if v := quality.VersionOf(s.QualityStore); v != nil {
			c.quality.version, c.quality.trustFor = v, time.Hour
		}
		// The lifecycle reads the segment index, which follows commits.
		c.lifecycle = &answerCache{trustFor: 30 * time.Second, minRefresh: 5 * time.Second, maxStale: 5 * time.Minute, syncBelow: syncBelow, maxEntries: 256, bg: &c.bg}
		if v := quality.VersionOf(s.Profiles); v != nil {
			c.lifecycle.version = v
		} else {
			c.lifecycle.trustFor = 5 * time.Second
		}
	})
	return c
}

// Prime computes in the background what the console's first pages read
// and what costs a pass over the data: the quality report and the
// overview's per-source totals (read from the whole log once). Open calls
// it, and `portrait demo` again once its data is loaded. Errors are left
// for the requests to report.
func (s *Server) Prime() {
	c := s.caches()
	if s.QualityStore != nil {
		c.bg.goDo(func(ctx context.Context) {
			c.quality.get(ctx, "top=10", s.Now, s.buildQuality(10))
		})
	}
	if s.Overview != nil {
		c.bg.goDo(func(ctx context.Context) { s.Overview.SourceActivity(ctx) })
	}
}
