package linkage

// Scores are pairwise linkage quality figures against known truth.
type Scores struct {
	Records        int     `json:"records"`
	TruePairs      int     `json:"true_pairs"`
	PredictedPairs int     `json:"predicted_pairs"`
	CorrectPairs   int     `json:"correct_pairs"`
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
}

// Evaluate scores predicted pairs against truth labels: records i and j are a
// true pair when label[i] == label[j] != "". A record with an empty label is
// known to match nothing. Predicted pairs are deduplicated; precision is 1 and
// recall is 1 when their denominators are zero, so that an empty problem is not
// reported as a failure.
func Evaluate(predicted [][2]int, label []string) Scores {
	s := Scores{Records: len(label)}
	size := map[string]int{}
	for _, l := range label {
		if l != "" {
			size[l]++
		}
	}
	for _, n := range size {
		s.TruePairs += n * (n - 1) / 2
	}
	seen := make(map[[2]int]bool, len(predicted))
	for _, p := range predicted {
		a, b := p[0], p[1]
		if a > b {
			a, b = b, a
		}
		if a == b || seen[[2]int{a, b}] {
			continue
		}
		seen[[2]int{a, b}] = true
		s.PredictedPairs++
		if label[a] != "" && label[a] == label[b] {
			s.CorrectPairs++
		}
	}
	s.Precision, s.Recall = 1, 1
	if s.PredictedPairs > 0 {
		s.Precision = float64(s.CorrectPairs) / float64(s.PredictedPairs)
	}
	if s.TruePairs > 0 {
		s.Recall = float64(s.CorrectPairs) / float64(s.TruePairs)
	}
	if s.Precision+s.Recall > 0 {
		s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
	}
	return s
}
