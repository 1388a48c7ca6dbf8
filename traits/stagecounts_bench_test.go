package traits_test

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/traits"
)

// lifecycleNow is the benchmark's "now": histories run up to it.
var lifecycleNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// lifecycleProfile derives profile i from its number alone (a million
// profiles are never held twice): the traits of `portrait bench segments`
// plus the stage history the enricher writes for a customer first seen in
// the last three years, of whom a third never bought and the others bought
// 1 to 20 times over a part of their time, so that many lapse into at risk
// and churned and some come back.
func lifecycleProfile(i int) *portrait.Profile {
	r := rand.New(rand.NewPCG(uint64(i), 13))
	id := "p" + strconv.Itoa(i)
	first := lifecycleNow.Add(-time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
	var buys []time.Time
	if r.IntN(3) > 0 {
		span := lifecycleNow.Sub(first)
		if r.IntN(2) == 0 { // active for a part of their time only
			span = time.Duration(r.Int64N(int64(span) + 1))
		}
		n := 1 + r.IntN(20)
		if r.IntN(2) == 0 {
			n = 1 + r.IntN(3)
		}
		for range n {
			buys = append(buys, first.Add(time.Duration(r.Int64N(int64(span)+1))).Truncate(time.Millisecond))
		}
	}
	hist := traits.HistoryValue(first, buys, lifecycleNow)
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{
		"age":               {Value: float64(18 + r.IntN(55))},
		"province":          {Value: []string{"广东省", "浙江省", "江苏省", "北京市", "上海市"}[r.IntN(5)]},
		"gender":            {Value: []string{"female", "male"}[r.IntN(2)]},
		"revenue":           {Value: float64(r.IntN(200000)) / 10},
		"email":             {Value: id + "@example.cn"},
		"lifecycle_history": {Value: hist},
	}, Identifiers: []portrait.Identifier{{Type: "email", Value: id + "@example.cn"}}}
	if len(hist) > 0 {
		p.Traits["lifecycle_stage"] = portrait.Trait{Value: hist[len(hist)-1].(map[string]any)["stage"]}
	}
	if r.IntN(5) == 0 {
		p.Tags = append(p.Tags, portrait.ProfileTag{Name: "vip"})
	}
	return p
}

// lifecycleProfiles is the benchmark's size: 1,000,000 as in issue 13,
// PORTRAIT_BENCH_PROFILES for a quicker look.
func lifecycleProfiles(b *testing.B) int {
	if v := os.Getenv("PORTRAIT_BENCH_PROFILES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("PORTRAIT_BENCH_PROFILES=%q: want a positive number", v)
		}
		return n
	}
	return 1_000_000
}

// heap is the live heap after a collection.
func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func buildLifecycleIndex(n int, kept *traits.StageCounts) *segment.Index {
	ix := segment.NewIndex()
	if kept != nil {
		ix.Follow("lifecycle_history", kept) // before the build, as the app does
	}
	for i := range n {
		ix.Upsert(lifecycleProfile(i), nil)
	}
	return ix
}

// cpuClock sums the process's CPU (user+sys, GC workers included) over
// the timed parts of a benchmark: wall time on a shared machine measures
// the neighbours.
type cpuClock struct {
	b    *testing.B
	used time.Duration
	at   syscall.Rusage
}

func (c *cpuClock) start() {
	c.b.StartTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &c.at)
}

func (c *cpuClock) stop() {
	var now syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &now)
	c.b.StopTimer()
	c.used += time.Duration(now.Utime.Nano() + now.Stime.Nano() - c.at.Utime.Nano() - c.at.Stime.Nano())
}

