package logit_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// A small overlapping (non-separable) data set.
var (
	smallX = []float64{
		0.5, 1.0, 1.0, 0.2, 1.5, 2.5, 2.0, 1.0, 2.5, 3.0,
		3.0, 0.5, 3.5, 2.0, 4.0, 1.5, 4.5, 3.5, 5.0, 2.5,
	}
	smallY = []float64{0, 0, 1, 0, 1, 0, 1, 1, 0, 1}
)

// newton solves the same penalised problem independently: Newton's method on
// the full (d+1)² Hessian with Gaussian elimination, to machine precision.
func newton(x []float64, n, d int, y []float64, lambda float64) []float64 {
	th := make([]float64, d+1)
	for it := 0; it < 100; it++ {
		g := make([]float64, d+1)
		h := make([][]float64, d+1)
		for r := range h {
			h[r] = make([]float64, d+2)
		}
		for i := 0; i < n; i++ {
			row := append(append([]float64(nil), x[i*d:(i+1)*d]...), 1)
			eta := 0.0
			for f, v := range row {
				eta += th[f] * v
			}
			p := 1 / (1 + math.Exp(-eta))
			for a := range row {
				g[a] += (p - y[i]) * row[a]
				for b := range row {
					h[a][b] += p * (1 - p) * row[a] * row[b]
				}
			}
		}
		for f := 0; f < d; f++ {
			g[f] += lambda * th[f]
			h[f][f] += lambda
		}
		for r := range h {
			h[r][d+1] = g[r]
		}
		step := solve(h)
		for f := range th {
			th[f] -= step[f]
		}
	}
	return th
}

func solve(a [][]float64) []float64 {
	n := len(a)
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k <= n; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := a[r][n]
		for k := r + 1; k < n; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x
}

func TestMatchesNewton(t *testing.T) {
	for _, lambda := range []float64{0.5, 3, -1} {
		m, err := logit.Fit(smallX, 10, 2, smallY, logit.Options{L2: lambda})
		if err != nil {
			t.Fatal(err)
		}
		want := newton(smallX, 10, 2, smallY, math.Max(lambda, 0))
		got := append(append([]float64(nil), m.Weights...), m.Intercept)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-6 {
				t.Errorf("λ=%v: coefficients %v, Newton %v", lambda, got, want)
				break
			}
		}
	}
}

