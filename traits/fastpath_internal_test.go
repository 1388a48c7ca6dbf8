package traits

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
)

// A window's value sets, folded from sorted slices, are what merging the
// buckets' values into one map gives (the former way).
func TestFoldedSetsMatchMapMerge(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for round := range 300 {
		aggregate := []string{AggMostFrequent, AggUnique, AggDistinctCount}[round%3]
		g := &agg{W: 10}
		want := map[string]*freq{}
		// Few values, and (every other round) more than fold adds one by one.
		n, keys := 40, 6
		if round%2 == 1 {
			n, keys = 400, 60
		}
		for range 1 + r.Intn(n) {
			at := int64(r.Intn(8)) * 10
			k := fmt.Sprint("v", r.Intn(keys))
			tm, m := at+int64(r.Intn(10)), fmt.Sprint("m", r.Intn(50))
			g.B.add(g.slot(at), aggregate, k, tm, m)
			want = addFreq(want, k, 1, tm, m)
		}
		var scratch []fv
		_, q := g.fold(aggregate, &scratch)
		got := map[string]*freq{}
		for _, f := range q {
			got[f.K] = &freq{N: f.N, T: f.T, M: f.M}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: folded %v, want %v", round, q, want)
		}
		if !slices.IsSortedFunc(q, func(a, b fv) int { return compareKeys(a.K, b.K) }) {
			t.Fatalf("round %d: not sorted: %v", round, q)
		}
		if k, f := topFreq(want); topFV(q).K != k || topFV(q).N != f.N {
			t.Fatalf("round %d: top %v, want %s", round, topFV(q), k)
		}
	}
}

func compareKeys(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
