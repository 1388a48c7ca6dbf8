package traits

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
)

// insertSession's fast paths for runs at or after the last one give what
// joining the run anywhere (joinSession) gives.
func TestInsertSessionFastPathMatchesJoin(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var fast, slow [][2]int64
		t0 := int64(0)
		for range rapid.IntRange(1, 60).Draw(rt, "n") {
			// Mostly forward in time, by less or more than a gap; sometimes back.
			step := rapid.Int64Range(-3*sessionGap, 3*sessionGap).Draw(rt, "step")
			t0 += step
			a := t0
			b := a + rapid.Int64Range(0, 2*sessionGap).Draw(rt, "len")*rapid.Int64Range(0, 1).Draw(rt, "run")
			fast = insertSession(fast, a, b)
			slow = joinSession(slow, a, b)
			if !reflect.DeepEqual(fast, slow) {
				rt.Fatalf("after [%d, %d]: fast %v, join %v", a, b, fast, slow)
			}
		}
	})
}

// Sets cut from a bucket's spare room grow without writing over their
// neighbours: each bucket's set is what adding its values to a set of its
// own gives.
func TestBucketSetsCutFromSpareStayApart(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var b buckets
		want := map[int64][]fv{}
		for range rapid.IntRange(1, 80).Draw(rt, "n") {
			at := rapid.Int64Range(0, 20).Draw(rt, "bucket")
			k := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(rt, "value")
			tm := rapid.Int64Range(0, 100).Draw(rt, "t")
			g := agg{B: b}
			i := g.slot(at)
			g.B.add(i, AggMostFrequent, k, tm, "m")
			b = g.B
			want[at] = addFV(want[at], k, 1, tm, "m")
		}
		for i, at := range b.At {
			if !reflect.DeepEqual(b.Q[i], want[at]) {
				rt.Fatalf("bucket %d: %v, want %v", at, b.Q[i], want[at])
			}
		}
	})
}

// The encoder numbers events in order of first reference, events at one
// instant included (ref finds most by their time alone).
func TestEncoderRefNumbersByFirstReference(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := &encoder{byTime: map[int64]int{}, refs: map[evKey]int{}}
		want := map[evKey]int{}
		for range rapid.IntRange(1, 50).Draw(rt, "n") {
			k := evKey{rapid.Int64Range(0, 5).Draw(rt, "t"), rapid.SampledFrom([]string{"", "a", "b", "c"}).Draw(rt, "m")}
			w, ok := want[k]
			if !ok {
				w = len(want)
				want[k] = w
			}
			if got := e.ref(k.t, k.m); got != w {
				rt.Fatalf("ref(%d, %q) = %d, want %d", k.t, k.m, got, w)
			}
		}
	})
}

// A lifecycle history is left as it is only when it would be written the
// same.
func TestSameHistory(t *testing.T) {
	stages := []string{StageProspect, StageNew, StageRepeat, StageLoyal, StageAtRisk, StageChurned}
	rapid.Check(t, func(rt *rapid.T) {
		gen := func(label string) []Transition {
			var h []Transition
			for range rapid.IntRange(0, 4).Draw(rt, label+"n") {
				h = append(h, Transition{
					Stage: rapid.SampledFrom(stages).Draw(rt, label+"stage"),
					At:    time.UnixMicro(rapid.Int64Range(0, 3).Draw(rt, label+"at") * 500_000).In(time.FixedZone("x", 3600)),
				})
			}
			return h
		}
		a, b := gen("a"), gen("b")
		p := &portrait.Profile{Traits: map[string]portrait.Trait{}}
		w := writer{p: p}
		w.history("h", a, time.Time{}, "")
		rendered := func(h []Transition) []any {
			l := make([]any, len(h))
			for i, x := range h {
				l[i] = map[string]any{"stage": x.Stage, "at": stamp(x.At)}
			}
			return l
		}
		if !reflect.DeepEqual(p.Traits["h"].Value, rendered(a)) {
			rt.Fatalf("history put %v, want %v", p.Traits["h"].Value, rendered(a))
		}
		if got, want := sameHistory(p.Traits["h"].Value, b), reflect.DeepEqual(rendered(a), rendered(b)); got != want {
			rt.Fatalf("sameHistory(%v, %v) = %v, want %v", a, b, got, want)
		}
	})
}

