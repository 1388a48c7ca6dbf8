package logit

import (
	"math"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/internal/colstat"
	"gonum.org/v1/gonum/mat"
)

// Linear is a fitted (ridge) linear regression y ≈ Intercept + w·x.
type Linear struct {
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
	R2        float64   `json:"r2"`   // on the fitting data
	RMSE      float64   `json:"rmse"` // on the fitting data
}

// FitLinear minimises Σ (y − b − w·x)² + λ‖w‖² (λ ≥ 0; the intercept is not
// penalised) by solving the normal equations of the centred data with a
// Cholesky factorisation. With λ = 0 and collinear features the system is
// singular and the fit is refused; a small λ resolves it.
func FitLinear(x []float64, n, d int, y []float64, lambda float64) (*Linear, error) {
	if err := checkXY(x, n, d, y); err != nil {
		return nil, err
	}
	if !(lambda >= 0) || math.IsInf(lambda, 0) {
		return nil, portrait.Errorf(portrait.EINVALID, "ridge penalty must be ≥ 0, got %v", lambda)
	}
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, portrait.Errorf(portrait.EINVALID, "target of row %d is %v", i+1, v)
		}
	}
	mx, _ := colstat.MeanSD(x, n, d)
	var my float64
	for _, v := range y {
		my += v
	}
	my /= float64(n)
	xc := mat.NewDense(n, d, nil)
	yc := mat.NewVecDense(n, nil)
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			xc.Set(i, f, x[i*d+f]-mx[f])
		}
		yc.SetVec(i, y[i]-my)
	}
	var a mat.SymDense
	a.SymOuterK(1, xc.T())
	for f := 0; f < d; f++ {
		a.SetSym(f, f, a.At(f, f)+lambda)
	}
	var rhs mat.VecDense
	rhs.MulVec(xc.T(), yc)
	var ch mat.Cholesky
	if ok := ch.Factorize(&a); !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "features are collinear or constant; add a ridge penalty or drop features")
	}
	var w mat.VecDense
	if err := ch.SolveVecTo(&w, &rhs); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "linear regression is ill-conditioned: %v", err)
	}
	l := &Linear{Weights: make([]float64, d), Intercept: my}
	for f := 0; f < d; f++ {
		l.Weights[f] = w.AtVec(f)
		l.Intercept -= l.Weights[f] * mx[f]
	}
	var sse, sst float64
	for i := 0; i < n; i++ {
		r := y[i] - l.Predict(x[i*d:(i+1)*d])
		sse += r * r
		sst += (y[i] - my) * (y[i] - my)
	}
	l.RMSE = math.Sqrt(sse / float64(n))
	if sst > 0 {
		l.R2 = 1 - sse/sst
	}
	return l, nil
}

// Predict returns the fitted value for one row.
func (l *Linear) Predict(x []float64) float64 {
	v := l.Intercept
	for f, w := range l.Weights {
		v += w * x[f]
	}
	return v
}
