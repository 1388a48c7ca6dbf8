package segment_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// BenchmarkInsight50Attributes compares a 10 % segment with 200,000
// generated profiles over 50 attributes (30 categorical traits, 10 numeric,
// 10 tags); portrait bench insight runs a million beside a baseline.
func BenchmarkInsight50Attributes(b *testing.B) {
	ix := segment.NewIndex()
	for i := range 200_000 {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		p := &portrait.Profile{ID: "p" + strconv.Itoa(i), Traits: map[string]portrait.Trait{}}
		for t := range 10 {
			if r.Float64() < 0.1+0.05*float64(t) {
				p.Tags = append(p.Tags, portrait.ProfileTag{Name: "t" + strconv.Itoa(t)})
			}
		}
		for c := range 30 {
			p.Traits["c"+strconv.Itoa(c)] = portrait.Trait{Value: "v" + strconv.Itoa(min(int(r.ExpFloat64()*2), 7))}
		}
		for k := range 10 {
			p.Traits["n"+strconv.Itoa(k)] = portrait.Trait{Value: r.NormFloat64()*10 + 50}
		}
		ix.Upsert(p, nil)
	}
	target := ix.Scope(nil, "t0")
	b.ResetTimer()
	for b.Loop() {
		if _, err := ix.Insight(target, nil, segment.InsightOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
