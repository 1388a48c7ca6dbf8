package clv_test

import (
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/clv"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/internal/shareddata"
	"gonum.org/v1/gonum/stat/distuv"
)

var calEnd = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)

func readCDNOW(t testing.TB, name string) []clv.Purchase {
	t.Helper()
	f, err := os.Open(shareddata.Path(t, "cdnow/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	txs, err := dataset.ReadCDNOW(f, dataset.CDNOWAuto)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]clv.Purchase, len(txs))
	for i, tx := range txs {
		ps[i] = clv.Purchase{Customer: tx.Customer, Time: tx.Time, Amount: tx.Amount}
	}
	return ps
}

func sampleSummary(t testing.TB) []clv.Customer {
	cs, err := clv.Summarize(readCDNOW(t, "CDNOW_sample.txt"), clv.SummaryOptions{CalibrationEnd: calEnd})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol || math.IsNaN(got) {
		t.Errorf("%s = %.6f, want %.4f ± %g", name, got, want, tol)
	}
}

// The published summary table (lifetimes' cdnow_customers_summary*.csv)
// must come out of our own summarisation of the raw transactions.
func TestSummaryMatchesPublishedTable(t *testing.T) {
	cs := sampleSummary(t)
	if len(cs) != 2357 {
		t.Fatalf("%d customers, want 2357", len(cs))
	}
	f, err := os.Open(shareddata.Path(t, "cdnow/cdnow_customers_summary_with_transactions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]clv.Customer{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	repeat := 0
	for _, r := range recs[1:] {
		c, ok := byID[r[0]]
		if !ok {
			t.Fatalf("customer %s missing from summary", r[0])
		}
		v := make([]float64, 4)
		for i := range v {
			v[i], _ = strconv.ParseFloat(r[i+1], 64)
		}
		if c.X != v[0] || math.Abs(c.Tx-v[1]) > 0.006 || math.Abs(c.T-v[2]) > 0.006 || math.Abs(c.Monetary-v[3]) > 0.006 {
			t.Fatalf("customer %s: got x=%v tx=%.3f T=%.3f m=%.3f, published %v", r[0], c.X, c.Tx, c.T, c.Monetary, r[1:])
		}
		if c.X > 0 {
			repeat++
		}
	}
	if repeat != 946 {
		t.Errorf("%d repeat buyers, want 946", repeat)
	}
}

func TestBGNBDReference(t *testing.T) {
	cs := sampleSummary(t)
	m, err := clv.FitBGNBD(cs, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BG/NBD: r=%.4f alpha=%.4f a=%.4f b=%.4f LL=%.3f", m.R, m.Alpha, m.A, m.B, m.LogLik)
	near(t, "r", m.R, 0.243, 0.005)
	near(t, "alpha", m.Alpha, 4.414, 0.005)
	near(t, "a", m.A, 0.793, 0.005)
	near(t, "b", m.B, 2.426, 0.005)
	near(t, "loglik", m.LogLik, -9582.4, 0.1)
	near(t, "E[Y(39)|2,30.43,38.86]", m.ConditionalExpected(39, 2, 30.43, 38.86), 1.226, 0.001)

	// P(alive) is 1 without repeats and falls as the last purchase recedes.
	if p := m.PAlive(0, 0, 38.86); p != 1 {
		t.Errorf("P(alive | no repeat) = %v, want 1", p)
	}
	if a, b := m.PAlive(5, 38, 38.86), m.PAlive(5, 5, 38.86); !(a > b && b > 0 && a < 1) {
		t.Errorf("P(alive) recent %v should exceed stale %v, both in (0,1)", a, b)
	}
}

// The closed forms (hypergeometric function included) must agree with a
// simulation of the BG/NBD story itself: Poisson purchasing at a
// Gamma-distributed rate, dropping out after each repeat purchase with a
// Beta-distributed probability.
func TestBGNBDClosedFormsMatchSimulation(t *testing.T) {
	m := &clv.BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	src := rand.NewPCG(1, 2)
	rng := rand.New(src)
	lam := distuv.Gamma{Alpha: m.R, Beta: m.Alpha, Src: src}
	drop := distuv.Beta{Alpha: m.A, Beta: m.B, Src: src}
	const n, horizon, split = 1000000, 78.0, 39.0
	var total float64
	var condSum, condN float64
	for i := 0; i < n; i++ {
		l, p := lam.Rand(), drop.Rand()
		var ts []float64
		for tt := rng.ExpFloat64() / l; tt <= horizon; tt += rng.ExpFloat64() / l {
			ts = append(ts, tt)
			if rng.Float64() < p {
				break
			}
		}
		total += float64(len(ts))
		// Condition on the first 39 weeks showing exactly 2 repeats, the
		// last in week 30..31: estimate E[purchases in (39, 78]] for them.
		if x, last := countUpTo(ts, split); x == 2 && last >= 30 && last < 31 {
			condSum += float64(len(ts) - x)
			condN++
		}
	}
	sim := total / n
	t.Logf("simulated E[X(78)] %.4f; conditional %.4f over %v customers", sim, condSum/condN, condN)
	if got := m.ExpectedPurchases(horizon); math.Abs(got-sim) > 0.015 {
		t.Errorf("E[X(78)] closed form %.4f, simulation %.4f", got, sim)
	}
	got := m.ConditionalExpected(horizon-split, 2, 30.5, split)
	se := math.Sqrt(got / condN) // Poisson-like spread of the conditional counts
	if math.Abs(condSum/condN-got) > 4*se {
		t.Errorf("E[Y(39)|x=2,tx≈30.5,T=39] closed form %.4f, simulation %.4f over %v customers", got, condSum/condN, condN)
	}
}

func countUpTo(ts []float64, t float64) (int, float64) {
	x, last := 0, 0.0
	for _, v := range ts {
		if v > t {
			break
		}
		x, last = x+1, v
	}
	return x, last
}

// The published summary file fits to the same parameters as our own summary.
func TestBGNBDFromPublishedSummary(t *testing.T) {
	f, err := os.Open(shareddata.Path(t, "cdnow/cdnow_customers_summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cs []clv.Customer
	for _, r := range recs[1:] {
		x, _ := strconv.ParseFloat(r[1], 64)
		tx, _ := strconv.ParseFloat(r[2], 64)
		T, _ := strconv.ParseFloat(r[3], 64)
		cs = append(cs, clv.Customer{ID: r[0], X: x, Tx: tx, T: T})
	}
	m, err := clv.FitBGNBD(cs, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "r", m.R, 0.243, 0.005)
	near(t, "alpha", m.Alpha, 4.414, 0.005)
	near(t, "a", m.A, 0.793, 0.005)
	near(t, "b", m.B, 2.426, 0.005)
	near(t, "loglik", m.LogLik, -9582.4, 0.1)
}

func TestGammaGammaReference(t *testing.T) {
	cs := sampleSummary(t)
	g, err := clv.FitGammaGamma(cs, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Gamma-Gamma: p=%.4f q=%.4f gamma=%.4f n=%d", g.P, g.Q, g.Gamma, g.N)
	if g.N != 946 {
		t.Errorf("fitted %d repeat buyers, want 946", g.N)
	}
	near(t, "p", g.P, 6.25, 0.05)
	near(t, "q", g.Q, 3.74, 0.05)
	near(t, "gamma", g.Gamma, 15.44, 0.05)
	// Shrinkage: a heavy spender's expected spend lies between his own mean
	// and the population mean, and moves towards his own with more purchases.
	pop := g.ExpectedSpend(0, 0)
	e1, e10 := g.ExpectedSpend(1, 100), g.ExpectedSpend(10, 100)
	if !(pop < e1 && e1 < e10 && e10 < 100) {
		t.Errorf("spend shrinkage broken: population %.2f, x=1 %.2f, x=10 %.2f, own 100", pop, e1, e10)
	}
}

func TestValue(t *testing.T) {
	cs := sampleSummary(t)
	bg, err := clv.FitBGNBD(cs, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gg, err := clv.FitGammaGamma(cs, clv.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := clv.Customer{X: 2, Tx: 30.43, T: 38.86, Monetary: 22.35}
	undiscounted, err := clv.Value(bg, gg, c, clv.ValueOptions{Months: 12})
	if err != nil {
		t.Fatal(err)
	}
	// With no discount the value is expected purchases over 12 months times
	// expected spend, exactly.
	want := bg.ConditionalExpected(12*365.25/12/7, 2, 30.43, 38.86) * gg.ExpectedSpend(2, 22.35)
	near(t, "undiscounted CLV", undiscounted, want, 1e-9)
	discounted, _ := clv.Value(bg, gg, c, clv.ValueOptions{Months: 12, AnnualDiscount: 0.1})
	if !(discounted < undiscounted && discounted > undiscounted/1.1) {
		t.Errorf("10%% discount gives %.3f from %.3f; want between %.3f and it", discounted, undiscounted, undiscounted/1.1)
	}
	scores, err := clv.ScoreAll(bg, gg, cs, clv.ValueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scores {
		if !(s.PAlive > 0 && s.PAlive <= 1) || !(s.ExpectedPurchases >= 0) || !(s.CLV >= 0) {
			t.Fatalf("bad score %+v", s)
		}
	}
}

func TestDegenerateInput(t *testing.T) {
	noRepeat := []clv.Customer{{ID: "1", T: 10}, {ID: "2", T: 5}}
	if _, err := clv.FitBGNBD(noRepeat, clv.FitOptions{}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("no repeat purchases: got %v, want an invalid error", err)
	}
	if _, err := clv.FitGammaGamma(noRepeat, clv.FitOptions{}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("Gamma-Gamma without repeat buyers: got %v, want an invalid error", err)
	}
	for name, cs := range map[string][]clv.Customer{
		"empty":          nil,
		"NaN":            {{ID: "1", X: math.NaN(), T: 3}},
		"recency > T":    {{ID: "1", X: 1, Tx: 5, T: 3}},
		"fractional x":   {{ID: "1", X: 0.5, Tx: 1, T: 3}},
		"negative":       {{ID: "1", X: -1, T: 3}},
		"all born today": {{ID: "1"}},
	} {
		if _, err := clv.FitBGNBD(cs, clv.FitOptions{}); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
	if _, err := clv.Summarize(nil, clv.SummaryOptions{}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("Summarize(nil): got %v", err)
	}
}
