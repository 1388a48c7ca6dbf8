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
