package segment

import (
	"math"

	"github.com/RoaringBitmap/roaring/v2"
)

// NumericStat is a numeric trait over a set of profiles: the sum and count
// of those holding a number for it, and (when asked) those numbers.
type NumericStat struct {
	Sum    float64
	N      int
	Values []float64
}

// NumericStats sums numeric traits over the live profiles of within (nil:
// every live profile), in one pass over the members: the i-th stat is of
// names[i], with its numbers (in profile number order) when values[i], for
// medians and distributions. It reads the traits' dense columns, where a
// profile without a number holds NaN, so a figure over a million profiles
// costs a pass over the members, not a document read each (the customer
// business map takes several per cell).
func (ix *Index) NumericStats(names []string, within *roaring.Bitmap, values []bool) []NumericStat {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]NumericStat, len(names))
	cols := make([][]float64, len(names))
	found := false
	for i, name := range names {
		if c := ix.traits[name]; c != nil {
			cols[i] = c.nums
			found = found || len(c.nums) > 0
		}
	}
	if !found {
		return out
	}
	scope := ix.live
	if within != nil {
		scope = roaring.And(within, ix.live)
	}
	eachBatch(scope, func(ns []uint32) {
		for i, nums := range cols {
			st := &out[i]
			keep := i < len(values) && values[i]
			for _, k := range ns {
				if int(k) >= len(nums) {
					continue
				}
				v := nums[k]
				if math.IsNaN(v) {
					continue
				}
				st.Sum += v
				st.N++
				if keep {
					st.Values = append(st.Values, v)
				}
			}
		}
	})
	return out
}
