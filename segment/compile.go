package segment

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/portrait-cdp/portrait"
)

// MaxRecent bounds the events a behaviour summary keeps per profile and
// event name (the most recent ones). Windowed conditions see at most this
// many events, so thresholds above it are refused rather than silently
// never reached.
const MaxRecent = 128

const maxExpression = 8 << 10

// CompileExpr compiles an expression in the language shared with tags
// (github.com/expr-lang/expr syntax) over traits.*, tags, identifiers and
// the event-history functions event_count, event_sum, days_since_event and
// did_but_not. Only the syntax is expr's: the expression is translated into
// a plan, never run, so every construct that cannot be indexed is refused
// here with a reason.
func CompileExpr(src string) (Node, error) {
	if strings.TrimSpace(src) == "" {
		return nil, invalid("the expression is empty")
	}
	if len(src) > maxExpression {
		return nil, invalid("the expression is longer than %d bytes", maxExpression)
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, invalid("invalid expression: %s", oneLine(err.Error()))
	}
	c := &exprCompiler{}
	n, err := c.cond(tree.Node)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func invalid(format string, args ...any) error {
	return portrait.Errorf(portrait.EINVALID, format, args...)
}

func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, " | ")
}

type exprCompiler struct{ depth int }

func (c *exprCompiler) cond(n ast.Node) (Node, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 64 {
		return nil, invalid("the expression is nested too deeply")
	}
	switch x := n.(type) {
	case *ast.BoolNode:
		return &constNode{v: x.Value}, nil
	case *ast.UnaryNode:
		if x.Operator == "!" || x.Operator == "not" {
			k, err := c.cond(x.Node)
			if err != nil {
				return nil, err
			}
			return &notNode{kid: k}, nil
		}
	case *ast.CallNode:
		return c.call(x, true)
	case *ast.BinaryNode:
		return c.binary(x)
	case *ast.MemberNode, *ast.IdentifierNode:
		if name, ok := traitName(x); ok {
			return nil, invalid("%s is a value, not a condition: compare it (e.g. %s == true)", traitRef(name), traitRef(name))
		}
	}
	return nil, invalid("%q is not a condition: use comparisons, in, startsWith, event functions, and &&, ||, !", n.String())
}

func (c *exprCompiler) binary(x *ast.BinaryNode) (Node, error) {
	switch x.Operator {
	case "&&", "and", "||", "or":
		// expr parses a || b || c as ((a || b) || c): a chain of one
		// operator is one level of the condition, however long it is.
		and := x.Operator == "&&" || x.Operator == "and"
		chained := false
		if lb, ok := x.Left.(*ast.BinaryNode); ok {
			lAnd := lb.Operator == "&&" || lb.Operator == "and"
			lOr := lb.Operator == "||" || lb.Operator == "or"
			chained = (and && lAnd) || (!and && lOr)
		}
		if chained {
			c.depth--
		}
		l, err := c.cond(x.Left)
		if chained {
			c.depth++
		}
		if err != nil {
			return nil, err
		}
		r, err := c.cond(x.Right)
		if err != nil {
			return nil, err
		}
		if x.Operator == "&&" || x.Operator == "and" {
			return flatten(&andNode{kids: []Node{l, r}}), nil
		}
		return flatten(&orNode{kids: []Node{l, r}}), nil
	case "in", "not in":
		n, err := c.in(x)
		if err != nil || x.Operator == "in" {
			return n, err
		}
		return &notNode{kid: n}, nil
	case "startsWith":
		name, ok := traitName(x.Left)
		s, sok := x.Right.(*ast.StringNode)
		if !ok || !sok {
			return nil, invalid("startsWith needs a trait on the left and a string on the right, as in traits.city startsWith \"深圳\"")
		}
		return &traitLeaf{name: name, p: pred{op: opPrefix, lit: s.Value}}, nil
	case "==", "!=", "<", "<=", ">", ">=":
		return c.compare(x)
	}
	return nil, invalid("operator %q is not supported in segments (use ==, !=, <, <=, >, >=, in, startsWith, &&, ||, !)", x.Operator)
}

