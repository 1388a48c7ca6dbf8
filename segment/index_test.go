package segment_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	provinces = []string{"广东省", "浙江省", "北京市", "上海市", "四川省"}
	cities    = []string{"深圳市", "广州市", "杭州市", "成都市", "深圳"}
	tagNames  = []string{"vip", "churn_risk", "new", "high_value"}
	interests = []string{"tea", "travel", "sports", "books"}
)

type gprof struct {
	p *portrait.Profile
	s segment.Summary
}

func genProfile(t *rapid.T, id string) gprof {
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{}}
	set := func(name string, v any) { p.Traits[name] = portrait.Trait{Value: v} }
	if rapid.IntRange(0, 9).Draw(t, "hasAge") > 0 {
		if rapid.IntRange(0, 9).Draw(t, "ageIsString") == 0 {
			set("age", fmt.Sprint(rapid.IntRange(10, 80).Draw(t, "ageS"))) // a trait whose type changed
		} else {
			set("age", float64(rapid.IntRange(10, 80).Draw(t, "age")))
		}
	}
	if rapid.Bool().Draw(t, "hasProv") {
		set("province", rapid.SampledFrom(provinces).Draw(t, "province"))
		set("city", rapid.SampledFrom(cities).Draw(t, "city"))
	}
	if rapid.Bool().Draw(t, "hasVip") {
		set("vip", rapid.Bool().Draw(t, "vip"))
	}
	if rapid.Bool().Draw(t, "hasName") {
		set("name", rapid.StringMatching(`[a-z]{1,4}`).Draw(t, "name")) // many distinct: high cardinality
	}
	if rapid.Bool().Draw(t, "hasInterests") {
		var l []any
		for _, s := range rapid.SliceOfNDistinct(rapid.SampledFrom(interests), 0, 3, rapid.ID[string]).Draw(t, "interests") {
			l = append(l, s)
		}
		set("interests", l)
	}
	for _, tg := range tagNames {
		if rapid.IntRange(0, 2).Draw(t, "tag"+tg) == 0 {
			p.Tags = append(p.Tags, portrait.ProfileTag{Name: tg})
		}
	}
	if rapid.Bool().Draw(t, "email") {
		p.Identifiers = append(p.Identifiers, portrait.Identifier{Type: "email", Value: id + "@x.cn"})
	}
	s := segment.Summary{}
	for _, ev := range []string{"Order Completed", "Added to Cart"} {
		k := rapid.IntRange(0, 5).Draw(t, "n"+ev)
		for i := 0; i < k; i++ {
			ago := time.Duration(rapid.IntRange(0, 60*24).Draw(t, "ago")) * time.Hour
			s.Add(ev, now.Add(-ago), float64(rapid.IntRange(0, 1000).Draw(t, "amount")))
		}
	}
	return gprof{p: p, s: s}
}

// genIndex indexes n random profiles, then changes a quarter of them (new
// values, removals); it returns the index and the profiles as they stand.
func genIndex(t *rapid.T, n int) (*segment.Index, map[string]gprof) {
	ix := segment.NewIndex()
	profs := map[string]gprof{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("p%03d", i)
		g := genProfile(t, id)
		profs[id] = g
		ix.Upsert(g.p, g.s)
	}
	// changes after indexing: new values, removals
	for i := 0; i < n/4; i++ {
		id := fmt.Sprintf("p%03d", rapid.IntRange(0, n-1).Draw(t, "upd"))
		if rapid.IntRange(0, 4).Draw(t, "del") == 0 {
			ix.Remove(id)
			delete(profs, id)
			continue
		}
		g := genProfile(t, id)
		profs[id] = g
		ix.Upsert(g.p, g.s)
	}
	return ix, profs
}

