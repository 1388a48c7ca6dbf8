package segment

import (
	"math"

	"github.com/RoaringBitmap/roaring/v2"
)

// NumericStats sums a numeric trait over the live profiles of within (nil:
// every live profile) that hold a number for it, and counts them; with
// values it also returns those numbers (in profile number order), for
// medians and distributions. It reads the trait's dense column, so a
// figure over a million profiles costs one pass over the members, not a
// document read each (the customer business map takes several per cell).
func (ix *Index) NumericStats(name string, within *roaring.Bitmap, values bool) (sum float64, n int, vals []float64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	c := ix.traits[name]
	if c == nil {
		return 0, 0, nil
	}
	scope := roaring.And(c.isNum, ix.live)
	if within != nil {
		scope.And(within)
	}
	if values {
		vals = make([]float64, 0, scope.GetCardinality())
	}
	nums := c.nums
	eachBatch(scope, func(ns []uint32) {
		for _, k := range ns {
			if int(k) >= len(nums) {
				continue
			}
			v := nums[k]
			if math.IsNaN(v) {
				continue
			}
			sum += v
			n++
			if values {
				vals = append(vals, v)
			}
		}
	})
	return sum, n, vals
}