var flip = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

func (c *exprCompiler) compare(x *ast.BinaryNode) (Node, error) {
	op := x.Operator
	left, right := x.Left, x.Right
	if _, isLit := constant(left); isLit {
		left, right, op = right, left, flip[op]
	}
	if _, isNil := right.(*ast.NilNode); isNil {
		name, ok := traitName(left)
		if !ok || (op != "==" && op != "!=") {
			return nil, invalid("only a trait can be compared with nil, and only with == or != (in %q)", x.String())
		}
		leaf := &traitLeaf{name: name, p: pred{op: opExists}}
		if op == "==" {
			return &notNode{kid: leaf}, nil
		}
		return leaf, nil
	}
	lit, ok := constant(right)
	if !ok {
		return nil, invalid("%q must compare a trait or an event function with a constant", x.String())
	}
	if _, isBool := lit.(bool); isBool && op != "==" && op != "!=" {
		return nil, invalid("a boolean can only be compared with == or != (in %q)", x.String())
	}
	p := pred{op: op, lit: lit}
	if name, ok := traitName(left); ok {
		return &traitLeaf{name: name, p: p}, nil
	}
	if call, ok := left.(*ast.CallNode); ok {
		leaf, err := c.call(call, false)
		if err != nil {
			return nil, err
		}
		b, isBeh := leaf.(*behLeaf)
		if !isBeh {
			return nil, invalid("%q: %s is a condition, not a number to compare", x.String(), call.Callee.String())
		}
		if _, num := lit.(float64); !num {
			return nil, invalid("%s returns a number; compare it with a number (in %q)", b.metric, x.String())
		}
		if b.window > 0 && b.metric == metricCount && lit.(float64) > MaxRecent {
			return nil, invalid("windowed event counts are kept for the %d most recent events per event name: a threshold of %s cannot be evaluated", MaxRecent, fmtNum(lit.(float64)))
		}
		b.p = p
		return b, nil
	}
	if _, isBuiltin := left.(*ast.BuiltinNode); isBuiltin {
		return nil, invalid("%q: built-in function %s is not available in segments; event functions are event_count, event_sum, days_since_event, did_but_not", x.String(), left.String())
	}
	return nil, invalid("%q: the left side must be a trait (revenue or traits.revenue) or an event function", x.String())
}

func (c *exprCompiler) in(x *ast.BinaryNode) (Node, error) {
	if id, ok := x.Right.(*ast.IdentifierNode); ok && reserved[id.Value] {
		s, sok := x.Left.(*ast.StringNode)
		switch id.Value {
		case "tags":
			if !sok || s.Value == "" {
				return nil, invalid("\"... in tags\" needs a tag name string, as in \"vip\" in tags")
			}
			return &tagLeaf{name: s.Value}, nil
		case "identifiers":
			if !sok || s.Value == "" {
				return nil, invalid("\"... in identifiers\" needs an identifier type string, as in \"email\" in identifiers")
			}
			return &idLeaf{typ: s.Value}, nil
		}
		return nil, invalid("%q: in %s needs a list trait, tags or identifiers on the right", x.String(), id.Value)
	}
	if name, ok := traitName(x.Right); ok { // "x" in traits.interests
		lit, ok := constant(x.Left)
		if !ok {
			return nil, invalid("%q: the element looked for in a list trait must be a constant", x.String())
		}
		return &traitLeaf{name: name, p: pred{op: opHas, lit: lit}}, nil
	}
	name, ok := traitName(x.Left)
	if !ok {
		return nil, invalid("%q: the left side of in must be a trait, or a string with tags / identifiers on the right", x.String())
	}
	switch r := x.Right.(type) {
	case *ast.ArrayNode:
		if len(r.Nodes) == 0 || len(r.Nodes) > 1000 {
			return nil, invalid("%q: a set must have 1 to 1000 values", x.String())
		}
		set := make([]any, 0, len(r.Nodes))
		for _, e := range r.Nodes {
			v, ok := constant(e)
			if !ok {
				return nil, invalid("%q: set values must be constants", x.String())
			}
			set = append(set, v)
		}
		return &traitLeaf{name: name, p: pred{op: opIn, set: set}}, nil
	case *ast.BinaryNode:
		if r.Operator == ".." {
			lo, lok := constant(r.Left)
			hi, hok := constant(r.Right)
			l, lf := lo.(float64)
			h, hf := hi.(float64)
			if !lok || !hok || !lf || !hf {
				return nil, invalid("%q: a range needs two numbers, as in 20..30", x.String())
			}
			if l > h {
				return nil, invalid("%q: the range is empty (%s > %s)", x.String(), fmtNum(l), fmtNum(h))
			}
			return &traitLeaf{name: name, p: pred{op: opIn, lo: l, hi: h, isRange: true}}, nil
		}
	}
	return nil, invalid("%q: in needs a list [a, b], a range lo..hi, tags or identifiers", x.String())
}

