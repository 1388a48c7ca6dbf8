package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/segment"
)

// Definitions are not personal routes (the masker would take their
// own fields, "name" and the like, for traits), but a condition's literal
// is a value: id_number == "110101…" or phone == 13800138000 shows the
// value to anyone who may read segments, tags or traits. So the literals
// compared with a field above the caller's clearance are masked here, with
// the masker's formats: in the expressions of segments, tag rules and
// computed-trait filters, in a segment's plan and its explanation's
// clauses (printed from the plan in the same syntax), by source offset of
// the literals the expression's parser found (internal/exprlit, one
// function for all of them), and in a segment's condition tree by its
// values.

// maskOf is the mask of a literal of a field the caller may not see
// (hidden false: the literal is shown). A number is a value only of an
// identifier (phone == 13800138000); compared with a measure (revenue >=
// 1000) it is a threshold, shown as written.
func maskOf(l exprlit.Literal) (mask string, hidden bool) {
	if l.Number && !access.Identifying(l.Field) {
		return "", false
	}
	m, _ := access.MaskValue(l.Field, l.Value).(string)
	return m, true
}

// ruleMasker masks the literals the caller may not see in the expressions
// of one response (exprlit): it asks the classifier once a field, and the
// texts masked for a set of hidden fields are remembered across responses
// (ruleMasks). Stored expressions always parse; one that did not would
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

// hidden reports whether the caller may not see a field's values.
func (m *ruleMasker) hidden(field string) bool {
	if m.none {
		return false
	}
	sees, ok := m.sees[field]
	if !ok {
		sees = canSee(m.r, access.KindTrait, field)
		m.sees[field] = sees
	}
	return !sees
}

// masks returns l's mask when the caller may not see it.
func (m *ruleMasker) masks(l exprlit.Literal) (string, bool) {
	if !m.hidden(l.Field) {
		return "", false
	}
	return maskOf(l)
}

func (m *ruleMasker) mask(src string) string {
	if src == "" || m.none {
		return src
	}
	out, _ := ruleMasks.Mask(src, m.hidden)
	return out
}

// maskRule masks one rule's literals (ruleMasker).
func maskRule(r *http.Request, src string) string { return newRuleMasker(r).mask(src) }

// expression masks a segment's expression as written (mask). The
// segment's compiler judges what the expression compares: each literal of
// its plan that the caller may not see must be one exprlit found in the
// text, and so masked. One it did not find (in_region("广东")'s province
// is a value of the province trait; an ID number written as a number
// beyond a float's precision prints otherwise in the plan) has the
// expression shown as its masked plan instead (maskedPlan, the same
// condition in canonical form; "" where there is none).
func (m *ruleMasker) expression(expr string, plan []segment.Literal, maskedPlan string) string {
	if expr == "" || m.none {
		return expr
	}
	found, err := exprlit.Find(expr)
	if err != nil {
		return maskedPlan // stored expressions parse: not reached
	}
	for _, l := range plan {
		if _, hidden := m.masks(l); hidden && !slices.ContainsFunc(found, func(f exprlit.Literal) bool {
			return f.Field == l.Field && f.Value == l.Value
		}) {
			return maskedPlan
		}
	}
	return m.mask(expr)
}

// condition returns a copy of a condition tree whose trait values the
// caller may not see are masked (nil when c is nil): strings, numbers of
// an identifier (maskOf), a region's province and city.
func (m *ruleMasker) condition(c *segment.Condition) *segment.Condition {
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
			cp[i] = *m.condition(&list[i])
		}
		return cp
	}
	out.All, out.Any = kids(c.All), kids(c.Any)
	out.Not, out.Where = m.condition(c.Not), m.condition(c.Where)
	if c.Region != nil {
		reg := *c.Region
		for _, p := range []struct {
			field string
			v     *string
		}{{"province", &reg.Province}, {"city", &reg.City}} {
			if mask, hidden := m.masks(exprlit.Literal{Field: p.field, Value: *p.v}); hidden && *p.v != "" {
				*p.v = mask
			}
		}
		out.Region = &reg
	}
	if c.Trait != "" && len(c.Value) > 0 && m.hidden(c.Trait) {
		dec := json.NewDecoder(bytes.NewReader(c.Value))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			one := func(x any) any {
				l := exprlit.Literal{Field: c.Trait}
				switch x := x.(type) {
				case string:
					l.Value = x
				case json.Number:
					f, err := x.Float64()
					if err != nil {
						return x
					}
					l.Value, l.Number = strconv.FormatFloat(f, 'f', -1, 64), true
				default:
					return x
				}
				if mask, hidden := maskOf(l); hidden {
					return mask
				}
				return x
			}
			if list, ok := v.([]any); ok {
				for i := range list {
					list[i] = one(list[i])
				}
			} else {
				v = one(v)
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
	return s.maskStatus(newRuleMasker(r), st)
}

// maskStatus is maskedStatus with the response's masker (a list asks the
// classifier once a field).
func (s *Server) maskStatus(m *ruleMasker, st *segment.Status) *segment.Status {
	if st == nil || st.Definition == nil || m.none {
		return st
	}
	cp, d := *st, *st.Definition
	cp.Plan = m.mask(cp.Plan)
	if d.Expression != "" {
		d.Expression = m.expression(d.Expression, s.Segments.PlanLiterals(st.ID), cp.Plan)
	}
	d.Condition = m.condition(d.Condition)
	cp.Definition = &d
	return &cp
}

// maskExplanation masks the literals in an explanation's clauses, in place
// (the explanation is built for this response). A clause is printed from
// the plan in the expression syntax; reasons carry no literal.
func maskExplanation(m *ruleMasker, ex *segment.Explanation) {
	if ex == nil || m.none {
		return
	}
	ex.Clause = m.mask(ex.Clause)
	for _, k := range ex.Children {
		maskExplanation(m, k)
	}
}

// refuseMaskedLiterals refuses (400) a segment definition that compares a
// classified field with a masked value (refuseMasked).
// An expression's literals are also read as a tag rule's are (exprlit):
// a masked number reads "138****8000", and put back where a number must be
// (a range's bound) the definition does not compile, yet it is the mask
// that is wrong.
func refuseMaskedLiterals(r *http.Request, d segment.Definition) error {
	var lits []exprlit.Literal
	if d.Expression != "" {
		lits, _ = exprlit.Find(d.Expression)
	}
	if plan, err := d.Compile(); err == nil {
		lits = append(lits, segment.Literals(plan)...)
	}
	return refuseMasked(r, "the condition on %q compares with", lits)
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
