package traits

import (
	"time"

	"github.com/portrait-cdp/portrait"
)

// Stages are the lifecycle stages in the order a customer goes through them.
var Stages = []string{StageProspect, StageNew, StageRepeat, StageLoyal, StageAtRisk, StageChurned}

// maxPeriods bounds a lifecycle series: a day interval over decades would
// answer with a series nobody can draw.
const maxPeriods = 1000

// ParseHistory reads the lifecycle_history trait's value back into
// transitions (nil when v is not one). Entries it cannot read are skipped.
func ParseHistory(v any) []Transition {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]Transition, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		stage, _ := m["stage"].(string)
		var at time.Time
		switch x := m["at"].(type) {
		case string:
			at, _ = time.Parse(time.RFC3339Nano, x)
		case time.Time:
			at = x
		}
		if stage == "" || at.IsZero() {
			continue
		}
		out = append(out, Transition{Stage: stage, At: at.UTC()})
	}
	return out
}

// Period is one step of a lifecycle series: Start is its first day, and
// counts are the stages held at its end.
type Period struct {
	Start  time.Time      `json:"-"`
	End    time.Time      `json:"-"`
	Label  string         `json:"period"`
	Counts map[string]int `json:"counts"`
}

// Periods cuts [from, to] into day, week (ISO, from Monday) or month
// periods, in UTC; the first starts at the period holding from, the last
// holds to.
func Periods(interval string, from, to time.Time) ([]Period, error) {
	from, to = from.UTC(), to.UTC()
	if to.Before(from) {
		return nil, portrait.Errorf(portrait.EINVALID, "from must not be after to")
	}
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	var next func(time.Time) time.Time
	switch interval {
	case "day":
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case "week":
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	case "month":
		start = time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	default:
		return nil, portrait.Errorf(portrait.EINVALID, "interval must be day, week or month, not %q", interval)
	}
	var out []Period
	for t := start; !t.After(to); t = next(t) {
		if len(out) == maxPeriods {
			return nil, portrait.Errorf(portrait.EINVALID, "from %s to %s by %s is more than %d periods", from.Format(time.DateOnly), to.Format(time.DateOnly), interval, maxPeriods)
		}
		out = append(out, Period{Start: t, End: next(t), Label: t.Format(time.DateOnly), Counts: map[string]int{}})
	}
	return out, nil
}

// CountStages adds one customer's history to the periods: the stage held
// at the end of each period (the last transition before it ends) counts
// once. Periods before the first transition do not count the customer: they
// were not known yet.
func CountStages(periods []Period, hist []Transition) {
	i := 0
	for p := range periods {
		for i < len(hist) && hist[i].At.Before(periods[p].End) {
			i++
		}
		if i > 0 {
			periods[p].Counts[hist[i-1].Stage]++
		}
	}
}

// Flow is a number of moves between two stages; From is nil for customers
// entering the lifecycle.
type Flow struct {
	From  *string `json:"from"`
	To    string  `json:"to"`
	Count int     `json:"count"`
}

// FlowKey identifies a flow while counting.
type FlowKey struct{ From, To string }

// CountFlows adds one customer's transitions that happen in [from, to) to
// flows; a first transition is keyed from "".
func CountFlows(flows map[FlowKey]int, hist []Transition, from, to time.Time) {
	for i, t := range hist {
		if t.At.Before(from) || !t.At.Before(to) {
			continue
		}
		prev := ""
		if i > 0 {
			prev = hist[i-1].Stage
		}
		flows[FlowKey{prev, t.Stage}]++
	}
}

// HistoryKept is how many transitions lifecycle_history keeps per customer
// (the latest); the API says so where it serves histories.
const HistoryKept = maxHistory
