package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/clv"
	"github.com/portrait-cdp/portrait/analytics/dataset"
)

// analyzeData returns the path of a shared data file: under $PORTRAIT_SHARED
// or the first parent of the working directory holding shared/data.
func analyzeData(t *testing.T, rel string) string {
	t.Helper()
	var candidates []string
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		candidates = append(candidates, filepath.Join(d, "data", rel), filepath.Join(d, rel))
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		candidates = append(candidates, filepath.Join(dir, "shared", "data", rel))
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	t.Skipf("shared data file %s not found: set PORTRAIT_SHARED or run below a directory containing shared/data", rel)
	return ""
}

func analyzeJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	if err := runAnalyze(context.Background(), append(args, "--json"), &out, &errb); err != nil {
		t.Fatalf("analyze %v: %v (stderr %s)", args, err, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("analyze %v: output is not JSON: %v\n%s", args, err, out.String())
	}
	return m
}

func num(t *testing.T, m map[string]any, key string) float64 {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("JSON field %q missing or not a number in %v", key, m)
	}
	return v
}

func TestDatasetAnalyzeCLVContract(t *testing.T) {
	m := analyzeJSON(t, "clv", "--input", analyzeData(t, "cdnow/CDNOW_sample.txt"), "--format", "cdnow")
	for key, want := range map[string]float64{"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426} {
		if got := num(t, m, key); math.Abs(got-want) > 0.005 {
			t.Errorf("%s = %v, want %v ± 0.005", key, got, want)
		}
	}
	if got := num(t, m, "loglik"); math.Abs(got+9582.4) > 0.1 {
		t.Errorf("loglik = %v, want -9582.4", got)
	}
	for key, want := range map[string]float64{"p": 6.25, "q": 3.74, "gamma": 15.44} {
		if got := num(t, m, key); math.Abs(got-want) > 0.05 {
			t.Errorf("%s = %v, want %v ± 0.05", key, got, want)
		}
	}
}

// FHL's holdout: calibrated on weeks 1–39, the forecast of weeks 40–78 is
// compared with what the 2,357 customers did.
func TestDatasetAnalyzeCLVHoldout(t *testing.T) {
	m := analyzeJSON(t, "clv", "--input", analyzeData(t, "cdnow/CDNOW_sample.txt"), "--format", "cdnow", "--holdout-end", "1998-06-30")
	h, ok := m["holdout"].(map[string]any)
	if !ok {
		t.Fatalf("no holdout object in %v", m)
	}
	if num(t, h, "holdout_periods") != 39 || num(t, h, "actual_repeat_purchases") != 1882 || math.Abs(num(t, h, "predicted_repeat_purchases")-1653.4) > 1 {
		t.Errorf("holdout %v", h)
	}
	bins, _ := h["by_frequency"].([]any)
	curve, _ := h["cumulative"].([]any)
	if len(bins) != 8 || len(curve) != 78 {
		t.Errorf("%d frequency bins and %d curve points, want 8 (0..7+) and 78 weeks", len(bins), len(curve))
	}
	// Without data after the calibration end there is nothing to check.
	m = analyzeJSON(t, "clv", "--input", analyzeData(t, "cdnow/CDNOW_sample.txt"), "--format", "cdnow", "--calibration-end", "1998-06-30")
	if m["holdout"] != nil {
		t.Errorf("a holdout check with no holdout data: %v", m["holdout"])
	}
}

func TestDatasetAnalyzeFPGrowthContract(t *testing.T) {
	m := analyzeJSON(t, "fpgrowth", "--input", analyzeData(t, "groceries/groceries.csv"), "--format", "baskets",
		"--min-support", "0.006", "--min-confidence", "0.25", "--min-len", "2")
	if got := num(t, m, "rules"); got != 463 {
		t.Errorf("rules = %v, want 463", got)
	}
	byLen, _ := m["rules_by_length"].(map[string]any)
	if fmt.Sprint(byLen) != "map[2:150 3:297 4:16]" {
		t.Errorf("rules_by_length = %v, want 150/297/16", byLen)
	}
	if num(t, m, "itemsets") < 463 {
		t.Errorf("itemsets = %v", m["itemsets"])
	}
	if top, _ := m["top"].([]any); len(top) == 0 {
		t.Error("no top rules")
	}
}

