package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
)

// Found by the issue 15 probe: the business map's cells carry revenue,
// CLV and churn figures (confidential) summed and averaged over the cell's
// members, and a cell of one customer (GET /v1/map/members names them)
// gave an analyst of internal clearance that customer's figures, which
// the profile shows them as "[secret]". For such a caller the figures are
// left out (null, not 0) with masked_figures saying why, counts kept, and
// the actions whose rules read them go too; in the JSON and the XLSX.
func TestMapFiguresAboveClearanceMasked(t *testing.T) {
	a := newAccessEnv(t)
	ctx := context.Background()
	// One customer reached the purchase stage: the "all" row's purchase
	// cell is u01 alone.
	ev := &portrait.Event{Type: portrait.EventIdentify, UserID: "u01", MessageID: "map-u01", Source: "crm",
		Traits:    json.RawMessage(`{"journey_reached":["consult","purchase"],"clv_12m":4321.5,"churn_probability":0.8125}`),
		Timestamp: a.now.Add(-time.Minute), ReceivedAt: a.now.Add(-time.Minute)}
	if _, err := a.db.Append(ctx, []*portrait.Event{ev}, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := a.db.LastSeq(ctx)
	if err := a.proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	type cell struct {
		Stage     string                  `json:"stage"`
		Customers int                     `json:"customers"`
		Revenue   *float64                `json:"revenue"`
		CLV       *float64                `json:"clv"`
		Churn     *float64                `json:"churn_probability"`
		Actions   []struct{ Rule string } `json:"actions"`
	}
	type result struct {
		Rows []struct {
			Cells []cell `json:"cells"`
		} `json:"rows"`
		Masked []struct{ Figure, Trait, Reason string } `json:"masked_figures"`
	}
	const path = "/v1/map?segments=all&stages=purchase"
	read := func(token string) (cell, result) {
		t.Helper()
		status, out := a.call(t, token, http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, out)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Rows) != 1 || len(r.Rows[0].Cells) != 1 || r.Rows[0].Cells[0].Customers != 1 {
			t.Fatalf("want one cell of one customer: %s", out)
		}
		if strings.Contains(string(out), "4321.5") != (r.Rows[0].Cells[0].CLV != nil) {
			t.Errorf("the CLV is in the answer elsewhere: %s", out)
		}
		return r.Rows[0].Cells[0], r
	}
	full, fr := read(a.tokens["admin/secret"])
	if full.Revenue == nil || *full.Revenue <= 0 || full.CLV == nil || *full.CLV != 4321.5 || full.Churn == nil || len(fr.Masked) != 0 {
		t.Fatalf("admin: %+v %+v", full, fr.Masked)
	}
	winBack := false
	for _, act := range full.Actions {
		winBack = winBack || act.Rule == "win_back"
	}
	if !winBack {
		t.Fatalf("admin: no win_back action on a churn of 0.81: %+v", full.Actions)
	}
	an, ar := read(a.tokens["analyst/internal"])
	if an.Revenue != nil || an.CLV != nil || an.Churn != nil {
		t.Errorf("analyst: revenue %v clv %v churn %v of one customer", an.Revenue, an.CLV, an.Churn)
	}
	for _, act := range an.Actions {
		if act.Rule == "win_back" {
			t.Errorf("analyst: the win_back action says the churn crossed 0.6")
		}
	}
	got := map[string]bool{}
	for _, m := range ar.Masked {
		got[m.Figure] = strings.Contains(m.Reason, m.Trait) && strings.Contains(m.Reason, "internal")
	}
	for _, f := range []string{"revenue", "clv", "churn_probability"} {
		if !got[f] {
			t.Errorf("analyst: masked_figures has no %s with its reason: %+v", f, ar.Masked)
		}
	}

	// The XLSX: the revenue and CLV columns are empty for the analyst.
	status, body := a.call(t, a.tokens["analyst/internal"], http.MethodGet, "/v1/map/export?segments=all&stages=purchase", "")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil || len(rows) < 2 {
		t.Fatalf("export rows %v %v", rows, err)
	}
	for i, h := range rows[0] {
		if (h == "Revenue" || h == "CLV" || h == "Churn probability") && i < len(rows[1]) && rows[1][i] != "" {
			t.Errorf("export: %s is %q for the analyst", h, rows[1][i])
		}
	}
	if strings.Contains(strings.Join(rows[1], " "), "4321.5") {
		t.Errorf("export: the CLV is in the row %v", rows[1])
	}
}

// Found with the map: a CLV run's metrics hold the total and quantiles of
// clv_12m (confidential), whose "max" is one customer's CLV; an analyst of
// internal clearance read them in GET /v1/analytics/runs. They are left
// out for such a caller, with metrics_masked saying why.
func TestAnalyticsRunCLVMetricsMasked(t *testing.T) {
	a := newAccessEnv(t)
	// The run wrote clv_12m back: the schema knows the trait (confidential).
	ev := &portrait.Event{Type: portrait.EventIdentify, UserID: "u01", MessageID: "clv-u01", Source: "crm",
		Traits: json.RawMessage(`{"clv_12m":4321.5}`), Timestamp: a.now.Add(-time.Minute), ReceivedAt: a.now.Add(-time.Minute)}
	if _, err := a.db.Append(context.Background(), []*portrait.Event{ev}, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := a.db.LastSeq(context.Background())
	if err := a.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	run := &jobs.Run{ID: "run-clv-mask", Kind: "clv", Status: jobs.Succeeded, Params: map[string]any{}, StartedAt: a.now,
		Metrics: map[string]any{"customers": 3, "total_clv": 9876.5, "clv_quantiles": map[string]float64{"p50": 12.5, "max": 4321.5}}}
	if err := a.db.SaveRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/analytics/runs/" + run.ID, "/v1/analytics/runs?kind=clv"} {
		status, out := a.call(t, a.tokens["analyst/internal"], http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, out)
		}
		if strings.Contains(string(out), "4321.5") || strings.Contains(string(out), "9876.5") ||
			!strings.Contains(string(out), "metrics_masked") || !strings.Contains(string(out), `"customers":3`) {
			t.Errorf("analyst: %s: %s", path, out)
		}
		status, out = a.call(t, a.tokens["admin/secret"], http.MethodGet, path, "")
		if status != http.StatusOK || !strings.Contains(string(out), "4321.5") || strings.Contains(string(out), "metrics_masked") {
			t.Errorf("admin: %s: %d %s", path, status, out)
		}
	}
}

