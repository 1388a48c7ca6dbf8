package tag

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// fast evaluates the commonest rules without the VM: comparisons of a
// trait with a literal (`revenue > 100`, `favourite_category == "books"`)
// joined by && and ||. It answers only for the values such a rule is
// written for, a number against a number and a string against a string;
// for anything else (a missing trait, another type) it answers known =
// false, and the VM, which defines what a rule means, decides. Evaluation
// short-circuits as the VM's does, so a leaf that would fail in the VM is
// never reached where the VM would not reach it either.
type fast func(vals []any) (held, known bool)

// compileFast returns the fast evaluator of src, or nil. index gives a
// trait's position in vals.
func compileFast(src string, index func(string) (int, bool)) fast {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	return fastNode(tree.Node, index)
}

func fastNode(n ast.Node, index func(string) (int, bool)) fast {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	switch b.Operator {
	case "&&", "and", "||", "or":
		l, r := fastNode(b.Left, index), fastNode(b.Right, index)
		if l == nil || r == nil {
			return nil
		}
		and := b.Operator == "&&" || b.Operator == "and"
		return func(vals []any) (bool, bool) {
			x, ok := l(vals)
			if !ok {
				return false, false
			}
			if x != and { // false && ..., true || ...
				return x, true
			}
			return r(vals)
		}
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil
	}
	id, ok := b.Left.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	i, ok := index(id.Value)
	if !ok {
		return nil
	}
	op := b.Operator
	cmp := func(c int) bool {
		switch op {
		case "==":
			return c == 0
		case "!=":
			return c != 0
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		}
		return c >= 0
	}
	var lit float64
	switch r := b.Right.(type) {
	case *ast.IntegerNode:
		if r.Value > 1<<53 || r.Value < -1<<53 {
			return nil // not exact as a float
		}
		lit = float64(r.Value)
	case *ast.FloatNode:
		lit = r.Value
	case *ast.StringNode:
		if op != "==" && op != "!=" {
			return nil
		}
		s := r.Value
		return func(vals []any) (bool, bool) {
			v, ok := vals[i].(string)
			if !ok {
				return false, false
			}
			return (v == s) == (op == "=="), true
		}
	default:
		return nil
	}
	return func(vals []any) (bool, bool) {
		v, ok := vals[i].(float64)
		if !ok || v != v {
			return false, false
		}
		switch {
		case v < lit:
			return cmp(-1), true
		case v > lit:
			return cmp(1), true
		}
		return cmp(0), true
	}
}
