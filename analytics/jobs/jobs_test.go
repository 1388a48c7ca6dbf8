package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/demo"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tracking"
)

var asOf = time.Date(2026, 6, 30, 23, 59, 59, 0, time.UTC)

// setup loads the demo data set (customers, orders with products) through
// the tracking parser into a store and derives the profiles.
func setup(t *testing.T) (*sqlite.DB, *profile.Processor, *jobs.Runner) {
	t.Helper()
	return load(t, demo.Generate(7, 600, asOf).Events)
}

// load sends events through the tracking parser into a new store and
// derives the profiles.
func load(t *testing.T, events []map[string]any) (*sqlite.DB, *profile.Processor, *jobs.Runner) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := tracking.New()
	for i := 0; i < len(events); i += 500 {
		body, _ := json.Marshal(map[string]any{"batch": events[i:min(i+500, len(events))]})
		res, err := p.ParseBatch(body, "demo", asOf)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) > 0 {
			t.Fatalf("demo events rejected: %+v", res.Rejected[0])
		}
		if _, err := db.Append(ctx, res.Events, nil); err != nil {
			t.Fatal(err)
		}
	}
	proc := profile.NewProcessor(db, identity.DefaultRules())
	catchUp(t, db, proc)
	r := jobs.NewRunner(db, db, db)
	r.Now = func() time.Time { return asOf }
	return db, proc, r
}

