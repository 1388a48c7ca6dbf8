package traits_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// The history the enricher stores (and the store gives back) reads back into
// the transitions it was made from; per month the customer counts in the
// stage held at the month's end, and flows are the moves inside the window.
func TestLifecycleSeriesFromStoredHistory(t *testing.T) {
	e := open(t, t.TempDir())
	// u1: first seen and first order on day 0 (new), second on day 40
	// (repeat), then nothing: at risk at day 220, churned at day 405.
	// u2: only a page view on day 100 (prospect).
	e.send(t, track("o1", "u1", "Order Completed", 0, `{"revenue":10}`),
		track("o2", "u1", "Order Completed", 40*day, `{"revenue":10}`))
	page := &portrait.Event{MessageID: "v1", Type: portrait.EventPage, Source: "web", UserID: "u2", Timestamp: t0.Add(100 * day), ReceivedAt: t0.Add(100 * day)}
	e.send(t, page)
	e.refresh(t, t0.Add(420*day))
	h1 := traits.ParseHistory(e.user(t, "u1").Traits["lifecycle_history"].Value)
	h2 := traits.ParseHistory(e.user(t, "u2").Traits["lifecycle_history"].Value)
	var got []string
	for _, h := range h1 {
		got = append(got, fmt.Sprintf("%s@%d", h.Stage, int(h.At.Sub(t0)/day)))
	}
	if strings.Join(got, ",") != "new@0,repeat@40,at_risk@220,churned@405" {
		t.Fatalf("u1 history %v", got)
	}
	if len(h2) != 1 || h2[0].Stage != traits.StageProspect || !h2[0].At.Equal(t0.Add(100*day)) {
		t.Fatalf("u2 history %+v", h2)
	}

	ps, err := traits.Periods("month", t0, t0.Add(420*day))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 14 || ps[0].Label != "2026-01-01" || ps[13].Label != "2027-02-01" {
		t.Fatalf("%d periods %s..%s", len(ps), ps[0].Label, ps[len(ps)-1].Label)
	}
	traits.CountStages(ps, h1)
	traits.CountStages(ps, h2)
	want := map[string]string{
		"2026-01-01": "new:1",                // day 0..30
		"2026-02-01": "repeat:1",             // day 40 is Feb 10
		"2026-04-01": "prospect:1,repeat:1",  // u2 from Apr 11
		"2026-08-01": "prospect:1,at_risk:1", // day 220 is Aug 9
		"2027-02-01": "prospect:1,churned:1", // day 405 is Feb 10, 2027
	}
	for _, p := range ps {
		w, ok := want[p.Label]
		if !ok {
			continue
		}
		var parts []string
		for _, s := range traits.Stages {
			if p.Counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%s:%d", s, p.Counts[s]))
			}
		}
		if strings.Join(parts, ",") != w {
			t.Errorf("%s: %v, want %s", p.Label, parts, w)
		}
	}

	flows := map[traits.FlowKey]int{}
	for _, h := range [][]traits.Transition{h1, h2} {
		traits.CountFlows(flows, h, t0.Add(30*day), t0.Add(230*day))
	}
	if len(flows) != 3 || flows[traits.FlowKey{"new", "repeat"}] != 1 || flows[traits.FlowKey{"repeat", "at_risk"}] != 1 || flows[traits.FlowKey{"", "prospect"}] != 1 {
		t.Fatalf("flows %v", flows)
	}
}

func TestPeriods(t *testing.T) {
	d := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	for _, c := range []struct {
		interval, from, to string
		n                  int
		first, last        string
	}{
		{"day", "2026-11-01", "2026-11-30", 30, "2026-11-01", "2026-11-30"},
		{"week", "2026-11-04", "2026-11-30", 5, "2026-11-02", "2026-11-30"}, // Mondays
		{"month", "2026-11-15", "2027-01-02", 3, "2026-11-01", "2027-01-01"},
		{"day", "2026-11-01", "2026-11-01", 1, "2026-11-01", "2026-11-01"},
	} {
		ps, err := traits.Periods(c.interval, d(c.from), d(c.to))
		if err != nil || len(ps) != c.n || ps[0].Label != c.first || ps[len(ps)-1].Label != c.last {
			t.Errorf("%+v: %d periods, %v", c, len(ps), err)
		}
	}
	for _, c := range []struct{ interval, from, to string }{
		{"year", "2026-01-01", "2026-02-01"}, {"day", "2026-02-01", "2026-01-01"}, {"day", "1990-01-01", "2026-01-01"},
	} {
		if _, err := traits.Periods(c.interval, d(c.from), d(c.to)); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%+v: %v", c, err)
		}
	}
	// nothing to read is no history, not a crash
	for _, v := range []any{nil, "churned", []any{"x", map[string]any{"stage": 3}}, map[string]any{}} {
		if h := traits.ParseHistory(v); len(h) != 0 {
			t.Errorf("%v: %v", v, h)
		}
	}
}
