package logit_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/analytics/logit"
)

// Hanley & McNeil's (1982) worked example: A = 0.893 on 51 abnormal and 58
// normal images has a standard error of 0.032 (0.0325 unrounded).
func TestAUCIntervalHanleyMcNeil(t *testing.T) {
	lo, hi := logit.AUCInterval(0.893, 51, 58)
	if se := (hi - lo) / (2 * 1.96); math.Abs(se-0.032) > 0.0006 {
		t.Errorf("standard error %.4f, want 0.032", se)
	}
}

func TestBrierAndCalibrationError(t *testing.T) {
	p := []float64{0.1, 0.1, 0.9, 0.9}
	y := []float64{0, 0, 1, 0}
	if b := logit.Brier(p, y); math.Abs(b-(0.01+0.01+0.01+0.81)/4) > 1e-12 {
		t.Errorf("Brier %v", b)
	}
	// Bins: 0.1 → observed 0, 0.9 → observed 0.5: gaps 0.1 and 0.4.
	if e := logit.CalibrationError(logit.Calibration(p, y, 10)); math.Abs(e-0.25) > 1e-12 {
		t.Errorf("calibration error %v, want 0.25", e)
	}
}

// Labels drawn independently of the features: the held-out AUC must be
// about 0.5 with an interval containing it, while the same features with
// labels that depend on them give an interval well above 0.5.
func TestEvaluateNullAndSignal(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	n, d := 2000, 4
	x := make([]float64, n*d)
	yNull := make([]float64, n)
	ySig := make([]float64, n)
	for i := range n {
		for f := range d {
			x[i*d+f] = rng.NormFloat64()
		}
		if rng.Float64() < 0.3 {
			yNull[i] = 1
		}
		if rng.Float64() < 1/(1+math.Exp(-(x[i*d]-1))) {
			ySig[i] = 1
		}
	}
	names := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		name        string
		y           []float64
		informative bool
	}{{"null", yNull, false}, {"signal", ySig, true}} {
		xc := append([]float64(nil), x...)
		rep, err := logit.TrainEvaluate(xc, n, d, tc.y, names, logit.EvalOptions{Options: logit.Options{Standardize: true}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: AUC %.3f [%.3f, %.3f], Brier %.4f (base rate %.3f → %.4f), calibration error %.3f",
			tc.name, rep.AUC, rep.AUCLow, rep.AUCHigh, rep.Brier, rep.BaseRate, rep.BaseRate*(1-rep.BaseRate), rep.CalError)
		if rep.Informative != tc.informative || (rep.AUCLow > 0.5) != tc.informative || !strings.HasPrefix(rep.Verdict, map[bool]string{true: "informative", false: "not informative"}[tc.informative]) {
			t.Errorf("%s: AUC %.3f [%.3f, %.3f]: %s; want informative %v", tc.name, rep.AUC, rep.AUCLow, rep.AUCHigh, rep.Verdict, tc.informative)
		}
		if tc.name == "null" && math.Abs(rep.AUC-0.5) > 0.06 {
			t.Errorf("null AUC %.3f, want ≈ 0.5", rep.AUC)
		}
		if rep.CalError > 0.06 {
			t.Errorf("%s: calibration error %.3f: a logistic fit on its own population should be calibrated", tc.name, rep.CalError)
		}
	}
}
