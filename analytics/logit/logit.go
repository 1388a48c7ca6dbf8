// Package logit fits L2-regularised logistic regression for propensity models
// (churn, purchase, response) and ridge linear regression for continuous
// targets, with the evaluation a propensity model needs: stratified split,
// AUC, accuracy, log loss and a calibration table.
package logit

import (
	"math"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/internal/colstat"
	"gonum.org/v1/gonum/optimize"
)

// Options for Fit.
type Options struct {
	// L2 is λ in Σ logloss + λ/2·‖w‖² (the intercept is not penalised).
	// Zero means 1; use a negative value for no penalty, which only has a
	// finite solution when the classes overlap.
	L2 float64
	// Standardize fits on z-scores so that λ treats features alike whatever
	// their units; weights are reported in input units either way.
	Standardize bool
	MaxIter     int // L-BFGS iterations (1000 when zero)
}

// Model is a fitted logistic regression: P(y=1|x) = σ(Intercept + w·x).
type Model struct {
	Weights    []float64 `json:"weights"` // per input unit
	Intercept  float64   `json:"intercept"`
	Iterations int       `json:"iterations"`
	// StdWeights are the weights per standard deviation of each feature
	// (log-odds change for a one-SD increase), comparable across features.
	StdWeights []float64 `json:"std_weights"`
}

func checkXY(x []float64, n, d int, y []float64) error {
	if n <= 0 || d <= 0 || len(x) != n*d || len(y) != n {
		return portrait.Errorf(portrait.EINVALID, "need n ≥ 1 rows of d ≥ 1 features and one target each; got %d values for %d × %d and %d targets", len(x), n, d, len(y))
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return portrait.Errorf(portrait.EINVALID, "row %d, feature %d is %v; impute missing values first", i/d+1, i%d+1, v)
		}
	}
	return nil
}

// Fit fits the model by L-BFGS on the penalised log-likelihood, which is
// strictly convex for λ > 0, so the optimum is unique.
func Fit(x []float64, n, d int, y []float64, opt Options) (*Model, error) {
	if err := checkXY(x, n, d, y); err != nil {
		return nil, err
	}
	pos := 0
	for i, v := range y {
		switch v {
		case 1:
			pos++
		case 0:
		default:
			return nil, portrait.Errorf(portrait.EINVALID, "target of row %d is %v; want 0 or 1", i+1, v)
		}
	}
	if pos == 0 || pos == n {
		return nil, portrait.Errorf(portrait.EINVALID, "all %d targets are %v; a classifier needs both classes", n, y[0])
	}
	lambda := opt.L2
	if lambda == 0 {
		lambda = 1
	}
	lambda = math.Max(lambda, 0)
	if opt.MaxIter <= 0 {
		opt.MaxIter = 1000
	}
	mean, scale := make([]float64, d), make([]float64, d)
	for f := range scale {
		scale[f] = 1
	}
	if opt.Standardize {
		mean, scale = colstat.MeanSD(x, n, d)
	}
	z := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			z[i*d+f] = (x[i*d+f] - mean[f]) / scale[f]
		}
	}
	// θ = (w_1..w_d, b). The loss is averaged over rows to keep the gradient
	// scale independent of n; λ is divided alike, so the optimum is that of
	// the documented objective.
	nf := float64(n)
	fg := func(grad, th []float64) float64 {
		w, b := th[:d], th[d]
		var loss float64
		if grad != nil {
			clear(grad)
		}
		for i := 0; i < n; i++ {
			zi := z[i*d : (i+1)*d]
			eta := b
			for f, v := range zi {
				eta += w[f] * v
			}
			// log(1+e^η) − yη, computed without overflow.
			loss += softplus(eta) - y[i]*eta
			if grad != nil {
				r := sigmoid(eta) - y[i]
				for f, v := range zi {
					grad[f] += r * v
				}
				grad[d] += r
			}
		}
		var pen float64
		for f, v := range w {
			pen += v * v
			if grad != nil {
				grad[f] = (grad[f] + lambda*v) / nf
			}
		}
		if grad != nil {
			grad[d] /= nf
		}
		return (loss + 0.5*lambda*pen) / nf
	}
	p := optimize.Problem{
		Func: func(th []float64) float64 { return fg(nil, th) },
		Grad: func(g, th []float64) { fg(g, th) },
	}
	res, err := optimize.Minimize(p, make([]float64, d+1), &optimize.Settings{
		GradientThreshold: 1e-10,
		MajorIterations:   opt.MaxIter,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-15, Iterations: 50},
	}, &optimize.LBFGS{})
	if res == nil {
		return nil, portrait.Errorf(portrait.EINVALID, "logistic regression fit failed: %v", err)
	}
	th := res.X
	for _, v := range th {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e6 {
			return nil, portrait.Errorf(portrait.EINVALID, "logistic regression diverged: the classes are separable; use an L2 penalty")
		}
	}
	if err != nil {
		g := make([]float64, d+1)
		fg(g, th)
		for _, v := range g {
			if math.Abs(v) > 1e-6 {
				return nil, portrait.Errorf(portrait.EINVALID, "logistic regression did not converge: %v", err)
			}
		}
	}
	// Without a penalty, separable classes have no finite optimum: the loss
	// only approaches zero as the weights grow. A near-zero loss means the
	// optimiser stopped somewhere on that road, not at a solution.
	if lambda == 0 && res.F < 1e-6 {
		return nil, portrait.Errorf(portrait.EINVALID, "the classes are separable, so the unpenalised fit has no finite solution; use an L2 penalty")
	}
	m := &Model{Weights: make([]float64, d), StdWeights: make([]float64, d), Intercept: th[d], Iterations: res.Stats.MajorIterations}
	_, sd := colstat.MeanSD(x, n, d)
	for f := 0; f < d; f++ {
		m.Weights[f] = th[f] / scale[f]
		m.Intercept -= m.Weights[f] * mean[f]
		m.StdWeights[f] = m.Weights[f] * sd[f]
	}
	return m, nil
}

func sigmoid(t float64) float64 {
	if t >= 0 {
		return 1 / (1 + math.Exp(-t))
	}
	e := math.Exp(t)
	return e / (1 + e)
}

func softplus(t float64) float64 {
	if t > 0 {
		return t + math.Log1p(math.Exp(-t))
	}
	return math.Log1p(math.Exp(t))
}

// Predict returns P(y=1) for one row.
func (m *Model) Predict(x []float64) float64 {
	eta := m.Intercept
	for f, w := range m.Weights {
		eta += w * x[f]
	}
	return sigmoid(eta)
}

// PredictRows returns P(y=1) for the given rows of x (all when rows is nil).
func (m *Model) PredictRows(x []float64, rows []int) []float64 {
	d := len(m.Weights)
	if rows == nil {
		rows = make([]int, len(x)/d)
		for i := range rows {
			rows[i] = i
		}
	}
	out := make([]float64, len(rows))
	for k, i := range rows {
		out[k] = m.Predict(x[i*d : (i+1)*d])
	}
	return out
}