// call compiles an event-history function. alone: used as a condition by
// itself (only did_but_not is one; the others are numbers to compare).
func (c *exprCompiler) call(x *ast.CallNode, alone bool) (Node, error) {
	id, ok := x.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil, invalid("%q is not a known function", x.Callee.String())
	}
	str := func(i int, what string) (string, error) {
		if i >= len(x.Arguments) {
			return "", invalid("%s: missing %s", id.Value, what)
		}
		s, ok := x.Arguments[i].(*ast.StringNode)
		if !ok || strings.TrimSpace(s.Value) == "" {
			return "", invalid("%s: %s must be a non-empty string", id.Value, what)
		}
		return s.Value, nil
	}
	switch id.Value {
	case "did_but_not":
		if len(x.Arguments) != 3 {
			return nil, invalid("did_but_not takes 3 arguments: did_but_not(\"Added to Cart\", \"Order Completed\", \"7d\")")
		}
		a, err := str(0, "the first event name")
		if err != nil {
			return nil, err
		}
		b, err := str(1, "the second event name")
		if err != nil {
			return nil, err
		}
		ws, err := str(2, "the window")
		if err != nil {
			return nil, err
		}
		w, err := parseWindow(ws)
		if err != nil {
			return nil, invalid("did_but_not: %v", err)
		}
		if w == 0 {
			return nil, invalid("did_but_not needs a finite window such as \"7d\"")
		}
		if !alone {
			return nil, invalid("did_but_not is a condition by itself; it cannot be compared")
		}
		return &seqLeaf{did: a, not: b, window: w}, nil
	case metricCount, metricSum, metricDaysSince:
		if alone {
			return nil, invalid("%s returns a number: compare it, as in %s(\"Order Completed\", \"30d\") >= 2", id.Value, id.Value)
		}
		max := 3
		if id.Value == metricDaysSince {
			max = 1
		}
		if len(x.Arguments) < 1 || len(x.Arguments) > max {
			return nil, invalid("%s takes 1 to %d arguments: (event name[, window[, amount condition]])", id.Value, max)
		}
		ev, err := str(0, "the event name")
		if err != nil {
			return nil, err
		}
		leaf := &behLeaf{metric: id.Value, event: ev}
		if len(x.Arguments) > 1 {
			ws, err := str(1, "the window")
			if err != nil {
				return nil, err
			}
			if leaf.window, err = parseWindow(ws); err != nil {
				return nil, invalid("%s: %v", id.Value, err)
			}
		}
		if len(x.Arguments) > 2 {
			f, ok := x.Arguments[2].(*ast.BinaryNode)
			if !ok {
				return nil, invalid("%s: the third argument must compare amount with a number, as in amount > 500", id.Value)
			}
			lit, ok := constant(f.Right)
			amt, aok := f.Left.(*ast.IdentifierNode)
			num, nok := lit.(float64)
			if !ok || !aok || amt.Value != "amount" || !nok || flip[f.Operator] == "" {
				return nil, invalid("%s: the third argument must compare amount with a number, as in amount > 500", id.Value)
			}
			leaf.filter = &pred{op: f.Operator, lit: num}
		}
		return leaf, nil
	case "in_region":
		if len(x.Arguments) < 1 || len(x.Arguments) > 2 {
			return nil, invalid("in_region takes a province and optionally a city: in_region(\"广东\", \"深圳\")")
		}
		prov, err := str(0, "the province")
		if err != nil {
			return nil, err
		}
		n := Node(&traitLeaf{name: "province", p: pred{op: opPrefix, lit: prov}})
		if len(x.Arguments) == 2 {
			city, err := str(1, "the city")
			if err != nil {
				return nil, err
			}
			n = &andNode{kids: []Node{n, &traitLeaf{name: "city", p: pred{op: opPrefix, lit: city}}}}
		}
		return n, nil
	}
	return nil, invalid("unknown function %s: use event_count, event_sum, days_since_event, did_but_not or in_region", id.Value)
}

