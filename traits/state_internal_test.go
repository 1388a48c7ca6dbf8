package traits

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"
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