// BenchmarkLifecycleAtStart is the start-up cost of the kept lifecycle
// counts (traits.StageCounts, issue 13) beside the segment index build
// they ride on, at a million profiles with stage histories, in one run:
//
//		go test ./traits -run '^$' -bench LifecycleAtStart -benchtime 1x -cpu 1
//
//	  - generate: making the profiles alone (a stand-in for decoding them from
//	    the store, which the app's start-up pays before the index);
//	  - index: generate + the index build, no follower;
//	  - index+lifecycle: the same with the counts following, as the app
//	    starts (index+lifecycle − index is the counts' share of the build);
//	  - follow: the counts alone, following an index built already (one
//	    Change per history);
//	  - distribution/… and flows/…: what /v1/lifecycle/distribution and
//	    /flows ask of the counts over everyone.
//
// cpu-ns/profile (cpu-ms/answer for the queries) is the process's CPU over
// the timed part, per profile; B/op is allocated per build; the heap kept
// after the build is retained-B/profile. ns/op is wall time, which on a
// busy machine measures the neighbours.
func BenchmarkLifecycleAtStart(b *testing.B) {
	n := lifecycleProfiles(b)
	report := func(b *testing.B, c *cpuClock, retained int64) {
		b.ReportMetric(float64(c.used.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/profile")
		b.ReportMetric(float64(retained)/float64(n), "retained-B/profile")
	}
	b.Run("generate", func(b *testing.B) {
		b.ReportAllocs()
		c := &cpuClock{b: b}
		b.StopTimer()
		for range b.N {
			c.start()
			for i := range n {
				lifecycleProfile(i)
			}
			c.stop()
		}
		report(b, c, 0)
	})
	var ix *segment.Index // the last index built without a follower
	build := func(follow bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			c := &cpuClock{b: b}
			b.StopTimer()
			var kept int64
			for range b.N {
				before := heap()
				var counts *traits.StageCounts
				if follow {
					counts = traits.NewStageCounts()
				}
				if !follow {
					ix = nil // not kept while the next is built
				}
				c.start()
				built := buildLifecycleIndex(n, counts)
				c.stop()
				kept = heap() - before
				if !follow {
					ix = built
				}
				runtime.KeepAlive(built)
			}
			report(b, c, kept)
		}
	}
	b.Run("index", build(false))
	b.Run("index+lifecycle", build(true))
	if ix == nil { // not asked for: built for follow alone
		ix = buildLifecycleIndex(n, nil)
	}
	var counts *traits.StageCounts
	b.Run("follow", func(b *testing.B) {
		b.ReportAllocs()
		c := &cpuClock{b: b}
		b.StopTimer()
		var kept int64
		for range b.N {
			// A fresh index each time would cost more than the counts:
			// the followers of earlier rounds stay on this one, unread.
			before := heap()
			counts = traits.NewStageCounts()
			c.start()
			ix.Follow("lifecycle_history", counts)
			c.stop()
			kept = heap() - before
		}
		report(b, c, kept)
	})
	to := lifecycleNow.Add(-time.Hour)
	// Everyone has a history (first seen before now): the counts at the
	// end hold every profile once, or the benchmark measures nothing.
	last, _ := traits.Periods("day", to, to)
	counts.Distribution(last)
	held := 0
	for _, c := range last[0].Counts {
		held += c
	}
	if held != n {
		b.Fatalf("the counts hold %d customers at the end, not %d", held, n)
	}
	// The API's questions (http/lifecycle.go) over everyone, with its
	// default ranges and the longest it allows; an op is 100 answers, so
	// that -benchtime 1x (for the builds) still times more than one.
	const answers = 100
	query := func(ask func()) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			c := &cpuClock{b: b}
			b.StopTimer()
			for range b.N {
				c.start()
				for range answers {
					ask()
				}
				c.stop()
			}
			b.ReportMetric(float64(c.used.Nanoseconds())/float64(b.N)/answers/1e6, "cpu-ms/answer")
		}
	}
	for _, q := range []struct {
		interval string
		from     time.Time
	}{
		{"week", to.AddDate(0, 0, -7*11)},
		{"day", to.AddDate(0, 0, -29)},
		{"month", to.AddDate(0, -11, 0)},
		{"month", to.AddDate(-3, 0, 0)},
	} {
		name := "distribution/" + q.interval + "-" + strconv.Itoa(int(to.Sub(q.from).Hours()/24)) + "d"
		b.Run(name, query(func() {
			periods, err := traits.Periods(q.interval, q.from, to)
			if err != nil {
				b.Fatal(err)
			}
			if !counts.Distribution(periods) {
				b.Fatal("the periods do not end at midnights")
			}
		}))
	}
	day := to.Truncate(24 * time.Hour)
	for _, days := range []int{30, 3 * 365} {
		b.Run("flows/"+strconv.Itoa(days)+"d", query(func() {
			if _, ok := counts.Flows(day.AddDate(0, 0, -days), day.AddDate(0, 0, 1)); !ok {
				b.Fatal("flows: bounds not at midnights")
			}
		}))
	}
	runtime.KeepAlive(ix)
}