func TestDatasetAnalyzeKMeansContract(t *testing.T) {
	in := analyzeData(t, "mall_customers/Mall_Customers.csv")
	cols := "Annual Income (k$),Spending Score (1-100)"
	m := analyzeJSON(t, "kmeans", "--input", in, "--columns", cols, "--k", "5", "--standardize=false", "--seed", "1")
	if num(t, m, "k") != 5 {
		t.Errorf("k = %v", m["k"])
	}
	if got := num(t, m, "wcss"); math.Abs(got-44448.46) > 44.45 {
		t.Errorf("wcss = %v, want 44448.46 ± 0.1%%", got)
	}
	sizes, _ := m["sizes"].([]any)
	centers, _ := m["centers"].([]any)
	if len(sizes) != 5 || len(centers) != 5 {
		t.Errorf("sizes %v, centers %v", sizes, centers)
	}
	auto := analyzeJSON(t, "kmeans", "--input", in, "--columns", cols, "--standardize=false", "--seed", "1")
	sil, _ := auto["silhouette"].(map[string]any)
	if num(t, auto, "k") != 5 || len(sil) != 9 {
		t.Errorf("automatic k = %v, silhouette per k %v", auto["k"], sil)
	}
}

// A labelled churn file built from CDNOW: features from the calibration
// period (with a categorical cohort, a free-text column and some blank
// numeric cells), label = no purchase in the following 39 weeks.
func writeChurnCSV(t *testing.T) string {
	t.Helper()
	f, err := os.Open(analyzeData(t, "cdnow/CDNOW_master.txt"))
	if err != nil {
		t.Fatal(err)
	}
	txs, err := dataset.ReadCDNOW(f, dataset.CDNOWMaster)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	active := map[string]bool{}
	first := map[string]time.Time{}
	var ps []clv.Purchase
	for _, tx := range txs {
		if tx.Time.After(end) {
			active[tx.Customer] = true
			continue
		}
		if ft, ok := first[tx.Customer]; !ok || tx.Time.Before(ft) {
			first[tx.Customer] = tx.Time
		}
		ps = append(ps, clv.Purchase{Customer: tx.Customer, Time: tx.Time, Amount: tx.Amount})
	}
	cs, err := clv.Summarize(ps, clv.SummaryOptions{CalibrationEnd: end})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("customer,frequency,recency,T,monetary,cohort,note,churned\n")
	for i, c := range cs {
		mon := fmt.Sprintf("%.2f", c.Monetary)
		if i%17 == 0 {
			mon = " " // blank numeric cells, as spreadsheets export them
		}
		churned := "Yes"
		if active[c.ID] {
			churned = "No"
		}
		fmt.Fprintf(&b, "%s,%v,%.2f,%.2f,%s,%s,note %d,%s\n", c.ID, c.X, c.Tx, c.T, mon, first[c.ID].Format("Jan"), i, churned)
	}
	path := filepath.Join(t.TempDir(), "churn.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDatasetAnalyzeChurnContract(t *testing.T) {
	in := writeChurnCSV(t)
	m := analyzeJSON(t, "churn", "--input", in, "--target", "churned", "--positive", "Yes", "--id-column", "customer")
	auc := num(t, m, "auc")
	t.Logf("CDNOW churn: AUC %.4f, accuracy %.4f, base rate %.4f", auc, num(t, m, "accuracy"), num(t, m, "base_rate"))
	if auc < 0.7 || auc > 0.95 {
		t.Errorf("held-out AUC %v; recency and frequency predict CDNOW churn with AUC around 0.8", auc)
	}
	if m["informative"] != true || num(t, m, "brier") >= num(t, m, "base_rate")*(1-num(t, m, "base_rate")) {
		t.Errorf("CDNOW churn judged %v: %v (Brier %v)", m["informative"], m["verdict"], m["brier"])
	}
	if ci, _ := m["auc_ci95"].([]any); len(ci) != 2 || ci[0].(float64) >= auc || ci[1].(float64) <= auc {
		t.Errorf("AUC interval %v around %v", m["auc_ci95"], auc)
	}
	if acc := num(t, m, "accuracy"); acc < num(t, m, "base_rate") {
		t.Errorf("accuracy %v below the majority-class rate %v", acc, num(t, m, "base_rate"))
	}
	nTrain, nTest := num(t, m, "n_train"), num(t, m, "n_test")
	if nTrain+nTest != 23570 || math.Abs(nTest/(nTrain+nTest)-0.2) > 0.001 {
		t.Errorf("split %v/%v, want 80/20 of 23570", nTrain, nTest)
	}
	dropped, _ := m["dropped_columns"].([]any)
	if len(dropped) != 1 || !strings.HasPrefix(fmt.Sprint(dropped[0]), "note") {
		t.Errorf("dropped columns %v, want the free-text note column", dropped)
	}
	// Same seed, same answer.
	if again := analyzeJSON(t, "churn", "--input", in, "--target", "churned", "--positive", "Yes", "--id-column", "customer"); num(t, again, "auc") != auc {
		t.Error("churn is not reproducible with a fixed seed")
	}
}

func TestDatasetAnalyzeRFM(t *testing.T) {
	m := analyzeJSON(t, "rfm", "--input", analyzeData(t, "online_retail/online_retail.csv.gz"), "--format", "online-retail",
		"--from", "2011-01-01", "--to", "2011-12-10")
	if n := num(t, m, "customers"); n < 4000 || n > 4338 {
		t.Errorf("customers = %v", n)
	}
	if m["as_of"] != "2011-12-10" {
		t.Errorf("as_of = %v", m["as_of"])
	}
	segs, _ := m["segments"].([]any)
	if len(segs) < 8 {
		t.Errorf("segments %v", segs)
	}
}

func TestAnalyzeTables(t *testing.T) {
	for _, args := range [][]string{
		{"kmeans", "--input", analyzeData(t, "mall_customers/Mall_Customers.csv"), "--columns", "Age,Annual Income (k$),Spending Score (1-100)", "--k", "4"},
		{"fpgrowth", "--input", analyzeData(t, "groceries/groceries.csv"), "--min-support", "0.01", "--min-confidence", "0.4"},
		{"clv", "--input", analyzeData(t, "cdnow/CDNOW_sample.txt"), "--format", "cdnow", "--top", "3"},
	} {
		var out, errb bytes.Buffer
		if err := runAnalyze(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out.Len() == 0 || strings.HasPrefix(out.String(), "{") {
			t.Errorf("%v: want a table, got %q", args[0], out.String())
		}
	}
}

func TestAnalyzeErrors(t *testing.T) {
	mall := analyzeData(t, "mall_customers/Mall_Customers.csv")
	for _, args := range [][]string{
		nil,
		{"nonsense"},
		{"kmeans"},
		{"kmeans", "--input", "/nonexistent/file.csv"},
		{"kmeans", "--input", mall, "--columns", "No Such Column", "--k", "2"},
		{"kmeans", "--input", mall, "--columns", "Age", "--k", "500"},
		{"kmeans", "--input", mall, "--k", "x"},
		{"fpgrowth", "--input", mall, "--min-support", "0"},
		{"churn", "--input", mall},
		{"churn", "--input", mall, "--target", "Gender"},
		{"rfm", "--input", mall, "--format", "nope"},
		{"clv", "--input", analyzeData(t, "cdnow/CDNOW_sample.txt"), "--format", "cdnow", "--holdout-end", "1997-06-30"},
	} {
		var out, errb bytes.Buffer
		err := runAnalyze(context.Background(), args, &out, &errb)
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%v: got %v, want an invalid-input error", args, err)
		}
	}
	var out, errb bytes.Buffer
	if err := runAnalyze(context.Background(), []string{"kmeans", "-h"}, &out, &errb); err != nil || !strings.Contains(errb.String(), "columns") {
		t.Errorf("-h: %v, %q", err, errb.String())
	}
}
