package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/segment"
)

// Definitions are not personal routes (the masker would take their
// own fields, "name" and the like, for traits), but a condition's literal
// is a value: id_number == "110101…" shows the ID number to anyone who may
// read segments. So the literals of conditions on a field above the
// caller's clearance are masked here, with the masker's formats, in the
// condition tree, the expression, the plan and the explanation's clauses.

// literalMask is the mask of a literal compared with a field the caller
// may not see (hidden false: the caller sees the field). A number is a
// value only of an identifier (phone == 13800138000); compared with a
// measure (revenue >= 1000) it is a threshold, shown as segments show it.
func literalMask(r *http.Request, l exprlit.Literal) (mask string, hidden bool) {
	if canSee(r, access.KindTrait, l.Field) {
		return "", false
	}
	return maskOf(l)
}

// maskOf is the mask of a literal of a field the caller may not see.
func maskOf(l exprlit.Literal) (mask string, hidden bool) {
	if l.Number && !access.Identifying(l.Field) {
		return "", false
	}
	m, _ := access.MaskValue(l.Field, l.Value).(string)
	return m, true
}

// hiddenLiterals maps each literal the caller may not see to its mask.
func hiddenLiterals(r *http.Request, lits []segment.Literal) map[string]string {
	out := map[string]string{}
	for _, l := range lits {
		if m, hidden := literalMask(r, l); hidden {
			out[l.Value] = m
		}
	}
	return out
}

// ruleMasker masks the literals of tag rules and computed-trait filters
// (expr-lang text) that the caller may not see, in place in the text
// (exprlit), for one response: it asks the classifier once a field, and
// the texts masked for a set of hidden fields are remembered across
// responses (ruleMasks). Stored rules always parse; one that did not would
// have no literal to find and is shown as it is.
type ruleMasker struct {
	r    *http.Request
	none bool            // no access control, or a clearance that sees every level
	sees map[string]bool // field → the caller sees it
}

// ruleMasks masks with the masker's formats (maskOf).
var ruleMasks = exprlit.NewMasker(maskOf)

func newRuleMasker(r *http.Request) *ruleMasker {
	ac := accessOf(r.Context())
	return &ruleMasker{r: r, none: ac == nil || ac.p.Sees(access.Secret), sees: map[string]bool{}}
}

func (m *ruleMasker) mask(src string) string {
	if src == "" || m.none {
		return src
	}
	out, _ := ruleMasks.Mask(src, func(field string) bool {
		sees, ok := m.sees[field]
		if !ok {
			sees = canSee(m.r, access.KindTrait, field)
			m.sees[field] = sees
		}
		return !sees
	})
	return out
}

// maskRule masks one rule's literals (ruleMasker).
func maskRule(r *http.Request, src string) string { return newRuleMasker(r).mask(src) }

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

// refuseMaskedLiterals refuses (400) a segment definition that compares a
// classified field with a masked value (refuseMasked).
func refuseMaskedLiterals(r *http.Request, d segment.Definition) error {
	plan, err := d.Compile()
	if err != nil {
		return nil // the service reports it
	}
	return refuseMasked(r, "the condition on %q compares with", segment.Literals(plan))
}

// refuseMaskedRule refuses (400) a tag rule or a computed-trait filter that
// compares a classified field with a masked value (refuseMasked).
func refuseMaskedRule(r *http.Request, src string) error {
	lits, err := exprlit.Find(src)
	if err != nil {
		return nil // the service reports it
	}
	return refuseMasked(r, "the expression compares %q with", lits)
}

// CodeMaskedValue is the code of the detail that says a definition holds a
// masked value, which a client words in its own language.
const CodeMaskedValue = "masked_value"

// refuseMasked refuses (400) literals that compare a classified field with
// a masked value (138****8000, 1101**********1234, "[secret]"), whoever
// the caller is (what says where, with a %q for the field): it is what a caller below the field's clearance reads,
// and saving it back would replace the real value with the mask. The
// detail names the field and carries CodeMaskedValue.
func refuseMasked(r *http.Request, what string, lits []exprlit.Literal) error {
	ac := accessOf(r.Context())
	if ac == nil {
		return nil
	}
	for _, l := range lits {
		lvl, ok := ac.m.C.Trait(l.Field)
		if !ok || lvl <= access.Public {
			continue
		}
		// MaskValue is idempotent: a value that masks to itself is a mask.
		if m, _ := access.MaskValue(l.Field, l.Value).(string); m == l.Value {
			e := portrait.Errorf(portrait.EINVALID, "%s %q, a masked value (the field is %s): saving it would replace the real value with the mask; write the real value or leave the comparison out",
				fmt.Sprintf(what, l.Field), l.Value, lvl)
			e.Details = []portrait.ErrorDetail{{Field: l.Field, Code: CodeMaskedValue, Reason: "masked value " + strconv.Quote(l.Value)}}
			return e
		}
	}
	return nil
}
