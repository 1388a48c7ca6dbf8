package traits

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The bounded summary built by adding purchases in any order, or by merging
// summaries of any split of them, is the same, and its lifecycle history
// equals the one computed from every purchase.
func TestPurchaseSummaryOrderAndMergeIndependent(t *testing.T) {
	l := Lifecycle{LoyalPurchases: 3, AtRisk: 10 * time.Hour, Churned: 30 * time.Hour}
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 30).Draw(rt, "n")
		var ps []purchase
		for i := range n {
			ps = append(ps, purchase{T: int64(rapid.IntRange(1, 100).Draw(rt, "h")) * int64(time.Hour/time.Microsecond), M: fmt.Sprintf("m%02d", i), A: int64(i)})
		}
		var inOrder purchases
		for _, p := range sortedCopy(ps) {
			inOrder.add(p, l)
		}
		perm := rapid.Permutation(ps).Draw(rt, "perm")
		cut := rapid.IntRange(0, n).Draw(rt, "cut")
		var a, b purchases
		for _, p := range perm[:cut] {
			a.add(p, l)
		}
		for _, p := range perm[cut:] {
			b.add(p, l)
		}
		a.merge(&b, l)
		if !reflect.DeepEqual(norm(&a), norm(&inOrder)) {
			rt.Fatalf("merged\n%+v\nin order\n%+v", norm(&a), norm(&inOrder))
		}
		now := time.UnixMicro(120 * int64(time.Hour/time.Microsecond))
		got := LifecycleHistory(l, &a, time.Time{}, "", now)
		want := historyFromAll(l, sortedCopy(ps), now)
		if !reflect.DeepEqual(got, want) {
			rt.Fatalf("history\n got %+v\nwant %+v", got, want)
		}
	})
}

func norm(s *purchases) purchases {
	c := *s.clone()
	if len(c.Gaps) == 0 {
		c.Gaps = nil
	}
	return c
}

func sortedCopy(ps []purchase) []purchase {
	var out []purchase
	for _, p := range ps {
		out = insertPurchase(out, p)
	}
	return out
}

// historyFromAll is the lifecycle computed from every purchase, in order:
// the definition the summary must reproduce.
func historyFromAll(l Lifecycle, ps []purchase, now time.Time) []Transition {
	var out []Transition
	add := func(stage string, at time.Time, msg string) {
		if len(out) == 0 || out[len(out)-1].Stage != stage {
			out = append(out, Transition{Stage: stage, At: at.UTC(), MessageID: msg})
		}
	}
	lapse := func(last, until time.Time, inclusive bool) {
		gap := until.Sub(last)
		if gap > l.AtRisk || (inclusive && gap == l.AtRisk) {
			add(StageAtRisk, last.Add(l.AtRisk), "")
		}
		if gap > l.Churned || (inclusive && gap == l.Churned) {
			add(StageChurned, last.Add(l.Churned), "")
		}
	}
	for i, p := range ps {
		at := fromMicros(p.T)
		if at.After(now) {
			break
		}
		if i > 0 {
			lapse(fromMicros(ps[i-1].T), at, false)
		}
		switch n := i + 1; {
		case n >= l.LoyalPurchases:
			add(StageLoyal, at, p.M)
		case n >= 2:
			add(StageRepeat, at, p.M)
		default:
			add(StageNew, at, p.M)
		}
	}
	if len(ps) > 0 {
		lapse(fromMicros(ps[len(ps)-1].T), now, true)
	}
	return out
}
