package account_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/demo"
)

// toEvent turns a demo event into a logged one, as the tracking API would.
func toEvent(t testing.TB, i int, d map[string]any) *portrait.Event {
	b, _ := json.Marshal(d)
	var w struct {
		MessageID   string          `json:"messageId"`
		Type        string          `json:"type"`
		UserID      string          `json:"userId"`
		AnonymousID string          `json:"anonymousId"`
		GroupID     string          `json:"groupId"`
		Event       string          `json:"event"`
		Traits      json.RawMessage `json:"traits"`
		Properties  json.RawMessage `json:"properties"`
		Timestamp   time.Time       `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return &portrait.Event{Seq: int64(i + 1), MessageID: w.MessageID, Type: w.Type, Source: "crm", UserID: w.UserID, AnonymousID: w.AnonymousID, GroupID: w.GroupID,
		Name: w.Event, Traits: w.Traits, Properties: w.Properties, Timestamp: w.Timestamp}
}

var asOf = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func demoModel(t testing.TB, k int) *account.Model {
	m := account.NewModel(func() time.Time { return asOf })
	for i, e := range demo.Corporate(5, k, asOf) {
		m.Apply(toEvent(t, i, e))
	}
	return m
}

// Each scorecard reason carries its points; they add up to the score, and
// the ranking follows it.
func TestScoreExplanations(t *testing.T) {
	var s seq
	m := account.NewModel(func() time.Time { return t0 })
	m.Apply(s.ev("group", "", "good", "", t0, map[string]any{"name": "好", "industry": "I651", "employees": 800, "province": "上海市"}, nil))
	m.Apply(s.ev("group", "", "poor", "", t0, map[string]any{"name": "差", "industry": "E471", "employees": 12, "province": "西藏自治区", "revenue": 1e6}, nil))
	for _, who := range []string{"eb", "tb"} {
		m.Apply(s.ev("identify", who, "", "", t0, map[string]any{"buying_role": strings.ToUpper(who), "level": "决策层"}, nil))
		m.Apply(s.ev("group", who, "good", "", t0, nil, nil))
	}
	m.Apply(s.ev("track", "eb", "", "Sales Visit", t0, nil, map[string]any{"account_id": "good"}))
	for range 5 {
		m.Apply(s.ev("track", "x", "", "Ticket Opened", t0, nil, map[string]any{"account_id": "poor"}))
	}
	m.Apply(s.ev("track", "x", "", "Payment Overdue", t0, nil, map[string]any{"account_id": "poor", "days": 150}))
	rows, total, err := m.List(account.Filter{}, account.SortICP, 0, 10)
	if err != nil || total != 2 || rows[0].Name != "好" {
		t.Fatalf("ranking %+v %v", rows, err)
	}
	good := rows[0]
	sum := 0.0
	byFactor := map[string]account.Reason{}
	for _, r := range good.Reasons {
		sum += r.Points
		byFactor[r.Factor] = r
	}
	if math.Abs(sum-good.ICP) > 0.1 || len(good.Reasons) != 5 {
		t.Fatalf("reasons %+v do not add up to %v", good.Reasons, good.ICP)
	}
	// 25 industry + 20 size + 10 region + 25×3/15 engagement + 20×½ coverage
	if math.Abs(good.ICP-70) > 0.1 || !strings.Contains(byFactor["industry"].Text, "651 软件开发") || !strings.Contains(byFactor["coverage"].Text, "no UB identified") {
		t.Fatalf("good %v %+v", good.ICP, good.Reasons)
	}
	// Each reason comes with its code and parameters (the console says it
	// in Chinese from them).
	codes := map[string]string{}
	for f, r := range byFactor {
		codes[f] = r.Code
	}
	if want := map[string]string{"industry": "industry_target", "size": "headcount", "region": "region_target", "engagement": "engagement", "coverage": "committee_partial"}; !reflect.DeepEqual(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	if p := byFactor["industry"].Params; p["name"] != "软件开发" || byFactor["region"].Params["province"] != "上海市" || byFactor["size"].Params["employees"] != 800.0 {
		t.Fatalf("params %+v", good.Reasons)
	}
	gaps, _ := byFactor["coverage"].Params["gaps"].([]account.Gap)
	if len(gaps) == 0 || gaps[0].Code != "no_role" || gaps[0].Params["role"] != "UB" {
		t.Fatalf("coverage params %+v", byFactor["coverage"].Params)
	}
	poor := rows[1]
	if poor.Flag == nil || len(poor.Flag.Reasons) != 3 || !strings.Contains(poor.Flag.Reasons[1], "150 days overdue") || !strings.Contains(poor.Flag.Reasons[2], "5 tickets") {
		t.Fatalf("flag %+v", poor.Flag)
	}
	// The flag's reasons as codes, in their order (the console's words).
	if c := poor.Flag.Codes; len(c) != 3 || c[0].Code != "low_fit" || c[1].Code != "bad_payment" || c[1].Params["days"] != 150 || c[2].Code != "service_cost" || c[2].Params["tickets"] != 5 {
		t.Fatalf("flag codes %+v", poor.Flag.Codes)
	}
	flagged := true
	if _, n, _ := m.List(account.Filter{Flagged: &flagged}, account.SortICP, 0, 10); n != 1 {
		t.Fatalf("flag filter %d", n)
	}
	// Weights are configurable: industry only.
	if err := m.SetScorecard(&account.Scorecard{Weights: map[string]float64{"industry": 1}, Industries: []string{"E"}}); err != nil {
		t.Fatal(err)
	}
	if rows, _, _ = m.List(account.Filter{}, account.SortICP, 0, 10); rows[0].Name != "差" || rows[0].ICP != 100 {
		t.Fatalf("reweighted %+v", rows[0])
	}
	if err := m.SetScorecard(&account.Scorecard{Weights: map[string]float64{"colour": 1}}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("bad factor: %v", err)
	}
}

// The learned score is evaluated on accounts it was not trained on: the
// demo's outcomes follow a hidden fit, and the held-out AUC must show the
// model found it.
func TestLearnedScoreHeldOut(t *testing.T) {
	m := demoModel(t, 300)
	rep, err := m.Train(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out AUC %.3f [%.3f, %.3f] on %d accounts (trained on %d); %s", rep.AUC, rep.AUCLow, rep.AUCHigh, rep.NTest, rep.NTrain, rep.Verdict)
	if rep.NTest < 30 || rep.NTrain < 4*rep.NTest-10 || rep.AUC < 0.7 || !rep.Informative {
		t.Fatalf("learned score: %+v", rep)
	}
	rows, _, _ := m.List(account.Filter{}, account.SortICP, 0, 3)
	last := rows[0].Reasons[len(rows[0].Reasons)-1]
	if rows[0].Learned == nil || last.Factor != "learned" || !strings.Contains(last.Text, "P(win)") {
		t.Fatalf("learned reason %+v", rows[0].Reasons)
	}
	// With too little history the model refuses rather than guesses.
	if _, err := demoModel(t, 8).Train(1); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("tiny history: %v", err)
	}
}

// The demo companies carry a three-level group, refused USCCs and
// presumed values, so the portrait shows them.
func TestDemoCompanies(t *testing.T) {
	m := demoModel(t, 60)
	if m.Len() != 60 {
		t.Fatalf("%d accounts", m.Len())
	}
	if is := m.TakeIssues(); len(is) != 2 || is[0].Trait != "uscc" || is[1].Trait != "uscc" {
		t.Fatalf("issues %+v", is)
	}
	id, _ := m.Lookup(account.KeyGroup, "corp-0010")
	v, _ := m.Get(id)
	if v.Rollup.Depth != 2 || v.Rollup.Accounts != 4 {
		t.Fatalf("group rollup %+v", v.Rollup)
	}
}

// The ranking's fast scores (static part kept, engagement decayed at
// ranking time) are the explained scores: the list is in the order of the
// icp_score it shows, with and without the learned model.
func TestRankingMatchesExplainedScores(t *testing.T) {
	m := demoModel(t, 100)
	for _, train := range []bool{false, true} {
		if train {
			if _, err := m.Train(2); err != nil {
				t.Fatal(err)
			}
		}
		rows, total, err := m.List(account.Filter{}, account.SortICP, 0, 0)
		if err != nil || total != 100 || len(rows) != 100 {
			t.Fatalf("list %d %d %v", total, len(rows), err)
		}
		ids := m.RankOnly()
		for i := range rows {
			if rows[i].ID != ids[i] || i > 0 && rows[i].ICP > rows[i-1].ICP {
				t.Fatalf("learned=%v: row %d %s %.1f after %.1f (RankOnly says %s)", train, i, rows[i].ID, rows[i].ICP, rows[i-1].ICP, ids[i])
			}
		}
	}
}

// Views are copies: encoding one while the follower applies events races
// with nothing (run with -race).
func TestViewsWhileApplying(t *testing.T) {
	m := account.NewModel(func() time.Time { return asOf })
	evs := demo.Corporate(9, 40, asOf)
	half := len(evs) / 2
	for i, e := range evs[:half] {
		m.Apply(toEvent(t, i, e))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, e := range evs[half:] {
			m.Apply(toEvent(t, half+i, e))
		}
	}()
	for k := 0; ; k++ {
		rows, _, _ := m.List(account.Filter{}, account.SortICP, 0, 5)
		for _, r := range rows {
			v, _ := m.Get(r.ID)
			p, _ := m.People(r.ID)
			if _, err := json.Marshal([]any{v, p, r}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
}
