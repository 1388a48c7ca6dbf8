package logit

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/portrait-cdp/portrait"
)

// AUC is the area under the ROC curve: the probability that a random
// positive scores above a random negative, ties counting one half
// (Mann-Whitney U with average ranks).
func AUC(score, y []float64) (float64, error) {
	if len(score) != len(y) {
		return 0, portrait.Errorf(portrait.EINVALID, "%d scores for %d labels", len(score), len(y))
	}
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var rankSum float64
	var pos int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if y[idx[k]] == 1 {
				rankSum += avg
				pos++
			}
		}
		i = j
	}
	neg := len(y) - pos
	if pos == 0 || neg == 0 {
		return 0, portrait.Errorf(portrait.EINVALID, "AUC needs both classes; got %d positive and %d negative", pos, neg)
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg)), nil
}

// Accuracy is the share of rows where p ≥ threshold agrees with y.
func Accuracy(p, y []float64, threshold float64) float64 {
	if len(p) == 0 {
		return math.NaN()
	}
	ok := 0
	for i := range p {
		if (p[i] >= threshold) == (y[i] == 1) {
			ok++
		}
	}
	return float64(ok) / float64(len(p))
}

// LogLoss is the mean negative log-likelihood, with p clipped away from 0
// and 1 so that one confident mistake cannot make it infinite.
func LogLoss(p, y []float64) float64 {
	var s float64
	for i := range p {
		q := math.Min(math.Max(p[i], 1e-15), 1-1e-15)
		if y[i] == 1 {
			s -= math.Log(q)
		} else {
			s -= math.Log(1 - q)
		}
	}
	return s / float64(len(p))
}

// Brier is the mean squared difference between predicted probability and
// outcome (0 is perfect; predicting the base rate b for everyone scores
// b(1−b)).
func Brier(p, y []float64) float64 {
	var s float64
	for i := range p {
		s += (p[i] - y[i]) * (p[i] - y[i])
	}
	return s / float64(len(p))
}

// AUCInterval is an approximate 95% confidence interval of an AUC measured
// on pos positives and neg negatives, from Hanley & McNeil's (1982) standard
// error. An interval that contains 0.5 means the ranking may be chance.
func AUCInterval(auc float64, pos, neg int) (lo, hi float64) {
	if pos == 0 || neg == 0 {
		return 0, 1
	}
	q1, q2 := auc/(2-auc), 2*auc*auc/(1+auc)
	v := (auc*(1-auc) + float64(pos-1)*(q1-auc*auc) + float64(neg-1)*(q2-auc*auc)) / (float64(pos) * float64(neg))
	se := math.Sqrt(max(v, 0))
	return max(0, auc-1.96*se), min(1, auc+1.96*se)
}

// CalibrationError is the expected calibration error of a table: the
// count-weighted mean gap between mean prediction and observed rate.
func CalibrationError(bins []Bin) float64 {
	var s float64
	var n int
	for _, b := range bins {
		s += float64(b.Count) * math.Abs(b.MeanPredicted-b.ObservedRate)
		n += b.Count
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// Bin is one row of a calibration table.
type Bin struct {
	Lo            float64 `json:"lo"`
	Hi            float64 `json:"hi"`
	Count         int     `json:"count"`
	MeanPredicted float64 `json:"mean_predicted"`
	ObservedRate  float64 `json:"observed_rate"`
}

// Calibration groups predictions into equal-width probability bins and
// compares the mean prediction with the observed positive rate in each; a
// calibrated model has them equal. Empty bins are left out.
func Calibration(p, y []float64, bins int) []Bin {
	if bins <= 0 {
		bins = 10
	}
	acc := make([]Bin, bins)
	for b := range acc {
		acc[b].Lo, acc[b].Hi = float64(b)/float64(bins), float64(b+1)/float64(bins)
	}
	for i, v := range p {
		b := min(int(v*float64(bins)), bins-1)
		b = max(b, 0)
		acc[b].Count++
		acc[b].MeanPredicted += v
		acc[b].ObservedRate += y[i]
	}
	var out []Bin
	for _, b := range acc {
		if b.Count > 0 {
			b.MeanPredicted /= float64(b.Count)
			b.ObservedRate /= float64(b.Count)
			out = append(out, b)
		}
	}
	return out
}

// StratifiedSplit shuffles the rows of each class with a seeded generator and
// puts round(testFrac × class size) of each class into the test set, so both
// sets keep the class balance of the whole. Both index lists are sorted.
func StratifiedSplit(y []float64, testFrac float64, seed uint64) (train, test []int, err error) {
	if !(testFrac > 0 && testFrac < 1) {
		return nil, nil, portrait.Errorf(portrait.EINVALID, "test fraction must be in (0, 1), got %v", testFrac)
	}
	rng := rand.New(rand.NewPCG(seed, 0x57a7))
	var classes [2][]int
	for i, v := range y {
		c := 0
		if v == 1 {
			c = 1
		}
		classes[c] = append(classes[c], i)
	}
	for _, rows := range classes {
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		nt := int(math.Round(testFrac * float64(len(rows))))
		if len(rows) >= 2 {
			nt = min(max(nt, 1), len(rows)-1) // each class on both sides
		}
		test = append(test, rows[:nt]...)
		train = append(train, rows[nt:]...)
	}
	if len(train) == 0 || len(test) == 0 {
		return nil, nil, portrait.Errorf(portrait.EINVALID, "too few rows (%d) to split into training and test sets", len(y))
	}
	sort.Ints(train)
	sort.Ints(test)
	return train, test, nil
}
