package logit

import (
	"fmt"
	"math"
	"sort"

	"github.com/portrait-cdp/portrait"
)

// EvalOptions set up a train/validation run.
type EvalOptions struct {
	Options
	TestFraction float64 // 0.2 when zero
	Seed         uint64
	Bins         int // calibration bins, 10 when zero
	// Impute lists the columns whose NaN cells are filled with the training
	// mean (nil: every column). Means come from training rows only, so the
	// test set does not leak into the model.
	Impute []bool
}

// FeatureWeight is one reported coefficient.
type FeatureWeight struct {
	Feature   string  `json:"feature"`
	Weight    float64 `json:"weight"`     // log-odds per input unit
	StdWeight float64 `json:"std_weight"` // log-odds per standard deviation
}

// Report is the outcome of TrainEvaluate.
type Report struct {
	AUC         float64         `json:"auc"`
	Accuracy    float64         `json:"accuracy"`
	AUCLow      float64         `json:"auc_low"`  // 95% interval (Hanley & McNeil)
	AUCHigh     float64         `json:"auc_high"` //
	LogLoss     float64         `json:"log_loss"`
	Brier       float64         `json:"brier"`
	CalError    float64         `json:"calibration_error"` // expected calibration error of the table
	BaseRate    float64         `json:"base_rate"`         // positive share in the test set
	NTrain      int             `json:"n_train"`
	NTest       int             `json:"n_test"`
	Calibration []Bin           `json:"calibration"`
	Weights     []FeatureWeight `json:"weights"` // by |std weight|, largest first
	// Informative is true when the held-out AUC's 95% interval lies above
	// 0.5 and the Brier score beats predicting the base rate for everyone:
	// either alone can flatter a model. Verdict says it in words.
	Informative bool   `json:"informative"`
	Verdict     string `json:"verdict"`
	Model       *Model `json:"-"`
}

// TrainEvaluate imputes missing cells, splits the rows 80/20 (stratified,
// seeded), fits on the training rows and reports held-out metrics. x is
// modified in place by the imputation.
func TrainEvaluate(x []float64, n, d int, y []float64, names []string, opt EvalOptions) (*Report, error) {
	if opt.TestFraction == 0 {
		opt.TestFraction = 0.2
	}
	if len(names) != d {
		return nil, portrait.Errorf(portrait.EINVALID, "%d feature names for %d features", len(names), d)
	}
	if len(x) != n*d || len(y) != n {
		return nil, portrait.Errorf(portrait.EINVALID, "data holds %d values and %d targets, not %d × %d", len(x), len(y), n, d)
	}
	train, test, err := StratifiedSplit(y, opt.TestFraction, opt.Seed)
	if err != nil {
		return nil, err
	}
	ImputeMeans(x, n, d, train, opt.Impute)
	xt, yt := gather(x, d, y, train)
	m, err := Fit(xt, len(train), d, yt, opt.Options)
	if err != nil {
		return nil, err
	}
	xv, yv := gather(x, d, y, test)
	p := m.PredictRows(xv, nil)
	auc, err := AUC(p, yv)
	if err != nil {
		return nil, err
	}
	r := &Report{AUC: auc, Accuracy: Accuracy(p, yv, 0.5), LogLoss: LogLoss(p, yv), Brier: Brier(p, yv), NTrain: len(train), NTest: len(test),
		Calibration: Calibration(p, yv, opt.Bins), Model: m}
	r.CalError = CalibrationError(r.Calibration)
	for _, v := range yv {
		r.BaseRate += v
	}
	pos := int(r.BaseRate)
	r.AUCLow, r.AUCHigh = AUCInterval(auc, pos, len(yv)-pos)
	r.BaseRate /= float64(len(yv))
	r.Informative, r.Verdict = verdict(r)
	for f := 0; f < d; f++ {
		r.Weights = append(r.Weights, FeatureWeight{Feature: names[f], Weight: m.Weights[f], StdWeight: m.StdWeights[f]})
	}
	sort.SliceStable(r.Weights, func(a, b int) bool { return math.Abs(r.Weights[a].StdWeight) > math.Abs(r.Weights[b].StdWeight) })
	return r, nil
}

func gather(x []float64, d int, y []float64, rows []int) ([]float64, []float64) {
	xs := make([]float64, 0, len(rows)*d)
	ys := make([]float64, 0, len(rows))
	for _, i := range rows {
		xs = append(xs, x[i*d:(i+1)*d]...)
		ys = append(ys, y[i])
	}
	return xs, ys
}

// ImputeMeans replaces NaN cells of the selected columns (all when cols is
// nil) by the column mean over the given rows (all when rows is nil), and
// returns the means. A column with no value in those rows is filled with 0.
func ImputeMeans(x []float64, n, d int, rows []int, cols []bool) []float64 {
	if rows == nil {
		rows = make([]int, n)
		for i := range rows {
			rows[i] = i
		}
	}
	mean := make([]float64, d)
	cnt := make([]int, d)
	for _, i := range rows {
		for f := 0; f < d; f++ {
			if v := x[i*d+f]; !math.IsNaN(v) {
				mean[f] += v
				cnt[f]++
			}
		}
	}
	for f := range mean {
		if cnt[f] > 0 {
			mean[f] /= float64(cnt[f])
		}
	}
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			if (cols == nil || cols[f]) && math.IsNaN(x[i*d+f]) {
				x[i*d+f] = mean[f]
			}
		}
	}
	return mean
}

func verdict(r *Report) (bool, string) {
	base := r.BaseRate * (1 - r.BaseRate)
	switch {
	case r.AUCHigh < 0.5:
		return false, fmt.Sprintf("not informative: held-out AUC %.3f (95%% interval %.3f–%.3f) is below chance: what it learned does not carry over to new rows; its scores should not be acted on", r.AUC, r.AUCLow, r.AUCHigh)
	case r.AUCLow <= 0.5:
		return false, fmt.Sprintf("not informative: held-out AUC %.3f, whose 95%% interval %.3f–%.3f includes chance (0.5); its scores should not be acted on", r.AUC, r.AUCLow, r.AUCHigh)
	case r.Brier >= base:
		return false, fmt.Sprintf("not informative: it ranks rows (AUC %.3f) but its probabilities (Brier %.4f) are no better than the base rate (%.4f)", r.AUC, r.Brier, base)
	}
	return true, fmt.Sprintf("informative: held-out AUC %.3f (95%% interval %.3f–%.3f), Brier %.4f against %.4f for the base rate", r.AUC, r.AUCLow, r.AUCHigh, r.Brier, base)
}
