package clv

import (
	"math"

	"github.com/portrait-cdp/portrait"
	"gonum.org/v1/gonum/mathext"
)

// GammaGamma holds the fitted spend model: a customer's mean transaction
// value is Gamma(P, ν) with ν ~ Gamma(Q, Gamma) across customers.
type GammaGamma struct {
	P      float64 `json:"p"`
	Q      float64 `json:"q"`
	Gamma  float64 `json:"gamma"`
	LogLik float64 `json:"loglik"`
	N      int     `json:"n"` // repeat buyers fitted
}

// FitGammaGamma fits the spend model on the customers with at least one repeat
// purchase and a positive mean spend; the others carry no information on
// spend variation. The model assumes spend is independent of frequency;
// callers should check that the correlation is weak.
func FitGammaGamma(cs []Customer, opt FitOptions) (*GammaGamma, error) {
	if err := validate(cs); err != nil {
		return nil, err
	}
	var xs, ms []float64
	for _, c := range cs {
		if c.X > 0 && c.Monetary > 0 {
			xs = append(xs, c.X)
			ms = append(ms, c.Monetary)
		}
	}
	if len(xs) < 2 {
		return nil, portrait.Errorf(portrait.EINVALID, "Gamma-Gamma needs at least two customers with repeat purchases of positive value, found %d", len(xs))
	}
	// Spend in a unit where the mean is 1 keeps the start point (1,1,1)
	// sensible for any currency; only gamma carries the unit.
	var mean float64
	for _, m := range ms {
		mean += m
	}
	mean /= float64(len(ms))
	scaled := make([]float64, len(ms))
	for i, m := range ms {
		scaled[i] = m / mean
	}
	n := float64(len(xs))
	f := func(grad, theta []float64) float64 {
		ll, g := ggLogLik(xs, scaled, math.Exp(theta[0]), math.Exp(theta[1]), math.Exp(theta[2]), grad != nil)
		obj := -ll / n
		for i, t := range theta {
			obj += opt.Penalizer * math.Exp(2*t)
			if grad != nil {
				grad[i] = -g[i]*math.Exp(t)/n + 2*opt.Penalizer*math.Exp(2*t)
			}
		}
		return obj
	}
	theta, err := minimise(f, []float64{0, 0, 0})
	if err != nil {
		return nil, err
	}
	m := &GammaGamma{P: math.Exp(theta[0]), Q: math.Exp(theta[1]), Gamma: math.Exp(theta[2]) * mean, N: len(xs)}
	m.LogLik, _ = ggLogLik(xs, ms, m.P, m.Q, m.Gamma, false)
	if !finite(m.LogLik) {
		return nil, portrait.Errorf(portrait.EINVALID, "Gamma-Gamma fit did not reach finite parameters")
	}
	return m, nil
}

// ggLogLik is the Gamma-Gamma log-likelihood of mean spends m over x repeat
// purchases, with its gradient in (p, q, gamma):
//
//	ln L = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(xm+γ)
func ggLogLik(xs, ms []float64, p, q, v float64, wantGrad bool) (float64, [3]float64) {
	var ll float64
	var g [3]float64
	lgQ, _ := math.Lgamma(q)
	lnV := math.Log(v)
	var dgQ float64
	if wantGrad {
		dgQ = mathext.Digamma(q)
	}
	for i, x := range xs {
		m := ms[i]
		px := p * x
		lgPXQ, _ := math.Lgamma(px + q)
		lgPX, _ := math.Lgamma(px)
		lnM, lnX, lnXMV := math.Log(m), math.Log(x), math.Log(x*m+v)
		ll += lgPXQ - lgPX - lgQ + q*lnV + (px-1)*lnM + px*lnX - (px+q)*lnXMV
		if wantGrad {
			dgPXQ := mathext.Digamma(px + q)
			g[0] += x * (dgPXQ - mathext.Digamma(px) + lnM + lnX - lnXMV)
			g[1] += dgPXQ - dgQ + lnV - lnXMV
			g[2] += q/v - (px+q)/(x*m+v)
		}
	}
	return ll, g
}

// ExpectedSpend is the expected mean transaction value of a customer with x
// repeat purchases averaging m, shrunk towards the population mean
// (FHL 2005 "RFM and CLV", eq. 5). With x = 0 it is the population mean
// p·γ/(q−1), defined for q > 1.
func (g *GammaGamma) ExpectedSpend(x, m float64) float64 {
	if x <= 0 || !(m > 0) {
		if g.Q <= 1 {
			return math.NaN()
		}
		return g.P * g.Gamma / (g.Q - 1)
	}
	return g.P * (g.Gamma + x*m) / (g.P*x + g.Q - 1)
}
