package fpgrowth_test

import (
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
	"github.com/portrait-cdp/portrait/analytics/internal/apriori"
	"github.com/portrait-cdp/portrait/analytics/internal/shareddata"
	"pgregory.net/rapid"
)

func groceries(t testing.TB) [][]string {
	t.Helper()
	f, err := os.Open(shareddata.Path(t, "groceries/groceries.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := dataset.ReadBaskets(f, ',')
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 9835 {
		t.Fatalf("%d baskets, want 9835", len(b))
	}
	return b
}

func byLength(rules []fpgrowth.Rule) map[int]int {
	m := map[int]int{}
	for _, r := range rules {
		m[r.Len()]++
	}
	return m
}

func TestGroceriesReference(t *testing.T) {
	b := groceries(t)
	res, err := fpgrowth.Mine(b, fpgrowth.Options{MinSupport: 0.006, MinConfidence: 0.25, MinLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Rules); got != 463 {
		t.Errorf("%d rules, want 463", got)
	}
	if got, want := byLength(res.Rules), map[int]int{2: 150, 3: 297, 4: 16}; !reflect.DeepEqual(got, want) {
		t.Errorf("rules by length %v, want %v", got, want)
	}
	var found bool
	for _, r := range res.Rules {
		if reflect.DeepEqual(r.Antecedent, []string{"pot plants"}) && reflect.DeepEqual(r.Consequent, []string{"whole milk"}) {
			found = true
			if r.Count != 68 || math.Abs(r.Support-0.006914) > 5e-7 || math.Abs(r.Confidence-0.4) > 1e-9 || math.Abs(r.Lift-1.5655) > 5e-5 {
				t.Errorf("{pot plants} => {whole milk}: %+v, want count 68, support 0.006914, confidence 0.4, lift 1.5655", r)
			}
		}
	}
	if !found {
		t.Error("rule {pot plants} => {whole milk} missing")
	}

	res, err = fpgrowth.Mine(b, fpgrowth.Options{MinSupport: 0.001, MinConfidence: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Rules); got != 410 {
		t.Errorf("support 0.001, confidence 0.8: %d rules, want 410", got)
	}
	// Sorted by confidence: the first rule is a certain one.
	if res.Rules[0].Confidence != 1 {
		t.Errorf("top rule %v has confidence %v, want 1", res.Rules[0], res.Rules[0].Confidence)
	}
}

// FP-Growth and the level-wise Apriori share nothing but the encoding, so
// agreement on every itemset and count checks the tree mining.
func TestDatasetGroceriesAgreesWithApriori(t *testing.T) {
	b := groceries(t)
	for _, sup := range []float64{0.01, 0.003} {
		e, err := fpgrowth.Encode(b, sup)
		if err != nil {
			t.Fatal(err)
		}
		fp := e.Frequent(10, 0)
		ap := apriori.Frequent(e, 10)
		if len(fp) == 0 || !reflect.DeepEqual(fp, ap) {
			t.Fatalf("support %v: FP-Growth found %d itemsets, Apriori %d; they must agree exactly", sup, len(fp), len(ap))
		}
		// Serial mining gives the same result as parallel.
		if one := e.Frequent(10, 1); !reflect.DeepEqual(one, fp) {
			t.Fatalf("support %v: one worker differs from many", sup)
		}
	}
}

// On random small data the mined itemsets equal a brute-force count over
// every subset of the item universe.
func TestPropertyBruteForce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		items := []string{"a", "b", "c", "d", "e", "f", "g"}
		baskets := rapid.SliceOfN(rapid.SliceOfN(rapid.SampledFrom(items), 0, 7), 1, 40).Draw(rt, "baskets")
		sup := rapid.Float64Range(0.01, 1).Draw(rt, "support")
		maxLen := rapid.IntRange(1, 7).Draw(rt, "maxLen")
		e, err := fpgrowth.Encode(baskets, sup)
		if err != nil {
			rt.Fatal(err)
		}
		got := map[string]int{}
		for _, s := range e.Decode(e.Frequent(maxLen, 2)) {
			got[setKey(s.Items)] = s.Count
		}
		want := map[string]int{}
		for mask := 1; mask < 1<<len(items); mask++ {
			var set []string
			for i, it := range items {
				if mask&(1<<i) != 0 {
					set = append(set, it)
				}
			}
			if len(set) > maxLen {
				continue
			}
			c := 0
			for _, b := range baskets {
				if containsAll(b, set) {
					c++
				}
			}
			if c >= e.MinCount && float64(c)/float64(len(baskets)) >= sup-1e-12 {
				want[setKey(set)] = c
			}
		}
		if !reflect.DeepEqual(got, want) {
			rt.Fatalf("mined %v, brute force %v", got, want)
		}
	})
}

func setKey(s []string) string {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	k := ""
	for _, x := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		if m[x] {
			k += x
		}
	}
	return k
}

