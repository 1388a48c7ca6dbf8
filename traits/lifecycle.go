package traits

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Transition is a change of lifecycle stage.
type Transition struct {
	Stage     string    `json:"stage"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"` // the purchase that caused it, if any
}

// LifecycleHistory derives the stage transitions up to now from the
// purchase summary alone, so it is the same whenever and in whatever order
// the events were processed. A prospect becomes new with the first
// purchase, repeat with the second, loyal with LoyalPurchases; a customer
// who stops buying is at risk after AtRisk and churned after Churned, and a
// purchase brings them back.
func LifecycleHistory(l Lifecycle, ps *purchases, firstSeen time.Time, firstMsg string, now time.Time) []Transition {
	type point struct {
		at    int64
		order int // lapses before the purchase at the same instant
		stage string
		msg   string
	}
	var pts []point
	if ps != nil && ps.N > 0 {
		pts = make([]point, 0, len(ps.Early)+2*len(ps.Gaps)+2)
	}
	nowUS := micros(now)
	k := max(l.LoyalPurchases, 2)
	stageAt := func(n int) string {
		switch {
		case n >= k:
			return StageLoyal
		case n >= 2:
			return StageRepeat
		}
		return StageNew
	}
	if ps != nil && ps.N > 0 {
		for i, p := range ps.Early {
			pts = append(pts, point{at: p.T, order: 1, stage: stageAt(i + 1), msg: p.M})
		}
		// Whether a purchase is among the K earliest: K is small, so a
		// scan is cheaper than a set, unless someone configured a large K.
		var early map[purchase]bool
		if len(ps.Early) > 32 {
			early = make(map[purchase]bool, len(ps.Early))
			for _, p := range ps.Early {
				early[purchase{T: p.T, M: p.M}] = true
			}
		}
		isEarly := func(t int64, m string) bool {
			if early != nil {
				return early[purchase{T: t, M: m}]
			}
			for _, p := range ps.Early {
				if p.T == t && p.M == m {
					return true
				}
			}
			return false
		}
		atRisk, churned := int64(l.AtRisk/time.Microsecond), int64(l.Churned/time.Microsecond)
		for _, g := range ps.Gaps {
			pts = append(pts, point{at: g.A + atRisk, stage: StageAtRisk})
			if g.B-g.A > churned {
				pts = append(pts, point{at: g.A + churned, stage: StageChurned})
			}
			// The purchase that ends the gap brings the customer back: one
			// of the K earliest has its point already; any later one is at
			// least the (K+1)-th, so loyal.
			if !isEarly(g.B, g.M) {
				pts = append(pts, point{at: g.B, order: 1, stage: StageLoyal, msg: g.M})
			}
		}
		// Since the last purchase, up to now (inclusive).
		if last := ps.Last; last.T <= nowUS {
			if nowUS-last.T >= atRisk {
				pts = append(pts, point{at: last.T + atRisk, stage: StageAtRisk})
			}
			if nowUS-last.T >= churned {
				pts = append(pts, point{at: last.T + churned, stage: StageChurned})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		if a.order != b.order {
			return cmp.Compare(a.order, b.order)
		}
		return strings.Compare(a.msg, b.msg) // purchases at one instant, in canonical order
	})
	var out []Transition
	add := func(stage string, at time.Time, msg string) {
		if out == nil {
			out = make([]Transition, 0, len(pts)+1)
		}
		if len(out) == 0 || out[len(out)-1].Stage != stage {
			out = append(out, Transition{Stage: stage, At: at.UTC(), MessageID: msg})
		}
	}
	if !firstSeen.IsZero() && (ps == nil || ps.N == 0 || micros(firstSeen) < ps.first().T) {
		add(StageProspect, firstSeen, firstMsg)
	}
	for _, p := range pts {
		if p.at > nowUS {
			break // not yet, as of now
		}
		add(p.stage, fromMicros(p.at), p.msg)
	}
	return out
}
