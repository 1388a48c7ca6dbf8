// Package parallel runs independent per-item work on all cores.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For runs fn(0..n-1) on all cores; small n runs inline, where goroutines
// would cost more than they save. Workers take the items in small runs of
// consecutive indexes as they go, rather than a fixed share each: items
// differ in cost (a profile with a long history, one without), and other
// goroutines (the state writer) take a core now and then, so fixed shares
// leave a core idle at the end while the other finishes its share.
func For(n int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 256 || workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	// Runs of consecutive items keep neighbours (often stored together)
	// on one core, and the counter uncontended.
	run := max(1, min(64, n/(workers*32)))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(run))) - run
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+run, n); i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}
