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
// reach Finish, and is released when the object is collected.
package batchcache

import (
	"runtime"
	"sync"
	"weak"
)

// Cache maps objects of type P to their decoded state S. Its zero value is
// empty and ready. It is safe for concurrent use; one object's calls are
// expected from one goroutine at a time (as an enricher's are).
type Cache[P, S any] struct {
	mu sync.Mutex
	m  map[weak.Pointer[P]]entry[S]
}

type entry[S any] struct {
	st *S
	// release removes the entry when its object is collected; stopped
	// when the entry is taken, so that an object cached in many batches
	// does not gather one cleanup per batch.
	release runtime.Cleanup
}

// Get returns p's state, calling decode for it on the first Get since it
// was last taken. decode runs outside the lock: no one else touches p.
func (c *Cache[P, S]) Get(p *P, decode func(*P) *S) *S {
	w := weak.Make(p)
	c.mu.Lock()
	en, ok := c.m[w]
	c.mu.Unlock()
	if ok {
		return en.st
	}
	st := decode(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if en, ok := c.m[w]; ok {
		return en.st
	}
	if c.m == nil {
		c.m = make(map[weak.Pointer[P]]entry[S])
	}
	c.m[w] = entry[S]{st: st, release: runtime.AddCleanup(p, c.forget, w)}
	return st
}

// Take removes p's state and returns it, nil when there is none.
func (c *Cache[P, S]) Take(p *P) *S {
	w := weak.Make(p)
	c.mu.Lock()
	en, ok := c.m[w]
	delete(c.m, w)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	en.release.Stop()
	return en.st
}

// Len is the number of entries held.
func (c *Cache[P, S]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// forget drops the entry of an object that was collected.
func (c *Cache[P, S]) forget(w weak.Pointer[P]) {
	c.mu.Lock()
	delete(c.m, w)
	c.mu.Unlock()
}