func genLeaf(t *rapid.T) string {
	num := func() int { return rapid.IntRange(0, 90).Draw(t, "num") }
	op := func() string { return rapid.SampledFrom([]string{"==", "!=", "<", "<=", ">", ">="}).Draw(t, "op") }
	switch rapid.IntRange(0, 17).Draw(t, "leaf") {
	case 0:
		return fmt.Sprintf("traits.age %s %d", op(), num())
	case 1:
		lo := num()
		return fmt.Sprintf("traits.age in %d..%d", lo, lo+rapid.IntRange(0, 30).Draw(t, "w"))
	case 2:
		return fmt.Sprintf("traits.province == %q", rapid.SampledFrom(provinces).Draw(t, "p"))
	case 3:
		return fmt.Sprintf("traits.province in [%q, %q]", rapid.SampledFrom(provinces).Draw(t, "p1"), rapid.SampledFrom(provinces).Draw(t, "p2"))
	case 4:
		return fmt.Sprintf("traits.city startsWith %q", rapid.SampledFrom([]string{"深", "深圳", "广", "x"}).Draw(t, "pre"))
	case 5:
		return fmt.Sprintf("traits.name %s %q", op(), rapid.StringMatching(`[a-z]{1,2}`).Draw(t, "s"))
	case 6:
		return fmt.Sprintf("%q in tags", rapid.SampledFrom(tagNames).Draw(t, "tag"))
	case 7:
		return `"email" in identifiers`
	case 8:
		return fmt.Sprintf("%q in traits.interests", rapid.SampledFrom(interests).Draw(t, "i"))
	case 9:
		return fmt.Sprintf("traits.vip == %v", rapid.Bool().Draw(t, "b"))
	case 10:
		return "traits.age " + rapid.SampledFrom([]string{"==", "!="}).Draw(t, "nilop") + " nil"
	case 11:
		return fmt.Sprintf("event_count(\"Order Completed\") %s %d", op(), rapid.IntRange(0, 6).Draw(t, "k"))
	case 12:
		return fmt.Sprintf("event_count(\"Order Completed\", %q, amount > %d) >= %d", rapid.SampledFrom([]string{"7d", "30d", "48h"}).Draw(t, "win"), num()*10, rapid.IntRange(0, 3).Draw(t, "k"))
	case 13:
		return fmt.Sprintf("event_sum(\"Added to Cart\", \"30d\") %s %d", op(), num()*20)
	case 14:
		return fmt.Sprintf("days_since_event(\"Order Completed\") < %d", num())
	case 15:
		return `did_but_not("Added to Cart", "Order Completed", "7d")`
	case 16:
		return fmt.Sprintf("traits.age == %q", fmt.Sprint(rapid.IntRange(10, 80).Draw(t, "as")))
	}
	return fmt.Sprintf("traits.age %s %d.5", op(), num())
}

func genExpr(t *rapid.T, depth int) string {
	if depth <= 0 || rapid.IntRange(0, 2).Draw(t, "leafy") == 0 {
		return genLeaf(t)
	}
	switch rapid.IntRange(0, 2).Draw(t, "combine") {
	case 0:
		return "(" + genExpr(t, depth-1) + ") && (" + genExpr(t, depth-1) + ")"
	case 1:
		return "(" + genExpr(t, depth-1) + ") || (" + genExpr(t, depth-1) + ")"
	}
	return "!(" + genExpr(t, depth-1) + ")"
}

