package traits_test

import (
	"runtime"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// BenchmarkEnricherCost is BenchmarkEnricherAlone for the traits enricher
// only, with the set-up (compiling definitions, decoding properties) out of
// the timer, so that allocs/op is exact and comparable between runs. It
// reports the allocations of Event and of Finish apart.
func BenchmarkEnricherCost(b *testing.B) {
	evs := benchEvents(40000)
	props := decodedProps(evs)
	now := t0.Add(time.Duration(len(evs)) * time.Minute)
	var event, finish time.Duration
	var evAllocs, finAllocs uint64
	var ms runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		en := enrichers(b)[0].(*traits.Enricher)
		profiles := map[string]*portrait.Profile{}
		runtime.ReadMemStats(&ms)
		m0 := ms.Mallocs
		b.StartTimer()
		start := time.Now()
		for i, e := range evs {
			p := profileOf(profiles, e)
			p.EventCount++
			en.Event(p, e, props[i])
		}
		mid := time.Now()
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		m1 := ms.Mallocs
		b.StartTimer()
		mid2 := time.Now()
		for _, p := range profiles {
			en.Finish(p, now)
		}
		finish += time.Since(mid2)
		event += mid.Sub(start)
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		evAllocs += m1 - m0
		finAllocs += ms.Mallocs - m1
		b.StartTimer()
	}
	b.ReportMetric(float64(event.Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	b.ReportMetric(float64(finish.Nanoseconds())/float64(b.N*2000), "ns/finish")
	b.ReportMetric(float64(evAllocs)/float64(b.N*len(evs)), "allocs/event")
	b.ReportMetric(float64(finAllocs)/float64(b.N*2000), "allocs/finish")
}

// BenchmarkEnricherRefinish times Finish on profiles already finished, as
// a tag backfill (Refresh) or a batch that brings no new events for the
// traits does: half a day later each time, so windows move now and then.
func BenchmarkEnricherRefinish(b *testing.B) {
	evs := benchEvents(40000)
	now := t0.Add(time.Duration(len(evs)) * time.Minute)
	en := enrichers(b)[0].(*traits.Enricher)
	profiles := map[string]*portrait.Profile{}
	for _, e := range evs {
		p := profileOf(profiles, e)
		p.EventCount++
		var props map[string]any
		json.Unmarshal(e.Properties, &props)
		en.Event(p, e, props)
	}
	for _, p := range profiles {
		en.Finish(p, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		at := now.Add(time.Duration(i) * 12 * time.Hour)
		for _, p := range profiles {
			en.Finish(p, at)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(profiles)), "ns/finish")
}
