package tag

import (
	"github.com/expr-lang/expr/ast"

	"github.com/portrait-cdp/portrait/internal/exprcmp"
)

// fast evaluates the commonest rules without the VM: comparisons of a
// trait with a literal (`revenue > 100`, `favourite_category == "books"`)
// joined by && and ||. It answers for the values such a rule is written
// for, a number against a number and a string against a string, and for a
// missing trait (nil), whose outcome in each comparison is what the VM
// gave for it when the tags were set (probe); for anything else (another
// type) it answers unknown, and the VM, which defines what a rule means,
// decides. Evaluation short-circuits as the VM's does, and a comparison
// that fails in the VM (an error, which makes the whole rule not hold)
// fails the whole rule here too.
type fast func(vals []any) outcome

type outcome uint8

const (
	unknown outcome = iota
	isFalse
	isTrue
	fails // the VM stops with an error: the rule does not hold
)

func of(b bool) outcome {
	if b {
		return isTrue
	}
	return isFalse
}

// probe runs one comparison in the VM with its trait missing.
type probe func(leaf, name string) outcome

// compileFast returns the fast evaluator of src, or nil. index gives a
// trait's position in vals.
func compileFast(src string, index func(string) (int, bool), nilOutcome probe) fast {
	tree, err := parseRule(src)
	if err != nil {
		return nil
	}
	return fastNode(tree.Node, index, nilOutcome)
}

func fastNode(n ast.Node, index func(string) (int, bool), nilOutcome probe) fast {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	switch b.Operator {
	case "&&", "and", "||", "or":
		l, r := fastNode(b.Left, index, nilOutcome), fastNode(b.Right, index, nilOutcome)
		if l == nil || r == nil {
			return nil
		}
		stop := isFalse // false && ...
		if b.Operator == "||" || b.Operator == "or" {
			stop = isTrue // true || ...
		}
		return func(vals []any) outcome {
			x := l(vals)
			if x == unknown || x == fails || x == stop {
				return x
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
	// What the VM does with this comparison when the trait is missing.
	onNil := unknown
	if nilOutcome != nil {
		onNil = nilOutcome(b.String(), id.Value)
	}
	cmp := func(c int) bool { return exprcmp.Holds(op, c) }
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
		return func(vals []any) outcome {
			if vals[i] == nil {
				return onNil
			}
			v, ok := vals[i].(string)
			if !ok {
				return unknown
			}
			return of((v == s) == (op == "=="))
		}
	default:
		return nil
	}
	return func(vals []any) outcome {
		if vals[i] == nil {
			return onNil
		}
		v, ok := vals[i].(float64)
		if !ok || v != v {
			return unknown
		}
		switch {
		case v < lit:
			return of(cmp(-1))
		case v > lit:
			return of(cmp(1))
		}
		return of(cmp(0))
	}
}
