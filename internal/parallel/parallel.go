// Package parallel runs independent per-item work on all cores.
package parallel

import (
	"runtime"
	"sync"
)

// For runs fn(0..n-1) on all cores in contiguous chunks; small n runs
// inline, where goroutines would cost more than they save.
func For(n int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 256 || workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < n; w += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}(w, min(w+chunk, n))
	}
	wg.Wait()
}