// TestBitmapsAgreeWithBruteForce: on random profiles (including traits of
// changing types and updates after indexing) and random definitions, the
// bitmap evaluation and the per-profile scan give exactly the profiles the
// reference evaluation over the raw profiles gives.
func TestBitmapsAgreeWithBruteForce(t *testing.T) {
	defer segment.SetThresholds(16, 24)()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 150).Draw(t, "profiles")
		ix, profs := genIndex(t, n)
		src := genExpr(t, 3)
		plan, err := segment.CompileExpr(src)
		if err != nil {
			t.Fatalf("compile %s: %v", src, err)
		}
		got := map[string]bool{}
		bm := ix.Evaluate(plan, now)
		for _, id := range ix.IDs(bm, 0, n+1) {
			got[id] = true
		}
		for id, g := range profs {
			want := segment.Match(plan, g.p, g.s, now)
			if got[id] != want {
				t.Fatalf("%s: profile %s: bitmap says %v, brute force %v\ntraits %v tags %v", src, id, got[id], want, g.p.Traits, g.p.Tags)
			}
			if one, ok := ix.MatchOne(plan, id, now); !ok || one != want {
				t.Fatalf("%s: profile %s: scan says %v, brute force %v", src, id, one, want)
			}
		}
		if len(got) > len(profs) {
			t.Fatalf("%s: bitmap holds %d profiles, only %d exist", src, len(got), len(profs))
		}
	})
}

func TestExpressionAndConditionCompileToTheSamePlan(t *testing.T) {
	cases := []struct{ expr, cond string }{
		{`"vip" in tags && traits.age in 20..40`, `{"all":[{"tag":"vip"},{"trait":"age","op":"between","value":[20,40]}]}`},
		{`traits.province == "广东省" || !("email" in identifiers)`, `{"any":[{"trait":"province","op":"==","value":"广东省"},{"not":{"identifier":"email"}}]}`},
		{`event_count("Order Completed", "30d", amount > 500) >= 2`, `{"event":"Order Completed","window":"30d","where":{"op":">","value":500},"op":">=","value":2}`},
		{`did_but_not("Added to Cart", "Order Completed", "7d")`, `{"did":"Added to Cart","not_did":"Order Completed","window":"7d"}`},
		{`in_region("广东", "深圳")`, `{"region":{"province":"广东","city":"深圳"}}`},
		{`traits.city startsWith "深"`, `{"trait":"city","op":"starts_with","value":"深"}`},
	}
	for _, c := range cases {
		a, err := segment.CompileExpr(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		var cond segment.Condition
		if err := jsonUnmarshal(c.cond, &cond); err != nil {
			t.Fatal(err)
		}
		b, err := segment.CompileCondition(&cond)
		if err != nil {
			t.Fatalf("%s: %v", c.cond, err)
		}
		if a.String() != b.String() {
			t.Errorf("plans differ:\n expr %s\n cond %s", a, b)
		}
	}
}

func TestInvalidDefinitionsSayWhy(t *testing.T) {
	cases := map[string]string{
		``:                               "empty",
		`traits.age >`:                   "invalid expression",
		`traits.age`:                     "is a value, not a condition",
		`traits.age + 1 > 3`:             "left side must be a trait", // a bare age is the trait (TestBareNamesAndDidYouMean)
		`traits.age > traits.height`:     "constant",
		`traits.vip > true`:              "boolean",
		`event_count("Order Completed")`: "returns a number",
		`event_count("Order Completed", "30x") > 1`:                  "window",
		`event_count("Order Completed", "30d") > 500`:                "most recent",
		`event_count("x", "30d", price > 3) > 1`:                     "amount",
		`event_count("x") > "a"`:                                     "compare it with a number",
		`foo("x") > 1`:                                               "unknown function",
		`len(traits.name) > 3`:                                       "not available",
		`traits.age in 40..20`:                                       "empty",
		`traits.age matches "a"`:                                     "not supported",
		`1 in tags`:                                                  "tag name",
		`did_but_not("a", "b", "all")`:                               "finite window",
		`traits.age in []`:                                           "1 to 1000",
		strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100): "",
	}
	for src, want := range cases {
		_, err := segment.CompileExpr(src)
		if err == nil {
			if want != "" {
				t.Errorf("%q compiled", src)
			}
			continue
		}
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v (want an invalid error mentioning %q)", src, err, want)
		}
	}
	for src, want := range map[string]string{
		`{}`:                                    "exactly one",
		`{"trait":"age","op":"like","value":1}`: "op \"like\"",
		`{"all":[]}`:                            "at least one",
		`{"event":"x","metric":"avg","op":">","value":1}`: "metric",
		`{"trait":"age","op":"between","value":[3]}`:      "between",
		`{"all":[{"tag":"a"},{"trait":"x","op":">"}]}`:    "condition.all[1]",
	} {
		var c segment.Condition
		if err := jsonUnmarshal(src, &c); err != nil {
			t.Fatal(err)
		}
		_, err := segment.CompileCondition(&c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (want %q)", src, err, want)
		}
	}
}