// reserved are the names that are not traits: a bare name is a trait, as
// in tag rules (revenue and traits.revenue are the same trait).
var reserved = map[string]bool{"tags": true, "identifiers": true, "traits": true}

// traitName recognises traits.x, traits["x y"] and a bare x.
func traitName(n ast.Node) (string, bool) {
	if id, ok := n.(*ast.IdentifierNode); ok && !reserved[id.Value] && id.Value != "" {
		return id.Value, true
	}
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return "", false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "traits" {
		return "", false
	}
	s, ok := m.Property.(*ast.StringNode)
	if !ok || s.Value == "" {
		return "", false
	}
	return s.Value, true
}

func constant(n ast.Node) (any, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.IntegerNode:
		return float64(x.Value), true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.BoolNode:
		return x.Value, true
	case *ast.UnaryNode:
		if x.Operator == "-" {
			if v, ok := constant(x.Node); ok {
				if f, ok := v.(float64); ok {
					return -f, true
				}
			}
		}
	}
	return nil, false
}

func flatten(n Node) Node {
	switch x := n.(type) {
	case *andNode:
		var kids []Node
		for _, k := range x.kids {
			if a, ok := k.(*andNode); ok {
				kids = append(kids, a.kids...)
			} else {
				kids = append(kids, k)
			}
		}
		x.kids = kids
	case *orNode:
		var kids []Node
		for _, k := range x.kids {
			if a, ok := k.(*orNode); ok {
				kids = append(kids, a.kids...)
			} else {
				kids = append(kids, k)
			}
		}
		x.kids = kids
	}
	return n
}

// Condition is the JSON condition tree the console's builder produces. One
// of All, Any, Not, Trait, Tag, Identifier, Event, Did or Region is set.
//
//	{"all": [...]} {"any": [...]} {"not": {...}}
//	{"trait": "age", "op": "between", "value": [20, 30]}
//	{"trait": "city", "op": "in", "value": ["北京市", "上海市"]}
//	{"tag": "vip"}  {"identifier": "email"}
//	{"event": "Order Completed", "metric": "count", "window": "30d",
//	 "where": {"op": ">", "value": 500}, "op": ">=", "value": 2}
//	{"did": "Added to Cart", "not_did": "Order Completed", "window": "7d"}
//	{"region": {"province": "广东", "city": "深圳"}}
type Condition struct {
	All        []Condition     `json:"all,omitempty"`
	Any        []Condition     `json:"any,omitempty"`
	Not        *Condition      `json:"not,omitempty"`
	Trait      string          `json:"trait,omitempty"`
	Tag        string          `json:"tag,omitempty"`
	Identifier string          `json:"identifier,omitempty"`
	Event      string          `json:"event,omitempty"`
	Metric     string          `json:"metric,omitempty"` // count (default), sum, days_since
	Window     string          `json:"window,omitempty"`
	Where      *Condition      `json:"where,omitempty"` // on the event's amount: op and value
	Did        string          `json:"did,omitempty"`
	NotDid     string          `json:"not_did,omitempty"`
	Region     *Region         `json:"region,omitempty"`
	Op         string          `json:"op,omitempty"`
	Value      json.RawMessage `json:"value,omitempty"`
}

