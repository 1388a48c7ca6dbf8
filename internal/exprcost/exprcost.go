// Package exprcost bounds what a user-defined expression (tag rules,
// computed-trait filters, segment conditions) may cost to evaluate, at
// definition time: a rule is evaluated for every profile at every change,
// so `all(1..999, {all(1..999, {all(1..999, true)})})` — a billion steps —
// must be refused when it is saved, not discovered when it stalls the
// processor.
package exprcost

import (
	"fmt"
	"math"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// Max is the default bound: about a hundred thousand steps per profile.
const Max = 100_000

// unknownSize is the size assumed for a collection whose size is not
// written in the expression (a list trait): generous for real lists.
const unknownSize = 1000

// unknownRange is assumed for a range or repeat count that is computed:
// its size is whatever the data says, so it counts as huge.
const unknownRange = 1e6

// Check parses src and refuses it when its estimated cost exceeds max.
func Check(src string, max float64) error {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil // the caller's compiler reports syntax, with its position
	}
	if c := Cost(tree.Node); c > max {
		return fmt.Errorf("the expression would take about %s steps per profile, over the limit of %s: nested loops over ranges multiply (use a smaller range, or fewer nested all/any/filter)", human(c), human(max))
	}
	return nil
}

// Cost estimates the steps evaluating n takes: one per node, ranges and
// repeats by their size, and a predicate builtin (all, any, filter, map...)
// its body times the size of its collection.
func Cost(n ast.Node) float64 {
	switch n := n.(type) {
	case nil:
		return 0
	case *ast.BinaryNode:
		if n.Operator == ".." {
			return 1 + Cost(n.Left) + Cost(n.Right) + size(n)
		}
		return 1 + Cost(n.Left) + Cost(n.Right)
	case *ast.BuiltinNode:
		c := 1.0
		if n.Name == "repeat" && len(n.Arguments) == 2 {
			c += literalInt(n.Arguments[1], unknownRange)
		}
		var coll ast.Node
		for i, a := range n.Arguments {
			if p, ok := a.(*ast.PredicateNode); ok && i > 0 {
				c = add(c, mul(size(coll), Cost(p.Node)))
				if n.Name == "reduce" {
					// The accumulator is the value built so far: a body
					// that holds it g > 1 times (#acc + #acc) makes the
					// value g times larger at each element, and
					// building it costs as much. reduce(1..34, #acc +
					// #acc, "x") is a 16 GB string, found in a handful
					// of steps; counted as g^n, it is refused.
					if g := accGrowth(p.Node); g > 1 {
						c = add(c, math.Pow(g, math.Min(size(coll), 1e4)))
					}
				}
				continue
			}
			if i == 0 {
				coll = a
			}
			c = add(c, Cost(a))
		}
		return c
	}
	c := 1.0
	for _, ch := range children(n) {
		c = add(c, Cost(ch))
	}
	return c
}

// accGrowth is how many times a reduce body holds its accumulator (#acc)
// in what it returns, at most: each mention counts once, one inside
// repeat(x, k) k times (the unknown count of a computed k as huge).
func accGrowth(n ast.Node) float64 {
	switch n := n.(type) {
	case nil:
		return 0
	case *ast.PointerNode:
		if n.Name == "acc" {
			return 1
		}
		return 0
	case *ast.BuiltinNode:
		g := 0.0
		for _, a := range n.Arguments {
			g = add(g, accGrowth(a))
		}
		if n.Name == "repeat" && len(n.Arguments) == 2 {
			g = mul(accGrowth(n.Arguments[0]), literalInt(n.Arguments[1], unknownRange)) + accGrowth(n.Arguments[1])
		}
		return g
	case *ast.BinaryNode:
		return add(accGrowth(n.Left), accGrowth(n.Right))
	}
	g := 0.0
	for _, ch := range children(n) {
		g = add(g, accGrowth(ch))
	}
	return g
}

// size estimates how many elements the collection n has.
func size(n ast.Node) float64 {
	switch n := n.(type) {
	case *ast.BinaryNode:
		if n.Operator == ".." {
			lo, hi := literalInt(n.Left, math.NaN()), literalInt(n.Right, math.NaN())
			if math.IsNaN(lo) || math.IsNaN(hi) {
				return unknownRange
			}
			return math.Max(0, hi-lo+1)
		}
	case *ast.ArrayNode:
		return float64(len(n.Nodes))
	case *ast.BuiltinNode:
		switch n.Name {
		case "filter", "map", "sortBy", "take", "reverse", "uniq", "sort", "flatten", "keys", "values", "toPairs":
			if len(n.Arguments) > 0 {
				return size(n.Arguments[0])
			}
		case "concat":
			s := 0.0
			for _, a := range n.Arguments {
				s += size(a)
			}
			return s
		}
	}
	return unknownSize
}

func literalInt(n ast.Node, unknown float64) float64 {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return float64(n.Value)
	case *ast.UnaryNode:
		if n.Operator == "-" {
			if v := literalInt(n.Node, math.NaN()); !math.IsNaN(v) {
				return -v
			}
		}
	}
	return unknown
}

func add(a, b float64) float64 { return math.Min(a+b, math.MaxFloat64/4) }
func mul(a, b float64) float64 { return math.Min(a*b, math.MaxFloat64/4) }

// children lists n's direct children (ast.Walk visits all descendants).
func children(n ast.Node) []ast.Node {
	switch n := n.(type) {
	case *ast.UnaryNode:
		return []ast.Node{n.Node}
	case *ast.ChainNode:
		return []ast.Node{n.Node}
	case *ast.MemberNode:
		return []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		return []ast.Node{n.Node, n.From, n.To}
	case *ast.CallNode:
		return append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.PredicateNode:
		return []ast.Node{n.Node}
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.ArrayNode:
		return n.Nodes
	case *ast.MapNode:
		return n.Pairs
	case *ast.PairNode:
		return []ast.Node{n.Key, n.Value}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{n.Value, n.Expr}
	case *ast.SequenceNode:
		return n.Nodes
	}
	return nil
}

func human(f float64) string {
	switch {
	case f >= 1e12:
		return "more than a trillion"
	case f >= 1e9:
		return fmt.Sprintf("%.0f billion", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.0f million", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.0f thousand", f/1e3)
	}
	return fmt.Sprintf("%.0f", f)
}
