package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/traits"
)

// The lifecycle over time kept as histories change (traits.StageCounts
// following the segment index) answers exactly what a full count of the
// stored histories gives, after every step of a random sequence of orders
// (late ones among them), merges, erasures and time passing, and a counter
// built afresh from the store (a restart after a rebuild) agrees with the
// one kept all along.
func TestLifecycleKeptEqualsRecount(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	kept := traits.NewStageCounts()
	e.segs.Index.Follow("lifecycle_history", kept) // over an index holding profiles already
	e.server.Lifecycle = kept
	rng := rand.New(rand.NewPCG(13, uint64(time.Now().UnixNano())))
	seq, erased, merges, late := 0, 0, 0, 0
	send := func(evs ...*portrait.Event) {
		for _, ev := range evs {
			seq++
			ev.MessageID, ev.Source, ev.ReceivedAt = fmt.Sprintf("k%05d", seq), "web", e.now
		}
		if _, err := e.db.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
		last, _ := e.db.LastSeq(ctx)
		if err := e.proc.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	user := func() string { return e.customers[rng.IntN(len(e.customers))].user }
	for step := 0; step < 60; step++ {
		switch k := rng.IntN(10); {
		case k < 4: // an order: recent, or late (up to a year back)
			ago := time.Duration(rng.IntN(24)) * time.Hour
			if k < 2 {
				ago = time.Duration(rng.IntN(365*24)) * time.Hour
				late++
			}
			send(&portrait.Event{Type: portrait.EventTrack, Name: "Order Completed", UserID: user(), Timestamp: e.now.Add(-ago),
				Properties: json.RawMessage(fmt.Sprintf(`{"revenue":%d}`, 50+rng.IntN(500)))})
		case k < 6: // a merge: one customer's e-mail identified with another's user id
			a, b := e.customers[rng.IntN(len(e.customers))], e.customers[rng.IntN(len(e.customers))]
			tr, _ := json.Marshal(map[string]any{"email": b.email})
			send(&portrait.Event{Type: portrait.EventIdentify, UserID: a.user, Traits: tr, Timestamp: e.now})
			merges++
		case k < 7: // an erasure
			var ids []string
			e.db.AllProfiles(ctx, func(p *portrait.Profile) error { ids = append(ids, p.ID); return nil })
			if len(ids) > 10 {
				id := ids[rng.IntN(len(ids))]
				if _, err := e.proc.Erase(ctx, e.db, profile.Erasure{ID: fmt.Sprintf("er%d", step), ProfileID: id, By: "test", Reason: "test"}); err != nil {
					t.Fatal(err)
				}
				erased++
			}
		case k < 8: // a new customer, first seen a while ago
			tr, _ := json.Marshal(map[string]any{"name": "新客户", "email": fmt.Sprintf("new.%d@example.cn", step)})
			send(&portrait.Event{Type: portrait.EventIdentify, UserID: fmt.Sprintf("n%03d", step), Traits: tr, Timestamp: e.now.Add(-time.Duration(rng.IntN(90*24)) * time.Hour)})
		default: // time passes: customers age into at risk and churned
			e.now = e.now.Add(time.Duration(1+rng.IntN(60)) * 24 * time.Hour)
			if _, err := e.proc.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if step%5 == 4 {
			checkLifecycleAgainstRecount(t, e, kept)
		}
	}
	checkLifecycleAgainstRecount(t, e, kept)
	if erased == 0 || merges == 0 || late == 0 {
		t.Fatalf("the sequence lacked a kind of step: %d erasures, %d merges, %d late orders", erased, merges, late)
	}

	// A restart after a rebuild: an index built from the stored profiles,
	// followed from the start, keeps the same counts.
	ix := segment.NewIndex()
	fresh := traits.NewStageCounts()
	ix.Follow("lifecycle_history", fresh)
	e.db.AllProfiles(ctx, func(p *portrait.Profile) error { ix.Upsert(p, nil); return nil })
	from, to := e.now.AddDate(-2, 0, 0), e.now
	for _, interval := range []string{"day", "week", "month"} {
		if interval == "day" {
			from = e.now.AddDate(0, 0, -400)
		}
		a, _ := traits.Periods(interval, from, to)
		b, _ := traits.Periods(interval, from, to)
		kept.Distribution(a)
		fresh.Distribution(b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: kept all along and built afresh differ", interval)
		}
	}
}

// checkLifecycleAgainstRecount compares the API's answers (from the kept
// counts) with CountStages and CountFlows over every stored history.
func checkLifecycleAgainstRecount(t *testing.T, e *consoleEnv, kept *traits.StageCounts) {
	t.Helper()
	var hists [][]traits.Transition
	e.db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		if h := traits.ParseHistory(p.Traits["lifecycle_history"].Value); len(h) > 0 {
			hists = append(hists, h)
		}
		return nil
	})
	if len(hists) == 0 {
		t.Fatal("no stored history: the comparison would prove nothing")
	}
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	for _, q := range []struct {
		interval string
		from     time.Time
	}{{"day", e.now.AddDate(0, 0, -45)}, {"week", e.now.AddDate(-1, 0, 0)}, {"month", e.now.AddDate(-2, 0, 0)}} {
		code, out := e.get(t, "/v1/lifecycle/distribution?interval="+q.interval+"&from="+day(q.from)+"&to="+day(e.now))
		if code != 200 {
			t.Fatalf("distribution: %d %v", code, out)
		}
		if f := out["freshness"].(map[string]any); f["stale"] != false || f["cached"] != false {
			t.Errorf("%s: an answer from the kept counts is computed in the request: %v", q.interval, f)
		}
		want, _ := traits.Periods(q.interval, q.from, e.now)
		for _, h := range hists {
			traits.CountStages(want, h)
		}
		got := out["series"].([]any)
		if len(got) != len(want) {
			t.Fatalf("%s: %d periods, want %d", q.interval, len(got), len(want))
		}
		for i, p := range want {
			g := got[i].(map[string]any)
			counts := map[string]int{}
			for k, v := range g["counts"].(map[string]any) {
				counts[k] = int(v.(float64))
			}
			if g["period"] != p.Label || !reflect.DeepEqual(counts, p.Counts) {
				t.Fatalf("%s %s: kept %v, recount %v (%s)", q.interval, p.Label, counts, p.Counts, g["period"])
			}
		}
	}
	for _, back := range []int{1, 7, 30, 200, 800} {
		from := e.now.AddDate(0, 0, -back)
		code, out := e.get(t, "/v1/lifecycle/flows?from="+day(from)+"&to="+day(e.now))
		if code != 200 {
			t.Fatalf("flows: %d %v", code, out)
		}
		want := map[traits.FlowKey]int{}
		start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
		end := time.Date(e.now.Year(), e.now.Month(), e.now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
		for _, h := range hists {
			traits.CountFlows(want, h, start, end)
		}
		got := map[traits.FlowKey]int{}
		for _, f := range out["flows"].([]any) {
			f := f.(map[string]any)
			k := traits.FlowKey{To: f["to"].(string)}
			if s, ok := f["from"].(string); ok {
				k.From = s
			}
			got[k] = int(f["count"].(float64))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("flows over %d days: kept %v, recount %v", back, got, want)
		}
	}
}
