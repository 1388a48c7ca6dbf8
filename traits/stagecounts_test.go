package traits_test

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/traits"
)

// oddHistory is a stage history in the forms a value may take besides the
// enricher's own: offsets and fractions in "at", time.Time values, entries
// without a stage or a time, impossible dates and other things that are no
// transition; in time order, as histories are.
func oddHistory(r *rand.Rand, now time.Time) any {
	stages := []string{"prospect", "new", "repeat", "loyal", "at_risk", "churned", "vip"}
	at := now.Add(-time.Duration(r.Int64N(int64(700 * 24 * time.Hour))))
	var list []any
	for range r.IntN(8) {
		at = at.Add(time.Duration(r.Int64N(int64(60 * 24 * time.Hour))))
		st := stages[r.IntN(len(stages))]
		var v any
		switch r.IntN(12) {
		case 0:
			v = at.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339) // another day in UTC near midnight
		case 1:
			v = at.In(time.FixedZone("X", -5*3600)).Format(time.RFC3339Nano)
		case 2:
			v = at // a time.Time
		case 3:
			v = at.UTC().Format("2006-01-02T15:04:05.000000000Z")
		case 4:
			v = []any{"2025-02-29T10:00:00Z", "2100-02-29T10:00:00Z", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00Z",
				"2026-01-02T24:00:00Z", "2026-01-02t10:00:00Z", "2026-01-02T10:00:00.Z", "2026-01-02", "", 12.0, nil}[r.IntN(11)]
		case 5:
			st = "" // no stage: skipped
			v = at.UTC().Format(time.RFC3339Nano)
		default:
			v = at.UTC().Format(time.RFC3339Nano)
		}
		var e any = map[string]any{"stage": st, "at": v}
		if r.IntN(30) == 0 {
			e = "not an object"
		}
		list = append(list, e)
	}
	if r.IntN(20) == 0 {
		return "not a list"
	}
	return list
}

// The kept counts equal a recount of the current histories (CountStages,
// CountFlows over ParseHistory) after any sequence of changes, whatever
// form the values take: the counts read the enricher's "at" by hand and
// must keep and skip exactly the entries ParseHistory does.
func TestStageCountsEqualRecount(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 13))
	kept := traits.NewStageCounts()
	held := make([]any, 300)
	newValue := func() any {
		if r.IntN(2) == 0 {
			return oddHistory(r, now)
		}
		first := now.Add(-time.Duration(r.Int64N(int64(700 * 24 * time.Hour))))
		var buys []time.Time
		for range r.IntN(10) {
			buys = append(buys, first.Add(time.Duration(r.Int64N(int64(now.Sub(first))))).Truncate(time.Millisecond))
		}
		return traits.HistoryValue(first, buys, now)
	}
	for round := range 40 {
		for range 50 {
			i := r.IntN(len(held))
			var v any
			if r.IntN(6) > 0 {
				v = newValue()
			}
			kept.Change(held[i], v)
			held[i] = v
		}
		from := now.AddDate(-2, 0, -r.IntN(60))
		periods, err := traits.Periods([]string{"day", "week", "month"}[round%3], from, now)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := traits.Periods([]string{"day", "week", "month"}[round%3], from, now)
		if !kept.Distribution(periods) {
			t.Fatal("periods not at midnights")
		}
		lo := from.Truncate(24*time.Hour).AddDate(0, 0, r.IntN(400))
		hi := lo.AddDate(0, 0, 1+r.IntN(400))
		flows, ok := kept.Flows(lo, hi)
		if !ok {
			t.Fatal("flow bounds not at midnights")
		}
		wantFlows := map[traits.FlowKey]int{}
		for _, v := range held {
			h := traits.ParseHistory(v)
			traits.CountStages(want, h)
			traits.CountFlows(wantFlows, h, lo, hi)
		}
		for p := range periods {
			if !maps.Equal(periods[p].Counts, want[p].Counts) {
				t.Fatalf("seed %d round %d, period %s: kept %v, recount %v", seed, round, periods[p].Label, periods[p].Counts, want[p].Counts)
			}
		}
		if !maps.Equal(flows, wantFlows) {
			t.Fatalf("seed %d round %d, flows %s..%s: kept %v, recount %v", seed, round, lo, hi, flows, wantFlows)
		}
	}
	// Every history taken out again leaves nothing.
	for i, v := range held {
		kept.Change(v, nil)
		held[i] = nil
	}
	if flows, _ := kept.Flows(now.AddDate(-10, 0, 0), now.AddDate(1, 0, 0)); len(flows) != 0 {
		t.Fatalf("flows left after every history is gone: %v", flows)
	}
}
