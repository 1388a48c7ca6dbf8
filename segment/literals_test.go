package segment_test

import (
	"slices"
	"testing"

	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/segment"
)

// TestPlanLiteralsFoundInText: the API masks a segment's plan, its
// explanation's clauses and its expression with exprlit, the tag rules'
// masker, which finds literals in expr-lang text; the segment's compiler
// lists them from the plan (Literals). Every literal of a plan must be one
// exprlit finds in the plan as printed (the same field, the same value:
// 13800138000 is printed as written, 1e+19 with an exponent, and both
// read back as the value Literals lists), or a
// caller below the field's clearance would read it; in the expression as
// written too, but for in_region's arguments, which no field in the call
// names (the API then shows the masked plan, and this test says which).
func TestPlanLiteralsFoundInText(t *testing.T) {
	for _, c := range []struct {
		expr      string
		notInExpr []string // literals exprlit does not find in the expression
	}{
		{`traits.phone == 13800138000 || phone in [13900139000, -1] || id_number == "110105194912312009"`, nil},
		{`phone in 13800000000..13899999999 && !(traits["home phone"] startsWith "+86")`, nil},
		{`"13800138000" in traits.phones && traits.credit >= -5.5 && phone != nil`, nil},
		{`13800138000 == phone || "vip" in tags || "email" in identifiers`, nil},
		{`in_region("广东省", "深圳市") || city == "北京市"`, []string{"province=广东省", "city=深圳市"}},
		{`event_count("Order Completed", "30d", amount > 500) >= 2 && revenue > 1e6 && phone == 1.38e10`, nil},
		{`phone == 1e19 || phone in [0.5, 1e-7] || phone >= -9e18`, nil},
	} {
		plan, err := segment.CompileExpr(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		lits := segment.Literals(plan)
		if len(lits) == 0 {
			t.Fatalf("%s: no literal listed", c.expr)
		}
		for _, text := range []string{plan.String(), c.expr} {
			found, err := exprlit.Find(text)
			if err != nil {
				t.Fatalf("%s does not parse: %v", text, err)
			}
			for _, l := range lits {
				in := slices.ContainsFunc(found, func(f exprlit.Literal) bool { return f.Field == l.Field && f.Value == l.Value })
				want := text != c.expr || !slices.Contains(c.notInExpr, l.Field+"="+l.Value)
				if in != want {
					t.Errorf("%s: literal %s=%s (number %v) found %v, want %v (found: %+v)", text, l.Field, l.Value, l.Number, in, want, found)
				}
			}
		}
	}
}
