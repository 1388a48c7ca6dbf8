package segment_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// BenchmarkCount5Clauses counts the 5-clause benchmark segment on 200,000
// generated profiles (portrait bench segments runs a million and compares
// with SQL).
func BenchmarkCount5Clauses(b *testing.B) {
	ix := segment.NewIndex()
	r := rand.New(rand.NewPCG(1, 2))
	provs := []string{"广东省", "浙江省", "江苏省", "北京市"}
	for i := 0; i < 200_000; i++ {
		p := &portrait.Profile{ID: fmt.Sprint("p", i), Traits: map[string]portrait.Trait{
			"age": {Value: float64(18 + r.IntN(55))}, "province": {Value: provs[r.IntN(len(provs))]}}}
		for _, t := range []string{"vip", "high_value"} {
			if r.IntN(4) == 0 {
				p.Tags = append(p.Tags, portrait.ProfileTag{Name: t})
			}
		}
		var s segment.Summary
		if r.IntN(3) == 0 {
			s = segment.Summary{}
			for j := 0; j < 1+r.IntN(5); j++ {
				s.Add("Order Completed", now.Add(-time.Duration(r.IntN(90*24))*time.Hour), float64(r.IntN(2000)))
			}
		}
		ix.Upsert(p, s)
	}
	plan, err := segment.CompileExpr(`"vip" in tags && "high_value" in tags && traits.age in 25..40 && traits.province == "广东省" && event_count("Order Completed", "30d", amount > 500) >= 2`)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ix.Count(plan, now)
	}
}
