package segment

import "github.com/portrait-cdp/portrait/internal/exprlit"

// Literal is a string a plan's trait condition compares with (Field is the
// trait). The API masks it for a caller who may not see the trait's values
// (issue 15): a definition such as id_number == "1101…" would otherwise
// show the value itself to anyone who may read segments. It is the type
// tag rules and computed-trait filters find theirs as (exprlit), so that
// one masker serves all three.
type Literal = exprlit.Literal

// Literals lists the string literals of a plan's trait conditions,
// including those of the saved segments a set operation is built on.
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
				if s, ok := x.(string); ok {
					out = append(out, Literal{Field: v.name, Value: s})
				}
			}
			add(v.p.lit)
			for _, x := range v.p.set {
				add(x)
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