// Columns grown together (the int64 ones carved from one allocation) keep
// each bucket's own numbers, whatever order buckets are made in.
func TestBucketColumnsGrowApart(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		aggregate := rapid.SampledFrom([]string{AggCount, AggSum, AggAvg, AggMin, AggMostFrequent}).Draw(rt, "aggregate")
		var g agg
		type model struct{ n, s, c int64 }
		want := map[int64]*model{}
		for range rapid.IntRange(1, 150).Draw(rt, "n") {
			at := rapid.Int64Range(0, 100).Draw(rt, "bucket")
			v := float64(rapid.IntRange(1, 9).Draw(rt, "v"))
			g.B.add(g.slotFor(at, aggregate), aggregate, v, at, "m")
			if want[at] == nil {
				want[at] = &model{}
			}
			w := want[at]
			w.n, w.s, w.c = w.n+1, w.s+millionths(v), w.c+1
		}
		if len(g.B.At) != len(want) {
			rt.Fatalf("%d buckets, want %d", len(g.B.At), len(want))
		}
		for i, at := range g.B.At {
			w := want[at]
			switch aggregate {
			case AggCount:
				if g.B.N[i] != w.n {
					rt.Fatalf("bucket %d: count %d, want %d", at, g.B.N[i], w.n)
				}
			case AggSum, AggAvg:
				if g.B.S[i] != w.s || (aggregate == AggAvg && g.B.C[i] != w.c) {
					rt.Fatalf("bucket %d: sum %d/%d, want %d/%d", at, g.B.S[i], g.B.C[i], w.s, w.c)
				}
			case AggMin:
				if g.B.X[i].M == "" {
					rt.Fatalf("bucket %d: no value", at)
				}
			case AggMostFrequent:
				n := int64(0)
				for _, f := range g.B.Q[i] {
					n += f.N
				}
				if n != w.n {
					rt.Fatalf("bucket %d: %d values, want %d", at, n, w.n)
				}
			}
		}
	})
}

// appendFloat writes what strconv does, for every number of cents up to
// ±2,000 and around a million, and for random and awkward floats.
func TestAppendFloatMatchesStrconv(t *testing.T) {
	check := func(x float64) {
		t.Helper()
		if got, want := string(appendFloat(nil, x)), strconv.FormatFloat(x, 'g', -1, 64); got != want {
			t.Fatalf("appendFloat(%v) = %s, want %s", x, got, want)
		}
	}
	for k := -200_000; k <= 200_000; k++ {
		check(float64(k) / 100)
		check(float64(k)/100 + 999_000)
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 0.01, 0.009, 0.1 + 0.2, 999_999.99, 999_999.995, 1e6, -1e6, 1e6 - 0.01,
		math.Nextafter(0.29, 1), math.Nextafter(0.29, 0), 1e-7, 123456789, 0.5, -0.05, 1.005, 4.35, 1e21, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		check(x)
		check(-x)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 200_000 {
		check(math.Float64frombits(r.Uint64()))
		check((r.Float64() - 0.5) * 2e6)
		check(float64(r.IntN(2_000_000_000)-1_000_000_000) / 1000)
	}
}

// bestX picks the value that comparing with better, bucket by bucket,
// picks: numbers equal or not, NaN, numeric strings, empty buckets.
func TestBestXMatchesBetter(t *testing.T) {
	values := []any{1.0, 2.0, 2.0, -1.0, math.NaN(), "3", "x", 0.0, math.Copysign(0, -1)}
	rapid.Check(t, func(rt *rapid.T) {
		aggregate := rapid.SampledFrom([]string{AggMin, AggMax, AggFirst, AggLast}).Draw(rt, "aggregate")
		xs := make([]val, rapid.IntRange(0, 12).Draw(rt, "n"))
		for i := range xs {
			if rapid.Bool().Draw(rt, "set") {
				xs[i] = val{V: rapid.SampledFrom(values).Draw(rt, "v"), T: rapid.Int64Range(0, 3).Draw(rt, "t"), M: rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "m")}
			}
		}
		var want *val
		for i := range xs {
			if b := &xs[i]; b.M != "" && (want == nil || better(aggregate, b, want)) {
				want = b
			}
		}
		if got := bestX(xs, aggregate); got != want {
			rt.Fatalf("%s of %v: %v, want %v", aggregate, xs, got, want)
		}
	})
}