// Standardising changes what λ penalises but, without a penalty, not the
// maximum-likelihood solution in input units.
func TestStandardizeInvariantWithoutPenalty(t *testing.T) {
	a, err := logit.Fit(smallX, 10, 2, smallY, logit.Options{L2: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := logit.Fit(smallX, 10, 2, smallY, logit.Options{L2: -1, Standardize: true})
	if err != nil {
		t.Fatal(err)
	}
	for f := range a.Weights {
		if math.Abs(a.Weights[f]-b.Weights[f]) > 1e-5 {
			t.Errorf("weights %v vs standardised %v", a.Weights, b.Weights)
		}
	}
}

func TestRecoversGeneratingModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 20000
	x := make([]float64, n*2)
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		x[2*i], x[2*i+1] = rng.NormFloat64(), rng.NormFloat64()*3
		eta := -0.5 + 1.2*x[2*i] - 0.4*x[2*i+1]
		if rng.Float64() < 1/(1+math.Exp(-eta)) {
			y[i] = 1
		}
	}
	r, err := logit.TrainEvaluate(x, n, 2, y, []string{"a", "b"}, logit.EvalOptions{Options: logit.Options{L2: 1e-3, Standardize: true}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Model
	if math.Abs(m.Weights[0]-1.2) > 0.08 || math.Abs(m.Weights[1]+0.4) > 0.03 || math.Abs(m.Intercept+0.5) > 0.06 {
		t.Errorf("fit %+v, generating model b=-0.5 w=(1.2, -0.4)", m)
	}
	if r.NTrain != 16000 || r.NTest != 4000 {
		t.Errorf("split %d/%d, want 16000/4000", r.NTrain, r.NTest)
	}
	// The true model's AUC for these weights is about 0.83.
	if r.AUC < 0.8 || r.AUC > 0.86 {
		t.Errorf("held-out AUC %.3f", r.AUC)
	}
	for _, b := range r.Calibration {
		if b.Count > 200 && math.Abs(b.MeanPredicted-b.ObservedRate) > 0.06 {
			t.Errorf("calibration bin %+v off", b)
		}
	}
	if r.Weights[0].Feature != "b" {
		// b has SD 3, so its per-SD effect 1.2 equals a's; either may lead,
		// but both must be reported per SD near 1.2 in size.
		t.Logf("weights %+v", r.Weights)
	}
	for _, w := range r.Weights {
		if math.Abs(math.Abs(w.StdWeight)-1.2) > 0.1 {
			t.Errorf("per-SD weight %+v, want magnitude 1.2", w)
		}
	}
}

func TestAUC(t *testing.T) {
	cases := []struct {
		s, y []float64
		want float64
	}{
		{[]float64{0.1, 0.4, 0.35, 0.8}, []float64{0, 0, 1, 1}, 0.75},
		{[]float64{1, 2, 3}, []float64{0, 1, 1}, 1},
		{[]float64{3, 2, 1}, []float64{0, 1, 1}, 0},
		{[]float64{0.5, 0.5, 0.5, 0.5}, []float64{0, 1, 0, 1}, 0.5}, // ties count half
		{[]float64{0.2, 0.5, 0.5, 0.9}, []float64{0, 0, 1, 1}, 0.875},
	}
	for _, c := range cases {
		got, err := logit.AUC(c.s, c.y)
		if err != nil || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("AUC(%v, %v) = %v, %v; want %v", c.s, c.y, got, err, c.want)
		}
	}
	if _, err := logit.AUC([]float64{1, 2}, []float64{1, 1}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("one class: %v", err)
	}
}

func TestStratifiedSplit(t *testing.T) {
	y := make([]float64, 1000)
	for i := range y {
		if i%10 < 3 {
			y[i] = 1
		}
	}
	train, test, err := logit.StratifiedSplit(y, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 800 || len(test) != 200 {
		t.Fatalf("split %d/%d", len(train), len(test))
	}
	pos := 0
	seen := map[int]bool{}
	for _, i := range test {
		pos += int(y[i])
		seen[i] = true
	}
	for _, i := range train {
		if seen[i] {
			t.Fatalf("row %d in both sets", i)
		}
	}
	if pos != 60 {
		t.Errorf("%d positives in the test set, want 60 (30%% of 200)", pos)
	}
	again, _, _ := logit.StratifiedSplit(y, 0.2, 7)
	for i := range again {
		if again[i] != train[i] {
			t.Fatal("same seed gave a different split")
		}
	}
}

func TestLinear(t *testing.T) {
	// Exact plane y = 2 + 3a − b.
	x := []float64{0, 0, 1, 0, 0, 1, 2, 3, 4, 1, 3, 5}
	y := make([]float64, 6)
	for i := range y {
		y[i] = 2 + 3*x[2*i] - x[2*i+1]
	}
	l, err := logit.FitLinear(x, 6, 2, y, 0)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l.Intercept-2) > 1e-9 || math.Abs(l.Weights[0]-3) > 1e-9 || math.Abs(l.Weights[1]+1) > 1e-9 || math.Abs(l.R2-1) > 1e-12 {
		t.Errorf("fit %+v, want 2 + 3a − b exactly", l)
	}
	// Ridge in one dimension has the closed form w = Σxy / (Σx² + λ) on
	// centred data.
	x1 := []float64{1, 2, 4, 7}
	y1 := []float64{3, 1, 6, 9}
	l, err = logit.FitLinear(x1, 4, 1, y1, 5)
	if err != nil {
		t.Fatal(err)
	}
	mx, my := 3.5, 4.75
	var sxy, sxx float64
	for i := range x1 {
		sxy += (x1[i] - mx) * (y1[i] - my)
		sxx += (x1[i] - mx) * (x1[i] - mx)
	}
	if w := sxy / (sxx + 5); math.Abs(l.Weights[0]-w) > 1e-12 || math.Abs(l.Intercept-(my-w*mx)) > 1e-12 {
		t.Errorf("ridge fit %+v, closed form w=%v", l, w)
	}
	// Collinear features without a penalty are refused.
	if _, err := logit.FitLinear([]float64{1, 2, 2, 4, 3, 6}, 3, 2, []float64{1, 2, 3}, 0); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("collinear: %v", err)
	}
}

func TestDegenerate(t *testing.T) {
	cases := map[string]error{}
	_, cases["one class"] = logit.Fit([]float64{1, 2, 3}, 3, 1, []float64{1, 1, 1}, logit.Options{})
	_, cases["NaN feature"] = logit.Fit([]float64{1, math.NaN()}, 2, 1, []float64{0, 1}, logit.Options{})
	_, cases["label 2"] = logit.Fit([]float64{1, 2}, 2, 1, []float64{0, 2}, logit.Options{})
	_, cases["shape"] = logit.Fit([]float64{1, 2, 3}, 2, 1, []float64{0, 1}, logit.Options{})
	_, cases["separable, no penalty"] = logit.Fit([]float64{1, 2, 3, 4}, 4, 1, []float64{0, 0, 1, 1}, logit.Options{L2: -1})
	for name, err := range cases {
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
	// Separable data with a penalty have a finite, correct-signed solution.
	m, err := logit.Fit([]float64{1, 2, 3, 4}, 4, 1, []float64{0, 0, 1, 1}, logit.Options{L2: 0.1})
	if err != nil || !(m.Weights[0] > 0) {
		t.Errorf("separable with penalty: %+v, %v", m, err)
	}
	// A constant feature gets no weight from the penalised fit.
	x := []float64{1, 5, 2, 5, 3, 5, 4, 5, 2.5, 5, 1.5, 5}
	m, err = logit.Fit(x, 6, 2, []float64{0, 1, 0, 1, 1, 0}, logit.Options{Standardize: true})
	if err != nil || math.Abs(m.Weights[1]) > 1e-9 {
		t.Errorf("constant feature: %+v, %v", m, err)
	}
}
