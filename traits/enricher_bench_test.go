package traits_test

import (
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// BenchmarkEnricherAlone runs the benchmark's events through the two
// enrichers directly, without the processor and storage, as the processor
// does: every event, then one Finish per profile. It reports the enrichers'
// own cost and the size of the state they leave.
func BenchmarkEnricherAlone(b *testing.B) {
	evs := benchEvents(40000)
	props := decodedProps(evs)
	now := t0.Add(time.Duration(len(evs)) * time.Minute)
	var event, finish time.Duration
	var size int
	for range b.N {
		ens := enrichers(b)
		profiles := map[string]*portrait.Profile{}
		start := time.Now()
		for i, e := range evs {
			p := profileOf(profiles, e)
			p.EventCount++
			for _, en := range ens {
				en.Event(p, e, props[i])
			}
		}
		mid := time.Now()
		for _, p := range profiles {
			for _, en := range ens {
				en.Finish(p, now)
			}
		}
		event += mid.Sub(start)
		finish += time.Since(mid)
		size = 0
		for _, p := range profiles {
			size += len(p.State[traits.StateKey])
		}
	}
	b.ReportMetric(float64(event.Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	b.ReportMetric(float64(finish.Nanoseconds())/float64(b.N*2000), "ns/finish")
	b.ReportMetric(float64(size)/2000, "state-bytes")
}
