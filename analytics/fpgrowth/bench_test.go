package fpgrowth_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
	"github.com/portrait-cdp/portrait/analytics/internal/apriori"
)

// The two benchmarks run on the same encoding so their ratio is the speed-up
// of the tree over level-wise candidate counting.
func BenchmarkGroceriesFPGrowth(b *testing.B) {
	e, err := fpgrowth.Encode(groceries(b), 0.001)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		e.Frequent(10, 0)
	}
}

func BenchmarkGroceriesApriori(b *testing.B) {
	e, err := fpgrowth.Encode(groceries(b), 0.001)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		apriori.Frequent(e, 10)
	}
}
