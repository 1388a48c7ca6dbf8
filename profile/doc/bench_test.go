package doc

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// BenchmarkProfileDoc encodes and decodes a profile in version 1 (the
// baseline, go-json) and version 2 (doc.go): a bare profile (a few traits,
// identifiers, event counts) and the enriched buyer of testdata (34 computed
// traits, among them a list and a list of maps, 38 tags, 4.6 KB of enricher
// state), as the processor wrote it. The two versions alternate call by call,
// so that both see the same machine, and each is reported: v1-ns/op,
// v2-ns/op, their ratio v2/v1, allocations and bytes allocated per call, and
// the size of the document.
//
//	go test ./sqlite -run '^$' -bench ProfileDoc -count 5
func BenchmarkProfileDoc(b *testing.B) {
	raw, err := os.ReadFile("testdata/profile_v1_enriched.json")
	if err != nil {
		b.Fatal(err)
	}
	enriched, err := Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 28, 15, 2, 0, 123456000, time.UTC)
	bare := &portrait.Profile{ID: "p_2kbjmxta5lc7tirh",
		Traits: map[string]portrait.Trait{
			"email": {Value: "wang.fang@example.com", Source: "web", Time: at, MessageID: "m-0001"},
			"name":  {Value: "王芳", Source: "web", Time: at, MessageID: "m-0001"},
			"plan":  {Value: "pro", Source: "crm", Time: at.Add(-time.Hour), MessageID: "m-0000", Priority: 2},
			"age":   {Value: 34.0, Source: "crm", Time: at.Add(-time.Hour), MessageID: "m-0000", Priority: 2},
		},
		Identifiers: []portrait.Identifier{{Type: "user_id", Value: "u1782"}, {Type: "anonymous_id", Value: "a-5f1c9e2b"}, {Type: "email", Value: "wang.fang@example.com"}},
		FirstSeen:   at.Add(-time.Hour), LastSeen: at, EventCount: 17,
		EventCounts: map[string]int{"identify": 2, "track": 10, "page": 5},
		TrackCounts: map[string]int{"Product Viewed": 8, "Order Completed": 2},
		FirstKey:    portrait.EventKey{Time: at.Add(-time.Hour), MessageID: "m-0000"},
		LastKey:     portrait.EventKey{Time: at, MessageID: "m-0016"},
		IdentityKey: portrait.EventKey{Time: at, MessageID: "m-0001"},
		UpdatedAt:   at.Add(time.Minute),
	}
	for _, c := range []struct {
		name string
		p    *portrait.Profile
	}{{"bare", bare}, {"enriched", enriched}} {
		v1, err := encodeProfileV1(c.p)
		if err != nil {
			b.Fatal(err)
		}
		v2, err := Encode(c.p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/encode", func(b *testing.B) {
			benchPair(b, func() { encodeProfileV1(c.p) }, func() { Encode(c.p) })
			b.ReportMetric(float64(len(v1)), "v1-doc-bytes")
			b.ReportMetric(float64(len(v2)), "v2-doc-bytes")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			benchPair(b, func() { Decode(v1) }, func() { Decode(v2) })
		})
	}
}

// benchPair runs v1 and v2 alternately and reports the time, allocations and
// bytes allocated of each call, and the ratio of the times.
func benchPair(b *testing.B, v1, v2 func()) {
	var t1, t2 time.Duration
	for b.Loop() {
		start := time.Now()
		v1()
		mid := time.Now()
		v2()
		t2 += time.Since(mid)
		t1 += mid.Sub(start)
	}
	b.ReportMetric(float64(t1.Nanoseconds())/float64(b.N), "v1-ns/op")
	b.ReportMetric(float64(t2.Nanoseconds())/float64(b.N), "v2-ns/op")
	b.ReportMetric(float64(t2)/float64(t1), "v2/v1")
	b.ReportMetric(0, "ns/op") // both calls together: see v1-ns/op and v2-ns/op
	for _, v := range []struct {
		name string
		f    func()
	}{{"v1", v1}, {"v2", v2}} {
		allocs, bytes := allocated(v.f)
		b.ReportMetric(allocs, v.name+"-allocs/op")
		b.ReportMetric(bytes, v.name+"-B/op")
	}
}

// allocated returns the allocations and bytes allocated by a call of f.
func allocated(f func()) (allocs, bytes float64) {
	const runs = 100
	f() // warm up pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}
