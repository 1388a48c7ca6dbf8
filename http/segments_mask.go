package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/segment"
)

// Segment definitions are not personal routes (the masker would take their
// own fields, "name" and the like, for traits), but a condition's literal
// is a value: id_number == "110101…" shows the ID number to anyone who may
// read segments. So the literals of conditions on a field above the
// caller's clearance are masked here, with the masker's formats, in the
// condition tree, the expression, the plan and the explanation's clauses.

// hiddenLiterals maps each literal the caller may not see to its mask.
func hiddenLiterals(r *http.Request, lits []segment.Literal) map[string]string {
	out := map[string]string{}
	for _, l := range lits {
		if !canSee(r, access.KindTrait, l.Trait) {
			m, _ := access.MaskValue(l.Trait, l.Value).(string)
			out[l.Value] = m
		}
	}
	return out
}

// maskLiteralText replaces the quoted literals in an expression or a
// clause. Only quoted forms are replaced: a bare substring could be part
// of a name or a number elsewhere in the text.
func maskLiteralText(s string, hidden map[string]string) string {
	if s == "" || len(hidden) == 0 {
		return s
	}
	for lit, m := range hidden {
		s = strings.ReplaceAll(s, strconv.Quote(lit), strconv.Quote(m))
		s = strings.ReplaceAll(s, `"`+lit+`"`, strconv.Quote(m))
		s = strings.ReplaceAll(s, `'`+lit+`'`, `'`+m+`'`)
		s = strings.ReplaceAll(s, "`"+lit+"`", "`"+m+"`")
	}
	return s
}

// maskExpression masks an expression's hidden literals as written. A
// literal written in a form the text replacement does not catch (escapes
// such as "\u0031…") is still in the compiled result: the expression is
// then shown as its masked plan, the same condition in canonical form.
func maskExpression(expr, maskedPlan string, hidden map[string]string) string {
	if expr == "" || len(hidden) == 0 {
		return expr
	}
	out := maskLiteralText(expr, hidden)
	plan, err := segment.CompileExpr(out)
	if err != nil {
		return maskedPlan
	}
	for _, l := range segment.Literals(plan) {
		if _, still := hidden[l.Value]; still {
			return maskedPlan
		}
	}
	return out
}

// maskCondition returns a copy of a condition tree whose trait values the
// caller may not see are masked (nil when c is nil).
func maskCondition(r *http.Request, c *segment.Condition) *segment.Condition {
	if c == nil {
		return nil
	}
	out := *c
	kids := func(list []segment.Condition) []segment.Condition {
		if list == nil {
			return nil
		}
		cp := make([]segment.Condition, len(list))
		for i := range list {
			cp[i] = *maskCondition(r, &list[i])
		}
		return cp
	}
	out.All, out.Any = kids(c.All), kids(c.Any)
	out.Not, out.Where = maskCondition(r, c.Not), maskCondition(r, c.Where)
	if c.Trait != "" && len(c.Value) > 0 && !canSee(r, access.KindTrait, c.Trait) {
		var v any
		if json.Unmarshal(c.Value, &v) == nil {
			switch x := v.(type) {
			case string:
				v = access.MaskValue(c.Trait, x)
			case []any:
				for i := range x {
					if s, ok := x[i].(string); ok {
						x[i] = access.MaskValue(c.Trait, s)
					}
				}
			}
			if b, err := json.Marshal(v); err == nil {
				out.Value = b
			}
		}
	}
	return &out
}

// maskedStatus returns a copy of a segment's status masked to the caller
// (the service's own status and definition are left as they are).
func (s *Server) maskedStatus(r *http.Request, st *segment.Status) *segment.Status {
	if st == nil || st.Definition == nil || accessOf(r.Context()) == nil {
		return st
	}
	hidden := hiddenLiterals(r, s.Segments.PlanLiterals(st.ID))
	cp, d := *st, *st.Definition
	cp.Plan = maskLiteralText(cp.Plan, hidden)
	d.Expression = maskExpression(d.Expression, cp.Plan, hidden)
	d.Condition = maskCondition(r, d.Condition)
	cp.Definition = &d
	return &cp
}

// maskExplanation masks the literals in an explanation's clauses and
// reasons, in place
// (the explanation is built for this response).
func maskExplanation(ex *segment.Explanation, hidden map[string]string) {
	if ex == nil || len(hidden) == 0 {
		return
	}
	ex.Clause = maskLiteralText(ex.Clause, hidden)
	ex.Reason = maskLiteralText(ex.Reason, hidden) // "… does not satisfy == \"…\""
	for _, k := range ex.Children {
		maskExplanation(k, hidden)
	}
}

// refuseMaskedLiterals refuses (400) a definition that compares a
// classified field with a masked value (138****8000, 1101**********1234,
// "[secret]"): it is what a caller below the field's clearance reads, and
// saving it back would replace the real value with the mask.
func refuseMaskedLiterals(r *http.Request, d segment.Definition) error {
	ac := accessOf(r.Context())
	if ac == nil {
		return nil
	}
	plan, err := d.Compile()
	if err != nil {
		return nil // the service reports it
	}
	for _, l := range segment.Literals(plan) {
		lvl, ok := ac.m.C.Trait(l.Trait)
		if !ok || lvl <= access.Public {
			continue
		}
		// MaskValue is idempotent: a value that masks to itself is a mask.
		if m, _ := access.MaskValue(l.Trait, l.Value).(string); m == l.Value {
			return portrait.Errorf(portrait.EINVALID, "the condition on %q compares with %q, a masked value (the field is %s): saving it would replace the real value with the mask; write the real value or leave the condition out",
				l.Trait, l.Value, lvl)
		}
	}
	return nil
}
