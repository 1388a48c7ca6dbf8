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
	s.Precision, s.Recall, s.F1 = prf(s.CorrectPairs, s.PredictedPairs, s.TruePairs)
	return s
}

// prf: precision and recall are 1 when their denominators are zero, so that
// an empty problem is not reported as a failure.
func prf(correct, predicted, truth int) (p, r, f1 float64) {
	p, r = 1, 1
	if predicted > 0 {
		p = float64(correct) / float64(predicted)
	}
	if truth > 0 {
		r = float64(correct) / float64(truth)
	}
	if p+r > 0 {
		f1 = 2 * p * r / (p + r)
	}
	return p, r, f1
}

// ClusterScores judge the merged profiles rather than the pairs: a merged
// profile (an entity of two or more records) is right only when it holds
// exactly the records of one true entity, no more, no fewer. Pair scores
// forgive a profile that swallowed one stranger or missed one record; a
// person looking at the profile does not.
type ClusterScores struct {
	// TrueClusters: true entities with two or more records.
	TrueClusters int `json:"true_clusters"`
	// PredictedClusters: predicted entities with two or more records.
	PredictedClusters int     `json:"predicted_clusters"`
	ExactClusters     int     `json:"exact_clusters"`
	Precision         float64 `json:"precision"`
	Recall            float64 `json:"recall"`
	F1                float64 `json:"f1"`
}

// EvaluateClusters scores predicted entities (lists of record indexes, as
// Result.Entities) against truth labels as Evaluate does. Precision and
// recall are 1 when their denominators are zero.
func EvaluateClusters(entities [][]int, label []string) ClusterScores {
	var s ClusterScores
	size := map[string]int{}
	for _, l := range label {
		if l != "" {
			size[l]++
		}
	}
	for _, n := range size {
		if n > 1 {
			s.TrueClusters++
		}
	}
	for _, e := range entities {
		if len(e) < 2 {
			continue
		}
		s.PredictedClusters++
		l := label[e[0]]
		exact := l != "" && size[l] == len(e)
		for _, i := range e[1:] {
			if label[i] != l {
				exact = false
				break
			}
		}
		if exact {
			s.ExactClusters++
		}
	}
	s.Precision, s.Recall, s.F1 = prf(s.ExactClusters, s.PredictedClusters, s.TrueClusters)
	return s
}
