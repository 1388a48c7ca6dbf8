package parallel_test

import (
	"sync/atomic"
	"testing"

	"github.com/portrait-cdp/portrait/internal/parallel"
)

func TestForVisitsEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 1001} {
		seen := make([]atomic.Int32, n)
		parallel.For(n, func(i int) { seen[i].Add(1) })
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, seen[i].Load())
			}
		}
	}
}
