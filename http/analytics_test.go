package http_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/demo"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
)

// The checks of every prediction are part of the run record that
// /v1/analytics/runs serves: a CLV run's holdout, a churn run's evaluation.
func TestAnalyticsRunsShowTheirChecks(t *testing.T) {
	asOf := time.Date(2026, 6, 30, 23, 59, 59, 0, time.UTC)
	var runner *jobs.Runner
	s := start(t, func(srv *porthttp.Server, db *sqlite.DB) {
		runner = jobs.NewRunner(db, db, db)
		runner.Now = func() time.Time { return asOf }
		srv.Analytics = runner
	})
	t.Cleanup(runner.Wait)
	ds := demo.Generate(3, 150, asOf)
	for i := 0; i < len(ds.Events); i += 200 {
		body, _ := json.Marshal(map[string]any{"batch": ds.Events[i:min(i+200, len(ds.Events))]})
		if r := s.do(t, http.MethodPost, "/v1/batch", body, nil); r.status != 200 {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
	}
	s.settle(t)
	admin := map[string]string{"Authorization": "Bearer " + adminKey}
	finished := func(kind string) map[string]any {
		r := s.do(t, http.MethodPost, "/v1/analytics/runs", []byte(`{"kind":"`+kind+`"}`), admin)
		if r.status != http.StatusAccepted {
			t.Fatalf("start %s: %d %s", kind, r.status, r.raw)
		}
		id, _ := r.body["id"].(string)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			r = s.get(t, "/v1/analytics/runs/"+id)
			if r.body["status"] != jobs.Running {
				break
			}
		}
		if r.body["status"] != jobs.Succeeded {
			t.Fatalf("%s run: %s", kind, r.raw)
		}
		return r.body
	}
	clv := finished(jobs.CLV)
	h, _ := clv["holdout"].(map[string]any)
	for _, k := range []string{"cutoff_rule", "calibration_end", "actual_repeat_purchases", "predicted_repeat_purchases", "mae", "naive_mae", "by_frequency", "cumulative", "spend"} {
		if _, ok := h[k]; !ok {
			t.Errorf("CLV run's holdout lacks %q: %v", k, h)
		}
	}
	churn := finished(jobs.Churn)
	ev, _ := churn["evaluation"].(map[string]any)
	for _, k := range []string{"auc", "auc_ci95", "brier", "brier_base_rate", "calibration", "informative", "verdict", "held_out_customers"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("churn run's evaluation lacks %q: %v", k, ev)
		}
	}
	r := s.get(t, "/v1/analytics/runs?kind=clv")
	runs, _ := r.body["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["holdout"] == nil {
		t.Errorf("the run list does not show the holdout check: %s", r.raw)
	}
}
