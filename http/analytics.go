package http

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/analytics/jobs"
)

// mountAnalytics serves analytics runs: start one, list them, follow one.
func (s *Server) mountAnalytics(mux *http.ServeMux) {
	if s.Analytics == nil {
		return
	}
	mux.Handle("POST /v1/analytics/runs", s.instrument("/v1/analytics/runs", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		var req struct {
			Kind   string      `json:"kind"`
			Params jobs.Params `json:"params"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			Error(w, r, portrait.Errorf(portrait.EINVALID, `body must be {"kind": "clv|fpgrowth|kmeans|churn", "params": {...}}`))
			return
		}
		run, err := s.Analytics.Start(r.Context(), req.Kind, req.Params)
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, run)
	})))
	mux.Handle("GET /v1/analytics/runs", s.instrument("/v1/analytics/runs", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		limit, err := queryInt(r, "limit", 50)
		if err != nil {
			Error(w, r, err)
			return
		}
		runs, err := s.Analytics.Runs.Runs(r.Context(), r.URL.Query().Get("kind"), limit)
		if err != nil {
			Error(w, r, err)
			return
		}
		for _, run := range runs {
			maskRunMetrics(r, run)
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
	})))
	mux.Handle("GET /v1/analytics/runs/{id}", s.instrument("/v1/analytics/runs/{id}", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		run, err := s.Analytics.Runs.Run(r.Context(), r.PathValue("id"))
		if err != nil {
			Error(w, r, err)
			return
		}
		maskRunMetrics(r, run)
		writeJSON(w, http.StatusOK, run)
	})))
}

// runMetricTraits are the metrics of an analysis run that aggregate a
// trait's values: a CLV run's total and quantiles of clv_12m (its "max" is
// one customer's CLV, and each quantile is some customer's).
var runMetricTraits = map[string]string{"total_clv": "clv_12m", "clv_quantiles": "clv_12m"}

// maskRunMetrics leaves out of a run the metrics of a trait the caller may
// not see, as a breakdown leaves out a hidden metric, with metrics_masked
// saying why. The run is read for this response, so it is changed in place.
func maskRunMetrics(r *http.Request, run *jobs.Run) {
	for m, trait := range runMetricTraits {
		if _, ok := run.Metrics[m]; !ok {
			continue
		}
		if err := requireVisible(r, access.KindTrait, trait); err != nil {
			delete(run.Metrics, m)
			run.Metrics["metrics_masked"] = err.Error()
		}
	}
}
