package fpgrowth

import "sort"

// Recommendation is a product suggested by the rules a history triggers.
type Recommendation struct {
	Item       string  `json:"item"`
	Confidence float64 `json:"confidence"`
	Lift       float64 `json:"lift"`
	Because    Rule    `json:"because"`
}

// Recommend returns up to k cross-sell items for a customer whose history
// holds the given items: every rule whose antecedent the history contains
// fires, items already owned are skipped, and each item keeps its strongest
// rule (confidence, then lift). Rules with lift ≤ 1 are ignored: they predict
// the item no better than its base rate, which makes them poor suggestions.
func Recommend(rules []Rule, history []string, k int) []Recommendation {
	have := make(map[string]bool, len(history))
	for _, h := range history {
		have[h] = true
	}
	best := map[string]Recommendation{}
	for _, r := range rules {
		if r.Lift <= 1 || len(r.Antecedent) == 0 {
			continue
		}
		fires := true
		for _, a := range r.Antecedent {
			if !have[a] {
				fires = false
				break
			}
		}
		if !fires {
			continue
		}
		for _, c := range r.Consequent {
			if have[c] {
				continue
			}
			cur, ok := best[c]
			if !ok || r.Confidence > cur.Confidence || (r.Confidence == cur.Confidence && r.Lift > cur.Lift) {
				best[c] = Recommendation{Item: c, Confidence: r.Confidence, Lift: r.Lift, Because: r}
			}
		}
	}
	out := make([]Recommendation, 0, len(best))
	for _, v := range best {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Confidence != b.Confidence {
			return a.Confidence > b.Confidence
		}
		if a.Lift != b.Lift {
			return a.Lift > b.Lift
		}
		return a.Item < b.Item
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out
}
