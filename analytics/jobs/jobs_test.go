package jobs_test

import (
	"context"
	"encoding/json"
	"log/slog"
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
	"github.com/portrait-cdp/portrait/tracking"
)

var asOf = time.Date(2026, 6, 30, 23, 59, 59, 0, time.UTC)

// setup loads the demo data set (customers, orders with products) through
// the tracking parser into a store and derives the profiles.
func setup(t *testing.T) (*sqlite.DB, *profile.Processor, *jobs.Runner) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ds := demo.Generate(7, 600, asOf)
	p := tracking.New()
	for i := 0; i < len(ds.Events); i += 500 {
		body, _ := json.Marshal(map[string]any{"batch": ds.Events[i:min(i+500, len(ds.Events))]})
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
		jobs.KMeans:   {"cluster", "cluster_description"},
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
	err := db.AllProfiles(ctx, func(p *portrait.Profile) error {
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
		if recs, ok := p.Traits["next_best_products"].Value.([]any); ok && len(recs) > 0 {
			withRecs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if withCLV == 0 || withRecs == 0 {
		t.Errorf("%d profiles with CLV, %d with recommendations", withCLV, withRecs)
	}
	if auc, _ := runs[jobs.Churn].Metrics["auc"].(float64); auc <= 0.5 {
		t.Errorf("churn model AUC %v: no better than chance on data with real churn", auc)
	}
	listed, err := db.Runs(ctx, "", 10)
	if err != nil || len(listed) != 4 {
		t.Errorf("runs listed: %d %v", len(listed), err)
	}
}

func TestBadRunsAreRecordedAndRefused(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
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
	db, err := sqlite.Open(ctx, t.TempDir())
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
