// Package batchcache holds an enricher's decoded per-profile state between
// the calls of one batch (Event and Merge) and the Finish that encodes it,
// so that a profile's state is decoded and encoded once per batch.
//
// Entries are keyed by the profile object, not its id: a profile re-read
// from storage or re-created by a replay is a new object and decodes
// afresh. Not every object that gets an entry reaches Finish: a batch that
// fails, or a replay that drops a profile merged earlier in the batch,
// leaves its objects behind. Such an entry must go, but an entry whose
// Finish is still to come must stay whatever the cache holds, or that
// profile's events of the batch are lost (a restart of the whole cache at
// a size, as the enrichers had, dropped them). So the cache holds its keys
// weakly: an entry lives exactly as long as its profile object can still
// reach Finish, and goes once the object is collected (swept when the map
// has doubled since the last sweep, so at a constant cost per entry).
package batchcache

import (
	"sync"
	"weak"
)

// minSweep is the size below which the cache is not swept.
const minSweep = 1024

// Cache maps objects of type P to their decoded state S. Its zero value is
// empty and ready. It is safe for concurrent use; one object's calls are
// expected from one goroutine at a time (as an enricher's are).
type Cache[P, S any] struct {
	mu sync.Mutex
	m  map[weak.Pointer[P]]*S
	// sweepAt is the size at which the next insertion sweeps.
	sweepAt int
}

// Get returns p's state, calling decode for it on the first Get since it
// was last taken. decode runs outside the lock: no one else touches p.
func (c *Cache[P, S]) Get(p *P, decode func(*P) *S) *S {
	w := weak.Make(p)
	c.mu.Lock()
	st, ok := c.m[w]
	c.mu.Unlock()
	if ok {
		return st
	}
	st = decode(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[w]; ok {
		return old
	}
	if c.m == nil {
		c.m = make(map[weak.Pointer[P]]*S)
	}
	if len(c.m) >= max(c.sweepAt, minSweep) {
		c.sweep()
	}
	c.m[w] = st
	return st
}

// Put makes st p's state, replacing any. An enricher that keeps states
// past Finish (the traits enricher: a profile that stays in the
// processor's cache is not decoded again next batch) uses it to replace
// one that no longer matches the profile's stored state.
func (c *Cache[P, S]) Put(p *P, st *S) {
	w := weak.Make(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[weak.Pointer[P]]*S)
	}
	if _, ok := c.m[w]; !ok && len(c.m) >= max(c.sweepAt, minSweep) {
		c.sweep()
	}
	c.m[w] = st
}

// Take removes p's state and returns it, nil when there is none.
func (c *Cache[P, S]) Take(p *P) *S {
	w := weak.Make(p)
	c.mu.Lock()
	st := c.m[w]
	delete(c.m, w)
	c.mu.Unlock()
	return st
}

// Len is the number of entries whose objects are alive.
func (c *Cache[P, S]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	return len(c.m)
}

// sweep drops the entries of objects that were collected. The caller holds
// c.mu.
func (c *Cache[P, S]) sweep() {
	for w := range c.m {
		if w.Value() == nil {
			delete(c.m, w)
		}
	}
	c.sweepAt = 2 * len(c.m)
}