// Region is a geographic condition on the province and city traits
// (prefixes, so "广东" matches "广东省").
type Region struct {
	Province string `json:"province"`
	City     string `json:"city,omitempty"`
}

// CompileCondition compiles a JSON condition tree to the same plan an
// expression compiles to.
func CompileCondition(c *Condition) (Node, error) {
	if c == nil {
		return nil, invalid("the condition is empty")
	}
	return compileCond(c, "condition", 0)
}

func compileCond(c *Condition, path string, depth int) (Node, error) {
	if depth > 64 {
		return nil, invalid("%s: nested too deeply", path)
	}
	set := 0
	for _, b := range []bool{c.All != nil, c.Any != nil, c.Not != nil, c.Trait != "", c.Tag != "", c.Identifier != "", c.Event != "", c.Did != "", c.Region != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, invalid("%s: exactly one of all, any, not, trait, tag, identifier, event, did, region must be set (found %d)", path, set)
	}
	kids := func(list []Condition, name string) ([]Node, error) {
		if len(list) == 0 {
			return nil, invalid("%s.%s: needs at least one condition", path, name)
		}
		out := make([]Node, len(list))
		for i := range list {
			n, err := compileCond(&list[i], fmt.Sprintf("%s.%s[%d]", path, name, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	switch {
	case c.All != nil:
		k, err := kids(c.All, "all")
		if err != nil {
			return nil, err
		}
		return flatten(&andNode{kids: k}), nil
	case c.Any != nil:
		k, err := kids(c.Any, "any")
		if err != nil {
			return nil, err
		}
		return flatten(&orNode{kids: k}), nil
	case c.Not != nil:
		k, err := compileCond(c.Not, path+".not", depth+1)
		if err != nil {
			return nil, err
		}
		return &notNode{kid: k}, nil
	case c.Tag != "":
		return &tagLeaf{name: c.Tag}, nil
	case c.Identifier != "":
		return &idLeaf{typ: c.Identifier}, nil
	case c.Region != nil:
		if c.Region.Province == "" {
			return nil, invalid("%s.region: province is required", path)
		}
		n := Node(&traitLeaf{name: "province", p: pred{op: opPrefix, lit: c.Region.Province}})
		if c.Region.City != "" {
			n = &andNode{kids: []Node{n, &traitLeaf{name: "city", p: pred{op: opPrefix, lit: c.Region.City}}}}
		}
		return n, nil
	case c.Did != "":
		if c.NotDid == "" {
			return nil, invalid("%s: did needs not_did (the event that should not follow)", path)
		}
		w, err := parseWindow(c.Window)
		if err != nil || w == 0 {
			return nil, invalid("%s: did/not_did needs a finite window such as \"7d\"", path)
		}
		return &seqLeaf{did: c.Did, not: c.NotDid, window: w}, nil
	case c.Event != "":
		metric := map[string]string{"": metricCount, "count": metricCount, "sum": metricSum, "days_since": metricDaysSince}[c.Metric]
		if metric == "" {
			return nil, invalid("%s: metric %q must be count, sum or days_since", path, c.Metric)
		}
		leaf := &behLeaf{metric: metric, event: c.Event}
		var err error
		if leaf.window, err = parseWindow(c.Window); err != nil {
			return nil, invalid("%s: %v", path, err)
		}
		if c.Where != nil {
			p, err := condPred(c.Where, path+".where")
			if err != nil {
				return nil, err
			}
			if _, num := p.lit.(float64); !num || p.op == opIn || p.op == opPrefix || p.op == opExists {
				return nil, invalid("%s.where: compare the amount with a number using ==, !=, <, <=, > or >=", path)
			}
			leaf.filter = &p
		}
		p, err := condPred(c, path)
		if err != nil {
			return nil, err
		}
		if _, num := p.lit.(float64); !num && !p.isRange {
			return nil, invalid("%s: the event %s is a number; compare it with a number", path, c.Metric)
		}
		if leaf.window > 0 && metric == metricCount && p.lit != nil && p.lit.(float64) > MaxRecent {
			return nil, invalid("%s: windowed counts keep the %d most recent events per name; the threshold is too large", path, MaxRecent)
		}
		leaf.p = p
		return leaf, nil
	}
	p, err := condPred(c, path)
	if err != nil {
		return nil, err
	}
	leaf := &traitLeaf{name: c.Trait, p: p}
	if c.Op == "not_exists" {
		return &notNode{kid: leaf}, nil
	}
	return leaf, nil
}

// condPred reads op and value of a condition.
func condPred(c *Condition, path string) (pred, error) {
	var v any
	if len(c.Value) > 0 {
		if err := json.Unmarshal(c.Value, &v); err != nil {
			return pred{}, invalid("%s: value is not valid JSON", path)
		}
	}
	scalar := func() (any, error) {
		switch x := v.(type) {
		case float64, string, bool:
			return x, nil
		}
		return nil, invalid("%s: op %q needs a number, string or boolean value", path, c.Op)
	}
	switch c.Op {
	case "==", "!=", "<", "<=", ">", ">=", "eq", "ne", "lt", "le", "gt", "ge":
		op := map[string]string{"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[c.Op]
		if op == "" {
			op = c.Op
		}
		lit, err := scalar()
		if err != nil {
			return pred{}, err
		}
		if _, isBool := lit.(bool); isBool && op != "==" && op != "!=" {
			return pred{}, invalid("%s: a boolean can only be compared with == or !=", path)
		}
		return pred{op: op, lit: lit}, nil
	case "in":
		list, ok := v.([]any)
		if !ok || len(list) == 0 || len(list) > 1000 {
			return pred{}, invalid("%s: op in needs a list of 1 to 1000 values", path)
		}
		for _, e := range list {
			switch e.(type) {
			case float64, string, bool:
			default:
				return pred{}, invalid("%s: op in takes numbers, strings or booleans", path)
			}
		}
		return pred{op: opIn, set: list}, nil
	case "between":
		list, ok := v.([]any)
		var lo, hi float64
		var lok, hok bool
		if ok && len(list) == 2 {
			lo, lok = list[0].(float64)
			hi, hok = list[1].(float64)
		}
		if !lok || !hok || lo > hi || math.IsNaN(lo) {
			return pred{}, invalid("%s: op between needs [low, high] numbers with low <= high", path)
		}
		return pred{op: opIn, lo: lo, hi: hi, isRange: true}, nil
	case "starts_with", "startsWith", "prefix":
		s, ok := v.(string)
		if !ok || s == "" {
			return pred{}, invalid("%s: op starts_with needs a non-empty string", path)
		}
		return pred{op: opPrefix, lit: s}, nil
	case "contains":
		lit, err := scalar()
		if err != nil {
			return pred{}, err
		}
		return pred{op: opHas, lit: lit}, nil
	case "exists", "not_exists":
		return pred{op: opExists}, nil
	}
	return pred{}, invalid("%s: op %q must be one of ==, !=, <, <=, >, >=, in, between, starts_with, contains, exists, not_exists", path, c.Op)
}
