package segment

import (
	"strconv"

	"github.com/portrait-cdp/portrait/internal/exprlit"
)

// Literal is a value a plan's trait condition compares with (Field is the
// trait): a string, or a number (Number; its Value as exprlit writes it,
// so that the two agree on 13800138000). The API masks it for a caller
// who may not see the trait's values (issue 15): a definition such as
// id_number == "1101…" or phone == 13800138000 would otherwise show the
// value itself to anyone who may read segments. It is the type tag rules
// and computed-trait filters find theirs as (exprlit), so that one masker
// serves all three.
type Literal = exprlit.Literal

// Literals lists the literals of a plan's trait conditions, strings and
// numbers (a range's bounds too: phone in 13800000000..13899999999 says
// the prefix), including those of the saved segments a set operation is
// built on. Event-function thresholds are not listed: they are not values
// of a trait.
func Literals(n Node) []Literal {
	var out []Literal
	var walk func(Node)
	walk = func(n Node) {
		switch v := n.(type) {
		case *andNode:
			for _, k := range v.kids {
				walk(k)
			}
		case *orNode:
			for _, k := range v.kids {
				walk(k)
			}
		case *notNode:
			walk(v.kid)
		case *refNode:
			walk(v.kid)
		case *traitLeaf:
			add := func(x any) {
				switch x := x.(type) {
				case string:
					out = append(out, Literal{Field: v.name, Value: x})
				case float64:
					out = append(out, Literal{Field: v.name, Value: strconv.FormatFloat(x, 'f', -1, 64), Number: true})
				}
			}
			add(v.p.lit)
			for _, x := range v.p.set {
				add(x)
			}
			if v.p.isRange {
				add(v.p.lo)
				add(v.p.hi)
			}
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

// PlanLiterals lists the literals of a saved segment's plan (Literals).
func (s *Service) PlanLiterals(id string) []Literal {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.segs[id]
	if !ok {
		return nil
	}
	return Literals(l.plan)
}