func containsAll(basket, set []string) bool {
	for _, s := range set {
		ok := false
		for _, b := range basket {
			if b == s {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func TestRuleMath(t *testing.T) {
	// 10 baskets: a in 5, b in 4, {a,b} in 3 → conf(a⇒b)=0.6, lift=0.6/0.4=1.5.
	baskets := [][]string{{"a", "b"}, {"a", "b"}, {"a", "b"}, {"a"}, {"a"}, {"b"}, {}, {}, {"c"}, {"c", "c"}}
	res, err := fpgrowth.Mine(baskets, fpgrowth.Options{MinSupport: 0.2, MinConfidence: 0.5, MinLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []fpgrowth.Rule{
		{Antecedent: []string{"b"}, Consequent: []string{"a"}, Support: 0.3, Confidence: 0.75, Lift: 1.5, Count: 3},
		{Antecedent: []string{"a"}, Consequent: []string{"b"}, Support: 0.3, Confidence: 0.6, Lift: 1.5, Count: 3},
	}
	if len(res.Rules) != 2 {
		t.Fatalf("rules %+v, want %+v", res.Rules, want)
	}
	for i := range want {
		g := res.Rules[i]
		if !reflect.DeepEqual(g.Antecedent, want[i].Antecedent) || !reflect.DeepEqual(g.Consequent, want[i].Consequent) ||
			g.Count != want[i].Count || math.Abs(g.Confidence-want[i].Confidence) > 1e-12 || math.Abs(g.Lift-want[i].Lift) > 1e-12 || math.Abs(g.Support-want[i].Support) > 1e-12 {
			t.Errorf("rule %d = %+v, want %+v", i, g, want[i])
		}
	}
	// {c} occurs in 2 baskets (the duplicate counts once).
	for _, s := range res.Itemsets {
		if reflect.DeepEqual(s.Items, []string{"c"}) && s.Count != 2 {
			t.Errorf("count of {c} = %d, want 2", s.Count)
		}
	}
}

func TestRecommend(t *testing.T) {
	b := groceries(t)
	res, err := fpgrowth.Mine(b, fpgrowth.Options{MinSupport: 0.006, MinConfidence: 0.25, MinLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	recs := fpgrowth.Recommend(res.Rules, []string{"pot plants"}, 3)
	if len(recs) == 0 || recs[0].Item != "whole milk" || math.Abs(recs[0].Confidence-0.4) > 1e-9 {
		t.Fatalf("recommendations for pot plants: %+v, want whole milk first", recs)
	}
	for _, r := range fpgrowth.Recommend(res.Rules, []string{"whole milk", "yogurt", "rolls/buns"}, 0) {
		if r.Item == "whole milk" || r.Item == "yogurt" || r.Item == "rolls/buns" {
			t.Errorf("recommended an item already owned: %+v", r)
		}
	}
	if got := fpgrowth.Recommend(res.Rules, nil, 5); len(got) != 0 {
		t.Errorf("empty history gave %+v", got)
	}
}

func TestDegenerate(t *testing.T) {
	bad := []struct {
		name    string
		baskets [][]string
		opt     fpgrowth.Options
	}{
		{"no baskets", nil, fpgrowth.Options{MinSupport: 0.1}},
		{"zero support", [][]string{{"a"}}, fpgrowth.Options{MinSupport: 0}},
		{"NaN support", [][]string{{"a"}}, fpgrowth.Options{MinSupport: math.NaN()}},
		{"confidence > 1", [][]string{{"a"}}, fpgrowth.Options{MinSupport: 0.1, MinConfidence: 2}},
		{"min len > max len", [][]string{{"a"}}, fpgrowth.Options{MinSupport: 0.1, MinLen: 3, MaxLen: 2}},
	}
	for _, c := range bad {
		if _, err := fpgrowth.Mine(c.baskets, c.opt); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", c.name, err)
		}
	}
	// Only empty baskets: a defined, empty result.
	res, err := fpgrowth.Mine([][]string{{}, {}, nil}, fpgrowth.Options{MinSupport: 0.5})
	if err != nil || res.Transactions != 3 || len(res.Itemsets) != 0 || len(res.Rules) != 0 {
		t.Errorf("empty baskets: %+v, %v", res, err)
	}
}

// A customer without recommendations is told why, and each reason comes
// from the case it names.
func TestRecommendWhy(t *testing.T) {
	rules := []fpgrowth.Rule{
		{Antecedent: []string{"phone"}, Consequent: []string{"earbuds"}, Support: 0.1, Confidence: 0.5, Lift: 2},
		{Antecedent: []string{"book"}, Consequent: []string{"coffee"}, Support: 0.05, Confidence: 0.2, Lift: 0.9},
	}
	for _, c := range []struct {
		history []string
		item    string
		reason  string
		code    string
	}{
		{[]string{"phone"}, "earbuds", "", ""},
		{nil, "", "no purchased products", fpgrowth.ReasonNoHistory},
		{[]string{"phone", "earbuds"}, "", "already bought what the one matching rule suggests", fpgrowth.ReasonOwnedOne},
		{[]string{"book"}, "", "no better than chance", fpgrowth.ReasonWeakOne},
		{[]string{"yoga mat"}, "", "no rule starts from what was bought (yoga mat)", fpgrowth.ReasonNoRule},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "", "(a, b, c, d, e, and 2 more)", fpgrowth.ReasonNoRule},
	} {
		recs, why := fpgrowth.RecommendWhy(rules, c.history, 3)
		// The same reason as a code, for the console's words (issue 13).
		if _, r := fpgrowth.RecommendReason(rules, c.history, 3); r.Code != c.code || r.Text != why {
			t.Errorf("%v: reason %+v, want code %q and text %q", c.history, r, c.code, why)
		}
		switch {
		case c.item != "" && (len(recs) != 1 || recs[0].Item != c.item || recs[0].Because.Support != 0.1 || why != ""):
			t.Errorf("%v: %+v %q", c.history, recs, why)
		case c.item == "" && (len(recs) != 0 || !strings.Contains(why, c.reason)):
			t.Errorf("%v: %+v, reason %q, want %q", c.history, recs, why, c.reason)
		}
	}
}
