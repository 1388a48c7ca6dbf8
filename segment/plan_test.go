package segment_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/segment"
)

// TestPlanPrintsNumbersReadably: a segment's plan (GET /v1/segments/{id}
// "plan", the console's segment detail), its explanation's clauses and
// reasons, the compiler's messages and a numeric breakdown's labels print
// numbers as a person writes them: a phone, a large integer, a fraction, a
// negative, not 1.3800138e+10 or 1.234567e+06. The printed plan still
// compiles to itself and is still expr-lang text whose literals exprlit
// finds (the API masks the plan by them), with the exponent form left
// where digits would overflow expr's int64 or bury a tiny fraction.
func TestPlanPrintsNumbersReadably(t *testing.T) {
	expr := `traits.phone == 13800138000 && revenue >= 1234567 && traits.score > 0.25 && traits.credit >= -5.5 && ` +
		`phone in 13800000000..13899999999 && balance < -2500000 && traits.ratio in [1e6, 2.5e6] && ` +
		`event_sum("Order Completed", "30d", amount > 0.5) >= 1500000`
	want := `(traits.phone == 13800138000) && (traits.revenue >= 1234567) && (traits.score > 0.25) && (traits.credit >= -5.5) && ` +
		`(traits.phone in 13800000000..13899999999) && (traits.balance < -2500000) && (traits.ratio in [1000000, 2500000]) && ` +
		`(event_sum("Order Completed", "30d", amount > 0.5) >= 1500000)`
	plan, err := segment.CompileExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.String(); got != want {
		t.Fatalf("plan\n got %s\nwant %s", got, want)
	}
	// Extremes: digits up to 2^63 (expr reads them as an int64), the
	// exponent beyond it and below 1e-6.
	const extremes = `x == 9e18 || x == 1e19 || x == 1e300 || x == 0.000001 || x == 1e-7`
	wantExtremes := `(traits.x == 9000000000000000000) || (traits.x == 1e+19) || (traits.x == 1e+300) || (traits.x == 0.000001) || (traits.x == 1e-07)`
	ext, err := segment.CompileExpr(extremes)
	if err != nil {
		t.Fatal(err)
	}
	if got := ext.String(); got != wantExtremes {
		t.Fatalf("plan\n got %s\nwant %s", got, wantExtremes)
	}
	for _, p := range []segment.Node{plan, ext} {
		again, err := segment.CompileExpr(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("the printed plan %s does not compile back to itself: %v %v", p, again, err)
		}
		if _, err := exprlit.Find(p.String()); err != nil {
			t.Fatalf("the printed plan %s does not parse for the masker: %v", p, err)
		}
	}

	// The explanation's clauses (printed from the plan) and a reason.
	ix := segment.NewIndex()
	s := segment.Summary{}
	s.Add("Order Completed", now.Add(-24*time.Hour), 1250000.5)
	ix.Upsert(&portrait.Profile{ID: "a", Traits: map[string]portrait.Trait{"phone": {Value: 13800138000.0}, "revenue": {Value: 2e6}}}, s)
	ex, err := ix.Explain(plan, "a", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Children) != 8 || ex.Children[0].Clause != "traits.phone == 13800138000" || ex.Children[1].Clause != "traits.revenue >= 1234567" {
		t.Fatalf("clauses %+v", ex.Children)
	}
	if c := ex.Children[7]; c.Matched || c.Reason != "event_sum is 1250000.5, not >= 1500000" {
		t.Fatalf("behaviour clause %+v", c)
	}

	// A compiler message.
	if _, err := segment.CompileExpr(`revenue in 2000000..1000000`); err == nil || !strings.Contains(err.Error(), "(2000000 > 1000000)") {
		t.Fatalf("empty range: %v", err)
	}

	// A numeric breakdown's keys and labels.
	for i, v := range []float64{1e6, 2.5e6} {
		ix.Upsert(&portrait.Profile{ID: string(rune('b' + i)), Traits: map[string]portrait.Trait{"revenue": {Value: v}}}, nil)
	}
	dim, _ := segment.ParseDim("bucket:revenue:1000000")
	bd, err := ix.Breakdown(dim, nil, "", 10)
	if err != nil || len(bd.Groups) == 0 || bd.Groups[0].Key != "1000000..2000000" || bd.Groups[0].Label != "[1000000, 2000000)" {
		t.Fatalf("buckets %+v %v", bd, err)
	}
	dim, _ = segment.ParseDim("trait:phone")
	bd, err = ix.Breakdown(dim, nil, "", 10)
	if err != nil || !strings.Contains(groupKeys(bd), "13800138000") {
		t.Fatalf("values %s %v", groupKeys(bd), err)
	}
}

func groupKeys(bd *segment.Breakdown) string {
	if bd == nil {
		return ""
	}
	var keys []string
	for _, g := range bd.Groups {
		keys = append(keys, g.Key)
	}
	return strings.Join(keys, " ")
}
