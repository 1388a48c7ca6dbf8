package segment_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

var (
	millionOnce sync.Once
	millionIx   *segment.Index
)

// million is an index of 1,000,000 generated profiles, built once for the
// breakdown benchmarks (about ten seconds).
func million() *segment.Index {
	millionOnce.Do(func() {
		ix := segment.NewIndex()
		r := rand.New(rand.NewPCG(3, 4))
		provs := []string{"广东省", "广东省", "浙江省", "江苏省", "北京市", "上海市", "四川省", "山东省", "河南省", "湖北省", "福建省"}
		stages := []string{"prospect", "new", "repeat", "loyal", "at_risk", "churned"}
		for i := 0; i < 1_000_000; i++ {
			p := &portrait.Profile{ID: fmt.Sprint("p", i), Traits: map[string]portrait.Trait{
				"age":             {Value: float64(18 + r.IntN(55))},
				"province":        {Value: provs[r.IntN(len(provs))]},
				"city":            {Value: fmt.Sprint("city", r.IntN(300))},
				"revenue":         {Value: float64(r.IntN(200000)) / 10},
				"lifecycle_stage": {Value: stages[r.IntN(len(stages))]},
			}}
			for _, t := range []string{"vip", "high_value", "churn_risk", "new_customer"} {
				if r.IntN(4) == 0 {
					p.Tags = append(p.Tags, portrait.ProfileTag{Name: t})
				}
			}
			ix.Upsert(p, nil)
		}
		millionIx = ix
	})
	return millionIx
}

// BenchmarkBreakdown groups a million profiles: the segment count of the
// same index is the baseline to compare with (same run, same machine).
func BenchmarkBreakdown(b *testing.B) {
	ix := million()
	plan, err := segment.CompileExpr(`"vip" in tags && traits.age in 25..40`)
	if err != nil {
		b.Fatal(err)
	}
	seg := ix.Evaluate(plan, now)
	b.Run("baseline-count-segment", func(b *testing.B) {
		for b.Loop() {
			ix.Count(plan, now)
		}
	})
	for _, c := range []struct {
		name, by, metric string
		seg              bool
	}{
		{"province", "region", "", false},
		{"province-revenue", "region", "revenue", false},
		{"city-300-values-top10", "trait:city", "", false},
		{"tags-in-segment", "tag", "", true},
		{"age-buckets-revenue", "bucket:age", "revenue", false},
		{"lifecycle-in-segment-revenue", "lifecycle", "revenue", true},
	} {
		dim, err := segment.ParseDim(c.by)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var within = seg
				if !c.seg {
					within = nil
				}
				if _, err := ix.Breakdown(dim, within, c.metric, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
