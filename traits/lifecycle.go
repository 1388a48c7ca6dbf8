package traits

import "time"

// Transition is a change of lifecycle stage.
type Transition struct {
	Stage     string    `json:"stage"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"` // the purchase that caused it, if any
}

// LifecycleHistory derives the stage transitions up to now from the
// purchases alone (sorted by event key), so it is the same whenever and in
// whatever order the events were processed. A prospect becomes new with the
// first purchase, repeat with the second, loyal with LoyalPurchases; a
// customer who stops buying is at risk after AtRisk and churned after
// Churned, and a purchase brings them back.
func LifecycleHistory(l Lifecycle, ps []purchase, firstSeen time.Time, firstMsg string, now time.Time) []Transition {
	var out []Transition
	add := func(stage string, at time.Time, msg string) {
		if len(out) == 0 || out[len(out)-1].Stage != stage {
			out = append(out, Transition{Stage: stage, At: at.UTC(), MessageID: msg})
		}
	}
	if !firstSeen.IsZero() && (len(ps) == 0 || firstSeen.Before(fromMicros(ps[0].T))) {
		add(StageProspect, firstSeen, firstMsg)
	}
	lapse := func(last time.Time, until time.Time, inclusive bool) {
		after := func(d time.Duration) bool {
			gap := until.Sub(last)
			return gap > d || (inclusive && gap == d)
		}
		if after(l.AtRisk) {
			add(StageAtRisk, last.Add(l.AtRisk), "")
		}
		if after(l.Churned) {
			add(StageChurned, last.Add(l.Churned), "")
		}
	}
	for i, p := range ps {
		at := fromMicros(p.T)
		if at.After(now) {
			break // not yet, as of now
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
	// The last purchase up to now.
	for i := len(ps) - 1; i >= 0; i-- {
		if at := fromMicros(ps[i].T); !at.After(now) {
			lapse(at, now, true)
			break
		}
	}
	return out
}