func catchUp(t *testing.T, db *sqlite.DB, proc *profile.Processor) {
	t.Helper()
	last, _ := db.LastSeq(context.Background())
	if err := proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

func TestRunsWriteBackOntoProfiles(t *testing.T) {
	ctx := context.Background()
	db, proc, r := setup(t)
	want := map[string][]string{
		jobs.CLV:      {"p_alive", "expected_purchases_90d", "clv_12m"},
		jobs.FPGrowth: {"next_best_products"},
		jobs.KMeans:   {"cluster", "cluster_description", "cluster_terms"},
		jobs.Churn:    {"churn_probability", "purchase_probability_90d"},
	}
	type activity struct {
		n    int
		last time.Time
	}
	before := map[string]activity{}
	db.AllProfiles(ctx, func(p *portrait.Profile) error {
		before[p.ID] = activity{p.EventCount, p.LastSeen}
		return nil
	})
	runs := map[string]*jobs.Run{}
	for _, kind := range jobs.Kinds {
		params := jobs.Params{}
		if kind == jobs.FPGrowth {
			params["min_support"] = 0.005
		}
		run, err := r.RunNow(ctx, kind, params)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if run.Status != jobs.Succeeded || run.Profiles == 0 || run.Metrics == nil || run.FinishedAt == nil {
			t.Fatalf("%s run: %+v", kind, run)
		}
		runs[kind] = run
	}
	catchUp(t, db, proc)
	var withCLV, withRecs int
	// Every trait a run writes is declared in jobs.Outputs, under its
	// analysis and with its type: the schema knows those names before a
	// run has written them (a tag naming churn_probability is accepted on
	// a store no churn run has scored).
	declared := map[string]jobs.Output{}
	for _, o := range jobs.Outputs {
		declared[o.Name] = o
	}
	written := map[string]bool{}
	err := db.AllProfiles(ctx, func(p *portrait.Profile) error {
		for n, tr := range p.Traits {
			kind, ok := strings.CutPrefix(tr.Source, "analytics/")
			if !ok {
				continue
			}
			written[n] = true
			o, ok := declared[n]
			var typ string
			switch tr.Value.(type) {
			case float64:
				typ = "number"
			case string:
				typ = "string"
			case []any:
				typ = "list"
			case map[string]any:
				typ = "object"
			}
			if (!ok || o.Kind != kind || o.Type != typ) && !written[n+" "+typ] {
				written[n+" "+typ] = true // said once, not for every profile
				t.Errorf("%s writes %s (%s), declared as %+v (found %v) in jobs.Outputs", kind, n, typ, o, ok)
			}
		}
		if b := before[p.ID]; b.n != p.EventCount || !b.last.Equal(p.LastSeen) {
			t.Errorf("profile %s: writing results back changed its activity (%d events, last seen %s → %d, %s)", p.ID, b.n, b.last, p.EventCount, p.LastSeen)
		}
		if p.TrackCounts["Order Completed"] == 0 {
			return nil
		}
		for kind, names := range want {
			for _, n := range names {
				tr, ok := p.Traits[n]
				if !ok {
					if kind == jobs.Churn || kind == jobs.FPGrowth {
						continue // scored only where the model applies
					}
					t.Errorf("profile %s lacks %s", p.ID, n)
					continue
				}
				if tr.Source != "analytics/"+kind || !strings.Contains(tr.MessageID, runs[kind].ID) {
					t.Errorf("%s provenance %+v does not name the model and run %s", n, tr, runs[kind].ID)
				}
			}
		}
		if pa, ok := p.Traits["p_alive"].Value.(float64); ok {
			withCLV++
			if pa < 0 || pa > 1 {
				t.Errorf("p_alive %v", pa)
			}
		}
		recs, ok := p.Traits["next_best_products"].Value.([]any)
		if !ok {
			t.Errorf("profile %s: next_best_products %#v", p.ID, p.Traits["next_best_products"].Value)
		}
		why, _ := p.Traits["next_best_products_reason"].Value.(string)
		if len(recs) == 0 && why == "" {
			t.Errorf("profile %s has no recommendation and no reason", p.ID)
		}
		// The reason's code beside the English, for the console's words.
		if code, _ := p.Traits["next_best_products_reason_code"].Value.(string); (code == "") != (why == "") {
			t.Errorf("profile %s: reason %q with code %q", p.ID, why, code)
		}
		for _, rc := range recs {
			m, _ := rc.(map[string]any)
			ante, _ := m["antecedent"].([]any)
			if m["product"] == "" || len(ante) == 0 || m["confidence"] == nil || m["lift"].(float64) <= 1 || m["support"] == nil {
				t.Errorf("profile %s: recommendation %#v lacks its rule", p.ID, rc)
			}
		}
		if len(recs) > 0 {
			withRecs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range jobs.Outputs {
		if !written[o.Name] {
			t.Errorf("jobs.Outputs declares %s, which no run wrote", o.Name)
		}
	}
	if withCLV == 0 || withRecs == 0 {
		t.Errorf("%d profiles with CLV, %d with recommendations", withCLV, withRecs)
	}
	ev := runs[jobs.Churn].Evaluation
	if ev == nil || !ev.Informative || ev.AUC <= 0.5 || ev.HeldOut == 0 || len(ev.Calibration) == 0 || ev.Brier >= ev.BrierBaseRate {
		t.Errorf("churn evaluation on data with real churn: %+v", ev)
	} else {
		t.Logf("churn: %s", ev.Verdict)
	}
	h := runs[jobs.CLV].Holdout
	if h == nil || h.Holdout == nil {
		t.Fatalf("CLV run without a holdout check: %+v", h)
	}
	t.Logf("CLV holdout (%s, %s → %s): actual %.0f, predicted %.1f (%+.1f%%), MAE %.3f (naive %.3f), r %.3f",
		h.Rule, h.CalibrationEnd, h.HoldoutEnd, h.Actual, h.Predicted, h.AggregateErrPct, h.MAE, h.NaiveMAE, h.Correlation)
	if h.Spend != nil {
		t.Logf("CLV holdout revenue: actual %.0f, predicted %.0f (%+.1f%%)", h.Spend.Actual, h.Spend.Predicted, h.Spend.ErrPct)
	}
	if h.Customers == 0 || h.Actual == 0 || len(h.ByFrequency) != 8 || len(h.Cumulative) == 0 || h.MAE >= h.NaiveMAE {
		t.Errorf("CLV holdout on the demo: %+v", h.Holdout)
	}
	stored, err := db.Run(ctx, runs[jobs.CLV].ID)
	if err != nil || stored.Holdout == nil || stored.Holdout.Holdout == nil || stored.Holdout.Predicted != h.Predicted {
		t.Errorf("the stored run lost its holdout check: %+v %v", stored, err)
	}
	listed, err := db.Runs(ctx, "", 10)
	if err != nil || len(listed) != 4 {
		t.Errorf("runs listed: %d %v", len(listed), err)
	}
}

func TestBadRunsAreRecordedAndRefused(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := jobs.NewRunner(db, db, db)
	if _, err := r.RunNow(ctx, "astrology", nil); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("unknown kind: %v", err)
	}
	run, err := r.RunNow(ctx, jobs.CLV, nil)
	if err == nil || run.Status != jobs.Failed || !strings.Contains(run.Error, "Order Completed") {
		t.Errorf("a run over an empty store: %+v %v", run, err)
	}
	if _, err := r.RunNow(ctx, jobs.Churn, jobs.Params{"horizon_days": "soon"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("bad parameter: %v", err)
	}
}

// The null case: whether a customer buys after the cut-off is drawn
// independently of everything before it. The churn run must find AUC ≈ 0.5,
// say the model is not informative, and write no scores.
func TestChurnOnNoiseIsNotInformative(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	cut := asOf.AddDate(0, 0, -90)
	var events []map[string]any
	order := func(u string, at time.Time, n int) {
		events = append(events, map[string]any{"type": "track", "userId": u, "event": "Order Completed", "messageId": fmt.Sprintf("%s-%d", u, n),
			"timestamp": at.Format(time.RFC3339), "properties": map[string]any{"revenue": float64(50 + rng.IntN(500))}})
	}
	for i := range 1500 {
		u := fmt.Sprintf("u%04d", i)
		n := 1 + rng.IntN(6)
		for k := range n {
			order(u, cut.Add(-time.Duration(rng.IntN(400*24))*time.Hour), k)
		}
		if rng.Float64() < 0.4 {
			order(u, cut.Add(time.Duration(1+rng.IntN(89*24))*time.Hour), n)
		}
	}
	db, proc, r := load(t, events)
	run, err := r.RunNow(ctx, jobs.Churn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := run.Evaluation
	if ev == nil {
		t.Fatalf("no evaluation: %+v", run)
	}
	t.Logf("%s", ev.Verdict)
	if ev.Informative || ev.AUCInterval[0] > 0.5 || math.Abs(ev.AUC-0.5) > 0.08 || !strings.Contains(ev.Verdict, "not informative") {
		t.Errorf("noise judged informative: %+v", ev)
	}
	catchUp(t, db, proc)
	if run.Profiles != 0 {
		t.Errorf("an uninformative model wrote %d profiles", run.Profiles)
	}
	db.AllProfiles(ctx, func(p *portrait.Profile) error {
		if _, ok := p.Traits["churn_probability"]; ok {
			t.Errorf("profile %s got a churn score from a model no better than chance", p.ID)
		}
		return nil
	})
}

// The demo must read as a shop: most buyers order once or twice, nobody with
// one order is predicted a year's value of thousands, and a value tag on
// clv_percentile covers a top share of buyers, not nearly all of them.
func TestDemoPredictionsAreBelievable(t *testing.T) {
	ctx := context.Background()
	db, proc, r := setup(t)
	run, err := r.RunNow(ctx, jobs.CLV, nil)
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, db, proc)
	var buyers, once, top int
	var onceCLV, revenue []float64
	spent := map[string]float64{}
	db.TrackEvents(ctx, "Order Completed", func(pid string, e *portrait.Event) error {
		var props struct{ Revenue float64 }
		json.Unmarshal(e.Properties, &props)
		spent[pid] += props.Revenue
		return nil
	})
	db.AllProfiles(ctx, func(p *portrait.Profile) error {
		n := p.TrackCounts["Order Completed"]
		v, ok := p.Traits["clv_12m"].Value.(float64)
		if n == 0 || !ok {
			return nil
		}
		buyers++
		if pct, _ := p.Traits["clv_percentile"].Value.(float64); pct >= 80 {
			top++
		}
		revenue = append(revenue, spent[p.ID])
		if n == 1 {
			once++
			onceCLV = append(onceCLV, v)
		}
		return nil
	})
	median := func(xs []float64) float64 {
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	t.Logf("%d buyers, %d with one order (median clv_12m %.0f, max %.0f); median revenue %.0f; clv quantiles %v; top fifth %d",
		buyers, once, median(onceCLV), onceCLV[len(onceCLV)-1], median(revenue), run.Metrics["clv_quantiles"], top)
	if share := float64(once) / float64(buyers); share < 0.3 || share > 0.7 {
		t.Errorf("%.0f%% of buyers ordered once: want a believable 30–70%%", share*100)
	}
	if median(onceCLV) >= median(revenue) || onceCLV[len(onceCLV)-1] > 10000 {
		t.Errorf("one-order customers: median clv_12m %.0f against median revenue %.0f, max %.0f", median(onceCLV), median(revenue), onceCLV[len(onceCLV)-1])
	}
	if share := float64(top) / float64(buyers); share < 0.18 || share > 0.22 {
		t.Errorf("clv_percentile >= 80 covers %.1f%% of buyers, want about a fifth", share*100)
	}
}

// A shop with a few weeks of history cannot check a forecast yet: the run
// still scores, and its record says why there is no holdout check.
func TestCLVHoldoutSkippedOnShortHistory(t *testing.T) {
	ctx := context.Background()
	var events []map[string]any
	for i := range 60 {
		for k := range 1 + i%3 {
			events = append(events, map[string]any{"type": "track", "userId": fmt.Sprintf("u%02d", i), "event": "Order Completed",
				"messageId": fmt.Sprintf("o%02d-%d", i, k), "timestamp": asOf.AddDate(0, 0, -40+i%20+k*7).Format(time.RFC3339),
				"properties": map[string]any{"revenue": float64(80 + 10*k)}})
		}
	}
	_, _, r := load(t, events)
	run, err := r.RunNow(ctx, jobs.CLV, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Holdout == nil || run.Holdout.Holdout != nil || !strings.Contains(run.Holdout.Skipped, "28 days") || run.Profiles == 0 {
		t.Errorf("run on 40 days of history: holdout %+v, %d profiles", run.Holdout, run.Profiles)
	}
	b, _ := json.Marshal(run)
	if !strings.Contains(string(b), `"holdout":{"cutoff_rule":"the last third of the purchase history","skipped":`) {
		t.Errorf("run record %s", b)
	}
	if _, err := r.RunNow(ctx, jobs.CLV, jobs.Params{"holdout_days": -3}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("negative holdout_days: %v", err)
	}
}

// logRecords keeps every log record, for checking what a run logged.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// On a new server the schedule finds nothing to analyse: every kind is
// tried, skipped quietly (a debug line), and no failed run is left behind;
// a run asked for explicitly still says why it cannot run.
func TestScheduleSkipsQuietlyWithoutData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := jobs.NewRunner(db, db, db)
	logs := &logRecords{}
	r.Logf = slog.New(logs)
	every := map[string]time.Duration{}
	for _, k := range jobs.Kinds {
		every[k] = time.Hour
	}
	r.Schedule(ctx, every, 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs.mu.Lock()
		skips := 0
		for _, rec := range logs.recs {
			if strings.Contains(rec.Message, "skipped") {
				skips++
			}
		}
		logs.mu.Unlock()
		if skips >= len(jobs.Kinds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule skipped %d of %d kinds", skips, len(jobs.Kinds))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // more ticks: a skip is not retried at once
	cancel()
	r.Wait()
	for _, k := range jobs.Kinds {
		runs, err := db.Runs(context.Background(), k, 10)
		if err != nil || len(runs) != 0 {
			t.Errorf("%s: %d runs recorded (%v), want none", k, len(runs), err)
		}
	}
	skips := 0
	for _, rec := range logs.recs {
		if rec.Level > slog.LevelDebug {
			t.Errorf("logged at %s: %s", rec.Level, rec.Message)
		}
		skips++
	}
	if skips != len(jobs.Kinds) {
		t.Errorf("%d skip lines, want one per kind (%d): a skipped kind waits before trying again", skips, len(jobs.Kinds))
	}
	run, err := r.RunNow(context.Background(), jobs.KMeans, nil)
	if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), "Order Completed") || run.Status != jobs.Failed {
		t.Errorf("an explicit run over no data: %+v %v", run, err)
	}
}

// countingStore counts how often the analyses read the purchases.
type countingStore struct {
	jobs.Store
	reads int
}

func (c *countingStore) TrackEvents(ctx context.Context, name string, fn func(string, *portrait.Event) error) error {
	c.reads++
	return c.Store.TrackEvents(ctx, name, fn)
}

// RunEachNow reads the customers once for all its runs and answers as the
// runs one by one would: same metrics, same results written back.
func TestRunEachNowReadsOnceAndAnswersAsOneByOne(t *testing.T) {
	ctx := context.Background()
	events := demo.Generate(7, 300, asOf).Events
	_, _, alone := load(t, events)
	db, _, shared := load(t, events)
	counted := &countingStore{Store: db}
	shared.Store = counted
	runs, errs := shared.RunEachNow(ctx, jobs.Kinds)
	if counted.reads != 1 {
		t.Fatalf("RunEachNow read the purchases %d times for %d runs, want once", counted.reads, len(jobs.Kinds))
	}
	for i, kind := range jobs.Kinds {
		one, err := alone.RunNow(ctx, kind, nil)
		if (err == nil) != (errs[i] == nil) {
			t.Fatalf("%s: alone %v, shared %v", kind, err, errs[i])
		}
		if runs[i].Kind != kind || runs[i].Status != one.Status || runs[i].Profiles != one.Profiles {
			t.Errorf("%s: shared run %+v, alone %+v", kind, runs[i], one)
		}
		a, _ := json.Marshal(one.Metrics)
		b, _ := json.Marshal(runs[i].Metrics)
		if string(a) != string(b) {
			t.Errorf("%s metrics differ:\nalone  %s\nshared %s", kind, a, b)
		}
		if kind == jobs.CLV && one.Profiles == 0 {
			t.Errorf("clv wrote no profile: the comparison would prove nothing")
		}
	}
}
