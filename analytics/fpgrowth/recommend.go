package fpgrowth

import (
	"fmt"
	"sort"
	"strings"
)

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
	recs, _ := RecommendWhy(rules, history, k)
	return recs
}

// RecommendWhy is Recommend that also says, when it recommends nothing, why:
// no history, no rule whose antecedent the history holds, only rules no
// better than chance, or every suggested item already owned.
func RecommendWhy(rules []Rule, history []string, k int) ([]Recommendation, string) {
	recs, why := RecommendReason(rules, history, k)
	return recs, why.Text
}

// Reason is why nothing is recommended: a code and its parameters (so the
// console can say it in its own language, issue 13) and the English
// sentence. The zero Reason means there are recommendations.
type Reason struct {
	Code   string         // ReasonNoHistory ... ReasonNoRule
	Params map[string]any // n (a rule count), items and more (ReasonNoRule)
	Text   string
}

// The codes of a Reason.
const (
	ReasonNoHistory = "no_history" // no purchased products to start from
	ReasonOwnedOne  = "owned_one"  // the one matching rule's item is owned
	ReasonOwnedMany = "owned_many" // every item of the n matching rules is owned
	ReasonWeakOne   = "weak_one"   // the one matching rule has lift ≤ 1
	ReasonWeakMany  = "weak_many"  // the n matching rules have lift ≤ 1
	ReasonNoRule    = "no_rule"    // no rule starts from the items bought
)

// RecommendReason is RecommendWhy with the reason as a code and its
// parameters beside the English sentence.
func RecommendReason(rules []Rule, history []string, k int) ([]Recommendation, Reason) {
	if len(history) == 0 {
		return nil, Reason{ReasonNoHistory, map[string]any{}, "no purchased products to start from"}
	}
	var fired, weak, owned int
	have := make(map[string]bool, len(history))
	for _, h := range history {
		have[h] = true
	}
	best := map[string]Recommendation{}
	for _, r := range rules {
		if len(r.Antecedent) == 0 {
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
		if r.Lift <= 1 {
			weak++
			continue
		}
		fired++
		for _, c := range r.Consequent {
			if have[c] {
				owned++
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
	switch {
	case len(out) > 0:
		return out, Reason{}
	case fired > 0:
		if fired == 1 {
			return nil, Reason{ReasonOwnedOne, map[string]any{}, "already bought what the one matching rule suggests"}
		}
		return nil, Reason{ReasonOwnedMany, map[string]any{"n": fired}, fmt.Sprintf("already bought every product the %d matching rules suggest", fired)}
	case weak == 1:
		return nil, Reason{ReasonWeakOne, map[string]any{}, "the one matching rule predicts no better than chance (lift ≤ 1)"}
	case weak > 1:
		return nil, Reason{ReasonWeakMany, map[string]any{"n": weak}, fmt.Sprintf("the %d matching rules predict no better than chance (lift ≤ 1)", weak)}
	}
	items, more := summarise(have)
	text := strings.Join(items, ", ")
	if more > 0 {
		text += fmt.Sprintf(", and %d more", more)
	}
	return nil, Reason{ReasonNoRule, map[string]any{"items": items, "more": more}, "no rule starts from what was bought (" + text + ")"}
}

// summarise is the first five items bought, in order, and how many more.
func summarise(have map[string]bool) ([]string, int) {
	items := make([]string, 0, len(have))
	for it := range have {
		items = append(items, it)
	}
	sort.Strings(items)
	if len(items) > 5 {
		return items[:5], len(items) - 5
	}
	return items, 0
}