// A trait that changes type on some profiles: the segment keeps matching
// the profiles of the expected type, and says why the others cannot match.
func TestTraitChangingTypeIsReported(t *testing.T) {
	ix := segment.NewIndex()
	ix.Upsert(&portrait.Profile{ID: "a", Traits: map[string]portrait.Trait{"age": {Value: 35.0}}}, nil)
	ix.Upsert(&portrait.Profile{ID: "b", Traits: map[string]portrait.Trait{"age": {Value: 41.0}}}, nil)
	plan, _ := segment.CompileExpr(`traits.age >= 30`)
	if n := ix.Count(plan, now); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	ix.Upsert(&portrait.Profile{ID: "b", Traits: map[string]portrait.Trait{"age": {Value: "41"}}}, nil)
	if n := ix.Count(plan, now); n != 1 {
		t.Fatalf("after the type change: count %d, want 1", n)
	}
	w := ix.Warnings(plan)
	if len(w) != 1 || !strings.Contains(w[0], "string: 1") {
		t.Fatalf("warnings %v", w)
	}
	ex, err := ix.Explain(plan, "b", now)
	if err != nil || ex.Matched || !strings.Contains(ex.Reason, "holds a string") {
		t.Fatalf("explain %+v %v", ex, err)
	}
}

func TestExplainShowsValues(t *testing.T) {
	ix := segment.NewIndex()
	s := segment.Summary{}
	s.Add("Order Completed", now.Add(-24*time.Hour), 800)
	ix.Upsert(&portrait.Profile{ID: "a", Traits: map[string]portrait.Trait{"province": {Value: "广东省"}}, Tags: []portrait.ProfileTag{{Name: "vip"}}}, s)
	plan, _ := segment.CompileExpr(`"vip" in tags && traits.province == "广东省" && event_count("Order Completed", "30d", amount > 500) >= 2`)
	ex, err := ix.Explain(plan, "a", now)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Matched || len(ex.Children) != 3 || !ex.Children[0].Matched || ex.Children[1].Value != "广东省" {
		t.Fatalf("%+v", ex)
	}
	if c := ex.Children[2]; c.Matched || c.Value != 1.0 || !strings.Contains(c.Reason, "is 1") {
		t.Fatalf("behaviour clause %+v", c)
	}
	if _, err := ix.Explain(plan, "nobody", now); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Fatalf("unknown profile: %v", err)
	}
}

// Summaries are bounded: only the MaxRecent newest events per name are
// kept, while the all-time total stays exact.
func TestSummaryIsBounded(t *testing.T) {
	s := segment.Summary{}
	for i := 0; i < 3*segment.MaxRecent; i++ {
		s.Add("Page", now.Add(-time.Duration(i)*time.Minute), 1)
	}
	h := s["Page"]
	if h.Total != 3*segment.MaxRecent || h.Len() != segment.MaxRecent {
		t.Fatalf("total %d kept %d", h.Total, h.Len())
	}
	all, _ := segment.CompileExpr(fmt.Sprintf(`event_count("Page") == %d`, 3*segment.MaxRecent))
	recent, _ := segment.CompileExpr(fmt.Sprintf(`event_count("Page", "1d") >= %d`, segment.MaxRecent))
	p := &portrait.Profile{ID: "a"}
	if !segment.Match(all, p, s, now) || !segment.Match(recent, p, s, now) {
		t.Fatal("bounded summary lost the total or the recent events")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
