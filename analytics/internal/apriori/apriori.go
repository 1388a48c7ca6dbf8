// Package apriori is a plain level-wise Apriori (Agrawal & Srikant 1994) over
// the same rank-coded baskets as FP-Growth. It exists as an independent
// correctness oracle and speed baseline for FP-Growth: tests require both to
// find exactly the same itemsets with the same counts.
package apriori

import (
	"sort"

	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
)

// Frequent returns every itemset of at most maxLen items that occurs in at
// least e.MinCount baskets, sorted like fpgrowth's output.
func Frequent(e *fpgrowth.Encoded, maxLen int) []fpgrowth.Set {
	if maxLen <= 0 {
		maxLen = 10
	}
	nItems := len(e.Names)
	words := (nItems + 63) / 64
	// Each basket as a bitset, so a candidate's containment is k bit tests.
	bits := make([]uint64, len(e.Baskets)*words)
	for b, basket := range e.Baskets {
		row := bits[b*words : (b+1)*words]
		for _, it := range basket {
			row[it/64] |= 1 << (it % 64)
		}
	}
	var out []fpgrowth.Set
	var level [][]int32
	for it := 0; it < nItems; it++ {
		level = append(level, []int32{int32(it)})
		out = append(out, fpgrowth.Set{Items: []int32{int32(it)}, Count: e.Counts[it]})
	}
	for k := 2; k <= maxLen && len(level) > 1; k++ {
		cands := candidates(level)
		counts := make([]int, len(cands))
		for b := range e.Baskets {
			if len(e.Baskets[b]) < k {
				continue
			}
			row := bits[b*words : (b+1)*words]
			for c, cand := range cands {
				in := true
				for _, it := range cand {
					if row[it/64]&(1<<(it%64)) == 0 {
						in = false
						break
					}
				}
				if in {
					counts[c]++
				}
			}
		}
		level = level[:0]
		for c, cand := range cands {
			if counts[c] >= e.MinCount {
				level = append(level, cand)
				out = append(out, fpgrowth.Set{Items: cand, Count: counts[c]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Items, out[j].Items
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		for x := range a {
			if a[x] != b[x] {
				return a[x] < b[x]
			}
		}
		return false
	})
	return out
}

// candidates joins frequent (k-1)-sets sharing their first k-2 items and
// prunes joins with an infrequent (k-1)-subset.
func candidates(level [][]int32) [][]int32 {
	sort.Slice(level, func(i, j int) bool {
		for x := range level[i] {
			if level[i][x] != level[j][x] {
				return level[i][x] < level[j][x]
			}
		}
		return false
	})
	known := make(map[string]bool, len(level))
	for _, s := range level {
		known[key(s)] = true
	}
	var out [][]int32
	sub := []int32{}
	for i := 0; i < len(level); i++ {
		a := level[i]
		for j := i + 1; j < len(level); j++ {
			b := level[j]
			if !samePrefix(a, b) {
				break
			}
			cand := append(append([]int32(nil), a...), b[len(b)-1])
			ok := true
			for drop := 0; drop < len(cand)-2 && ok; drop++ {
				sub = append(append(sub[:0], cand[:drop]...), cand[drop+1:]...)
				ok = known[key(sub)]
			}
			if ok {
				out = append(out, cand)
			}
		}
	}
	return out
}

func samePrefix(a, b []int32) bool {
	for x := 0; x < len(a)-1; x++ {
		if a[x] != b[x] {
			return false
		}
	}
	return true
}

func key(ids []int32) string {
	b := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return string(b)
}
