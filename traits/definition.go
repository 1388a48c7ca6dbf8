package traits

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/exprcmp"
	"github.com/portrait-cdp/portrait/internal/exprcost"
)

// Aggregates a computed trait may use.
const (
	AggCount         = "count"
	AggSum           = "sum"
	AggAvg           = "avg"
	AggMin           = "min"
	AggMax           = "max"
	AggFirst         = "first"
	AggLast          = "last"
	AggMostFrequent  = "most_frequent"
	AggUnique        = "unique"
	AggDistinctCount = "distinct_count"
)

var aggregates = []string{AggCount, AggSum, AggAvg, AggMin, AggMax, AggFirst, AggLast, AggMostFrequent, AggUnique, AggDistinctCount}

// Definition declares a computed trait: an aggregate of an event property
// over a profile's matching events, all time or in a sliding window.
type Definition struct {
	Name string `json:"name"`
	// Aggregate is one of count, sum, avg, min, max, first, last,
	// most_frequent, unique, distinct_count.
	Aggregate string `json:"aggregate"`
	// Event restricts to track events of this name; empty means any event.
	Event string `json:"event,omitempty"`
	// Type restricts to an event type (track, page, ...); empty means any.
	Type string `json:"type,omitempty"`
	// Property is the aggregated properties field (not needed for count).
	Property string `json:"property,omitempty"`
	// Filter is an expression over event, type, source and properties
	// that an event must satisfy, e.g. `properties.revenue > 100`.
	Filter string `json:"filter,omitempty"`
	// Window is a sliding window such as "90d", "12h", "4w"; empty means
	// all time. It is kept in 64 time buckets of width w = window/64
	// (rounded up to a microsecond, at least one second), aligned to
	// multiples of w since the Unix epoch. As of a time now, the value
	// covers the buckets that end after now − window: every event of the
	// window, and those of the one bucket that straddles its start, so at
	// most w more history. It is exact when now − window falls on a
	// bucket edge. Buckets are also dropped as newer events arrive,
	// relative to the latest one, so a value evaluated at a time before a
	// profile's latest event (dated in the future) may miss older events.
	Window         string    `json:"window,omitempty"`
	Dimension      string    `json:"dimension,omitempty"`
	Classification string    `json:"classification,omitempty"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// filterEnv is what a filter expression sees of an event.
func filterEnv() map[string]any {
	return map[string]any{"event": "", "type": "", "source": "", "properties": map[string]any{}}
}

// compiled is a validated definition ready for the hot path.
type compiled struct {
	Definition
	window time.Duration
	span   int64 // window in µs
	width  int64 // of the window's buckets, µs; 0: all time
	// latest: the aggregate's provenance is its latest event (count,
	// sum, avg, unique, distinct_count), which a window keeps.
	latest bool
	filter *vm.Program
	// quick evaluates the filter without the VM when it can (see quick).
	quick func(props map[string]any) (match, known bool)
	// quickProp and quickValue are quick as a test of the one property
	// it reads, which an event then looks up once for every definition.
	quickProp  string
	quickValue func(v any) (match, known bool)
	// prop and qprop number Property and quickProp among the properties
	// the definitions read (see index); -1: none.
	prop, qprop int
}

// ParseWindow reads "90d", "4w", "12h" or any Go duration.
func ParseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if u, ok := unit[s[len(s)-1]]; ok {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("window %q: want a number of days (90d), weeks (4w) or a duration (12h)", s)
		}
		return time.Duration(n * float64(u)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("window %q: want a number of days (90d), weeks (4w) or a duration (12h)", s)
	}
	return d, nil
}

// Compile validates d. Errors are EINVALID with a message fit for a client.
func (d Definition) compile() (*compiled, error) {
	bad := func(format string, a ...any) error {
		return portrait.Errorf(portrait.EINVALID, "computed trait %q: %s", d.Name, fmt.Sprintf(format, a...))
	}
	if !nameRE.MatchString(d.Name) {
		return nil, portrait.Errorf(portrait.EINVALID, "computed trait name %q: use lower case letters, digits and _, starting with a letter (at most 64)", d.Name)
	}
	if _, ok := builtinFields[d.Name]; ok {
		return nil, bad("the name is taken by a built-in trait")
	}
	valid := false
	for _, a := range aggregates {
		valid = valid || a == d.Aggregate
	}
	if !valid {
		return nil, bad("aggregate %q is not one of %s", d.Aggregate, strings.Join(aggregates, ", "))
	}
	if d.Aggregate != AggCount && strings.TrimSpace(d.Property) == "" {
		return nil, bad("aggregate %s needs a property", d.Aggregate)
	}
	switch d.Type {
	case "", portrait.EventIdentify, portrait.EventTrack, portrait.EventPage, portrait.EventScreen, portrait.EventGroup, portrait.EventAlias:
	default:
		return nil, bad("type %q is not an event type", d.Type)
	}
	if d.Event != "" && d.Type == "" {
		d.Type = portrait.EventTrack
	}
	w, err := ParseWindow(d.Window)
	if err != nil {
		return nil, bad("%v", err)
	}
	if d.Window != "" && w <= 0 {
		return nil, bad("window %q must be positive; leave it out for all time", d.Window)
	}
	if d.Dimension == "" {
		d.Dimension = DimBehaviour
	}
	if !validDimension(d.Dimension) {
		return nil, bad("dimension %q is not one of %s", d.Dimension, strings.Join(Dimensions, ", "))
	}
	if d.Classification == "" {
		d.Classification = ClassInternal
	}
	if !validClassification(d.Classification) {
		return nil, bad("classification %q is not one of %s", d.Classification, strings.Join(Classifications, ", "))
	}
	c := &compiled{Definition: d, window: w, prop: -1, qprop: -1}
	switch d.Aggregate {
	case AggCount, AggSum, AggAvg, AggUnique, AggDistinctCount:
		c.latest = true
	}
	if w > 0 {
		c.span, c.width = int64(w/time.Microsecond), bucketWidth(w)
	}
	if strings.TrimSpace(d.Filter) != "" {
		// Evaluated for every event: its cost is bounded here.
		if err := exprcost.Check(d.Filter, exprcost.Max); err != nil {
			return nil, bad("filter: %v", err)
		}
		c.filter, err = expr.Compile(d.Filter, expr.Env(filterEnv()), expr.AsBool())
		if err != nil {
			return nil, bad("filter: %v", err)
		}
		if name, f := quick(d.Filter); f != nil {
			c.quickProp, c.quickValue = name, f
			c.quick = func(props map[string]any) (bool, bool) { return f(props[name]) }
		}
	}
	return c, nil
}

// quick recognises the commonest filter, a property compared with a
// literal (`properties.revenue > 100`, `properties.plan == "pro"`), and
// returns the property and a function that evaluates the filter on its
// value without the VM for the values such a filter is written for: a
// number against a number, a string against a string. For any other value
// it answers known = false, and the VM, which defines what a filter means,
// decides.
func quick(src string) (string, func(v any) (bool, bool)) {
	tree, err := parser.Parse(src)
	if err != nil {
		return "", nil
	}
	b, ok := tree.Node.(*ast.BinaryNode)
	if !ok {
		return "", nil
	}
	m, ok := b.Left.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return "", nil
	}
	if id, ok := m.Node.(*ast.IdentifierNode); !ok || id.Value != "properties" {
		return "", nil
	}
	key, ok := m.Property.(*ast.StringNode)
	if !ok {
		return "", nil
	}
	name, op := key.Value, b.Operator
	cmp := func(c int) bool { return exprcmp.Holds(op, c) }
	switch op {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return "", nil
	}
	var n float64
	switch r := b.Right.(type) {
	case *ast.IntegerNode:
		if r.Value > 1<<53 || r.Value < -1<<53 {
			return "", nil // not exact as a float
		}
		n = float64(r.Value)
	case *ast.FloatNode:
		n = r.Value
	case *ast.StringNode:
		if op != "==" && op != "!=" {
			return "", nil
		}
		s := r.Value
		return name, func(x any) (bool, bool) {
			v, ok := x.(string)
			if !ok {
				return false, false
			}
			return (v == s) == (op == "=="), true
		}
	default:
		return "", nil
	}
	return name, func(x any) (bool, bool) {
		v, ok := x.(float64)
		if !ok || v != v {
			return false, false
		}
		switch {
		case v < n:
			return cmp(-1), true
		case v > n:
			return cmp(1), true
		}
		return cmp(0), true
	}
}

// Validate checks d and returns it with defaults filled in.
func (d Definition) Validate() (Definition, error) {
	c, err := d.compile()
	if err != nil {
		return d, err
	}
	return c.Definition, nil
}

// valueType is the schema type of the trait d produces.
func (d Definition) valueType() string {
	switch d.Aggregate {
	case AggCount, AggSum, AggAvg, AggMin, AggMax, AggDistinctCount:
		return TypeNumber
	case AggUnique:
		return TypeList
	case AggMostFrequent:
		return TypeString
	}
	return TypeAny
}

// Reads lists the event properties a definition reads: its Property and
// every properties.x (or properties["x"]) its Filter tests. The API checks
// them against the definer's clearance (a property is classified as the
// trait of its name): a computed trait over a field the definer may not
// see would reveal it.
func (d Definition) Reads() []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if p := strings.TrimSpace(d.Property); p != "" {
		add(p)
		if first, _, ok := strings.Cut(p, "."); ok {
			add(first)
		}
	}
	if strings.TrimSpace(d.Filter) != "" {
		if tree, err := parser.Parse(d.Filter); err == nil {
			r := &propReads{add: add}
			ast.Walk(&tree.Node, r)
		}
	}
	return out
}

type propReads struct{ add func(string) }

func (r *propReads) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok {
		return
	}
	if id, ok := m.Node.(*ast.IdentifierNode); !ok || id.Value != "properties" {
		return
	}
	if s, ok := m.Property.(*ast.StringNode); ok {
		r.add(s.Value)
	}
}