// Found with the map: RFM's M boundaries are quintiles of revenue, each a
// customer's revenue (confidential), and GET /v1/analytics/rfm/boundaries
// gave them to an analyst of internal clearance. They are left out for
// such a caller (R and F stay), with metric_masked saying why.
func TestRFMRevenueBoundariesMasked(t *testing.T) {
	a := newAccessEnv(t)
	const path = "/v1/analytics/rfm/boundaries"
	if status, out := a.call(t, a.tokens["admin/secret"], http.MethodPost, path, ""); status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, status, out)
	}
	type result struct {
		Boundaries *struct {
			Customers int         `json:"customers"`
			F         *[4]float64 `json:"f"`
			M         *[4]float64 `json:"m"`
		} `json:"boundaries"`
		Masked string `json:"metric_masked"`
	}
	read := func(token string) result {
		t.Helper()
		status, out := a.call(t, token, http.MethodGet, path, "")
		var res result
		if status != http.StatusOK || json.Unmarshal(out, &res) != nil || res.Boundaries == nil || res.Boundaries.Customers == 0 {
			t.Fatalf("GET %s: %d %s", path, status, out)
		}
		return res
	}
	if full := read(a.tokens["admin/secret"]); full.Boundaries.M == nil || full.Boundaries.M[3] <= 0 || full.Masked != "" {
		t.Errorf("admin: %+v", full)
	}
	an := read(a.tokens["analyst/internal"])
	if an.Boundaries.M != nil || an.Boundaries.F == nil || !strings.Contains(an.Masked, "revenue") {
		t.Errorf("analyst: m %v f %v masked %q", an.Boundaries.M, an.Boundaries.F, an.Masked)
	}
}

// Found with the map: a k-means run's clusters give each cluster's mean
// revenue and average order value (confidential) in standard deviations,
// in z, terms and text, and a cluster of one is its member's place; an
// analyst of internal clearance read them. Those features are left out of
// features, z, terms and text for such a caller, the others kept in order.
func TestAnalyticsRunClusterFeaturesMasked(t *testing.T) {
	a := newAccessEnv(t)
	run := &jobs.Run{ID: "run-kmeans-mask", Kind: "kmeans", Status: jobs.Succeeded, Params: map[string]any{}, StartedAt: a.now,
		Metrics: map[string]any{"customers": 3, "k": 2, "features": []string{"orders", "revenue", "avg_order_value", "days_since_last_order", "tenure_days"},
			"clusters": []map[string]any{
				{"cluster": 0, "size": 1, "share": 0.33, "code": "differs", "text": "very high revenue (+2.7σ), high orders (+1.1σ)",
					"terms": []map[string]any{{"feature": "revenue", "level": "very_high", "z": 2.7}, {"feature": "orders", "level": "high", "z": 1.1}},
					"z":     []float64{1.1, 2.7, 1.9, -0.2, 0.1}},
				{"cluster": 1, "size": 2, "share": 0.67, "code": "average", "text": "close to the average on every feature",
					"terms": []map[string]any{}, "z": []float64{-0.1, -0.2, -0.1, 0.1, 0}}}}}
	if err := a.db.SaveRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Metrics struct {
			Features []string `json:"features"`
			Clusters []struct {
				Text  string                     `json:"text"`
				Terms []struct{ Feature string } `json:"terms"`
				Z     []float64                  `json:"z"`
			} `json:"clusters"`
			Masked string `json:"metrics_masked"`
		} `json:"metrics"`
	}
	read := func(token string) result {
		t.Helper()
		status, out := a.call(t, token, http.MethodGet, "/v1/analytics/runs/"+run.ID, "")
		var res result
		if status != http.StatusOK || json.Unmarshal(out, &res) != nil || len(res.Metrics.Clusters) != 2 {
			t.Fatalf("GET run: %d %s", status, out)
		}
		return res
	}
	full := read(a.tokens["admin/secret"])
	if len(full.Metrics.Features) != 5 || len(full.Metrics.Clusters[0].Z) != 5 || full.Metrics.Masked != "" {
		t.Errorf("admin: %+v", full.Metrics)
	}
	an := read(a.tokens["analyst/internal"]).Metrics
	if strings.Join(an.Features, ",") != "orders,days_since_last_order,tenure_days" || !strings.Contains(an.Masked, "revenue") {
		t.Errorf("analyst: features %v masked %q", an.Features, an.Masked)
	}
	c := an.Clusters[0]
	if len(c.Z) != 3 || c.Z[0] != 1.1 || c.Z[1] != -0.2 || len(c.Terms) != 1 || c.Terms[0].Feature != "orders" || strings.Contains(c.Text, "revenue") || c.Text != "high orders (+1.1σ)" {
		t.Errorf("analyst: cluster 0 %+v", c)
	}
	if an.Clusters[1].Text != "close to the average on every feature" || len(an.Clusters[1].Z) != 3 {
		t.Errorf("analyst: cluster 1 %+v", an.Clusters[1])
	}
}
