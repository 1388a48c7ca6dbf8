package http

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

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
	maskClusterFeatures(r, run)
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

// maskClusterFeatures leaves out of a k-means run the features of a trait
// the caller may not see (revenue, avg_order_value): each cluster's z is
// its mean in standard deviations, and a cluster of one is its member's
// place among the customers. The feature goes from features, from every
// cluster's z and terms, and from its text; the other features keep their
// places in z, so the console reads them as before.
func maskClusterFeatures(r *http.Request, run *jobs.Run) {
	feats, ok := run.Metrics["features"].([]any)
	if !ok {
		if fs, ok2 := run.Metrics["features"].([]string); ok2 {
			for _, f := range fs {
				feats = append(feats, f)
			}
		} else {
			return
		}
	}
	hidden, hiddenName := map[int]bool{}, map[string]bool{}
	var reasons []string
	for i, f := range feats {
		name, _ := f.(string)
		if err := requireVisible(r, access.KindTrait, name); err != nil {
			hidden[i], hiddenName[name] = true, true
			reasons = append(reasons, err.Error())
		}
	}
	if len(hidden) == 0 {
		return
	}
	// Through JSON, so that a run read from the store ([]any of maps) and
	// one built in memory ([]kmeans.Description) are masked alike.
	var clusters []struct {
		Cluster int               `json:"cluster"`
		Size    int               `json:"size"`
		Share   float64           `json:"share"`
		Text    string            `json:"text"`
		Code    string            `json:"code"`
		Terms   []json.RawMessage `json:"terms"`
		Z       []float64         `json:"z"`
	}
	if raw, err := json.Marshal(run.Metrics["clusters"]); err == nil {
		json.Unmarshal(raw, &clusters)
	}
	keep := []any{}
	for i, f := range feats {
		if !hidden[i] {
			keep = append(keep, f)
		}
	}
	out := make([]map[string]any, 0, len(clusters))
	for _, c := range clusters {
		z := []float64{}
		for i, v := range c.Z {
			if !hidden[i] {
				z = append(z, v)
			}
		}
		terms := []map[string]any{}
		var parts []string
		for _, t := range c.Terms {
			var term struct {
				Feature string  `json:"feature"`
				Level   string  `json:"level"`
				Z       float64 `json:"z"`
			}
			if json.Unmarshal(t, &term) != nil || hiddenName[term.Feature] {
				continue
			}
			terms = append(terms, map[string]any{"feature": term.Feature, "level": term.Level, "z": term.Z})
			parts = append(parts, fmt.Sprintf("%s %s (%+.1fσ)", strings.ReplaceAll(term.Level, "_", " "), term.Feature, term.Z))
		}
		text := strings.Join(parts, ", ")
		if c.Code == "average" {
			text = c.Text
		}
		out = append(out, map[string]any{"cluster": c.Cluster, "size": c.Size, "share": c.Share, "text": text, "code": c.Code, "terms": terms, "z": z})
	}
	run.Metrics["features"], run.Metrics["clusters"] = keep, out
	run.Metrics["metrics_masked"] = strings.Join(reasons, "; ")
}
