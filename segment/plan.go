package segment

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A plan is the compiled form of a definition, whichever language it was
// written in. Leaves are conditions on one thing a profile has (a trait, a
// tag, an identifier type, a behaviour metric); inner nodes are and, or, not.
// Every leaf has three evaluations that must agree: by bitmap algebra over
// the index (eval), on one profile from the index's columns (the scan path,
// also used for explanations), and on a raw profile (match, the reference
// the property test checks the other two against).

// Node is a compiled condition.
type Node interface {
	// String renders the node in the expression language.
	String() string
	// deps lists the keys whose change can change the node's value
	// ("trait:age", "tag:vip", "event:Order Completed", "id:email").
	deps(add func(string))
	// timed reports whether the value can change with time alone.
	timed() bool
}

type andNode struct{ kids []Node }
type orNode struct{ kids []Node }
type notNode struct{ kid Node }

// constNode is a literal true or false.
type constNode struct{ v bool }

func (n *andNode) String() string { return joinKids(n.kids, " && ") }
func (n *orNode) String() string  { return joinKids(n.kids, " || ") }
func (n *notNode) String() string { return "!(" + n.kid.String() + ")" }
func (n *constNode) String() string {
	return strconv.FormatBool(n.v)
}

func joinKids(kids []Node, sep string) string {
	parts := make([]string, len(kids))
	for i, k := range kids {
		parts[i] = "(" + k.String() + ")"
	}
	return strings.Join(parts, sep)
}

func (n *andNode) deps(add func(string)) {
	for _, k := range n.kids {
		k.deps(add)
	}
}
func (n *orNode) deps(add func(string)) {
	for _, k := range n.kids {
		k.deps(add)
	}
}
func (n *notNode) deps(add func(string))   { n.kid.deps(add) }
func (n *constNode) deps(add func(string)) {}
func (n *andNode) timed() bool             { return anyTimed(n.kids) }
func (n *orNode) timed() bool              { return anyTimed(n.kids) }
func (n *notNode) timed() bool             { return n.kid.timed() }
func (n *constNode) timed() bool           { return false }

func anyTimed(kids []Node) bool {
	for _, k := range kids {
		if k.timed() {
			return true
		}
	}
	return false
}

// Operators of a predicate.
const (
	opEq     = "=="
	opNe     = "!="
	opLt     = "<"
	opLe     = "<="
	opGt     = ">"
	opGe     = ">="
	opIn     = "in"
	opPrefix = "startsWith"
	opExists = "exists"
	opHas    = "contains" // a list trait holds the element
)

// pred is a test on one value. Semantics, shared by every evaluation path:
// a missing value (nil) satisfies nothing but "not exists"; comparisons need
// the literal's type (a string "30" is not the number 30); != holds for a
// present value of any other value or type.
type pred struct {
	op  string
	lit any   // float64, string or bool
	set []any // opIn
	// lo/hi bound an opIn over a numeric range (`x in 20..30`, inclusive).
	lo, hi  float64
	isRange bool
}

func (p pred) String() string {
	switch p.op {
	case opExists:
		return "!= nil"
	case opIn:
		if p.isRange {
			return fmt.Sprintf("in %s..%s", fmtNum(p.lo), fmtNum(p.hi))
		}
		parts := make([]string, len(p.set))
		for i, v := range p.set {
			parts[i] = literal(v)
		}
		return "in [" + strings.Join(parts, ", ") + "]"
	}
	return p.op + " " + literal(p.lit)
}

func literal(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return fmtNum(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// fmtNum prints a number as a person writes it, in plans, explanation
// clauses and messages a marketer reads: a whole number in digits
// (13800138000, not 1.3800138e+10), a fraction in its shortest decimal
// form (0.25, -5.5), each the same float64 read back. The exponent form
// is kept where digits would not serve: from 2^63 on, where expr-lang
// reads a number without a point or exponent as an int64 and refuses the
// overflow (the plan must parse: the API masks its literals by parsing
// it, internal/exprlit), and below 1e-6 (0.0000001 is read less easily
// than 1e-07); NaN and infinities as strconv writes them.
func fmtNum(f float64) string {
	if a := math.Abs(f); a < 1<<63 && (a >= 1e-6 || a == 0) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// normalize turns a decoded JSON value into the kinds predicates know:
// all numbers become float64.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case float32:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// test applies p to v.
func (p pred) test(v any) bool {
	v = normalize(v)
	if v == nil {
		return false
	}
	switch p.op {
	case opExists:
		return true
	case opEq:
		return equal(v, p.lit)
	case opNe:
		return !equal(v, p.lit)
	case opLt, opLe, opGt, opGe:
		c, ok := compare(v, p.lit)
		if !ok {
			return false
		}
		switch p.op {
		case opLt:
			return c < 0
		case opLe:
			return c <= 0
		case opGt:
			return c > 0
		}
		return c >= 0
	case opIn:
		if p.isRange {
			f, ok := v.(float64)
			return ok && f >= p.lo && f <= p.hi
		}
		for _, s := range p.set {
			if equal(v, s) {
				return true
			}
		}
		return false
	case opPrefix:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, p.lit.(string))
	case opHas:
		list, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range list {
			if equal(normalize(e), p.lit) {
				return true
			}
		}
		return false
	}
	return false
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// compare orders two values of the same kind (numbers, or strings
// lexically, which orders ISO dates).
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok || math.IsNaN(x) {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// traitLeaf: a condition on one trait's value.
type traitLeaf struct {
	name string
	p    pred
}

func (n *traitLeaf) String() string {
	if n.p.op == opHas {
		return literal(n.p.lit) + " in " + traitRef(n.name)
	}
	if n.p.op == opPrefix {
		return traitRef(n.name) + " startsWith " + literal(n.p.lit)
	}
	return traitRef(n.name) + " " + n.p.String()
}
func (n *traitLeaf) deps(add func(string)) { add("trait:" + n.name) }
func (n *traitLeaf) timed() bool           { return false }

func traitRef(name string) string {
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "traits[" + strconv.Quote(name) + "]"
		}
	}
	return "traits." + name
}

// tagLeaf: the profile carries the tag.
type tagLeaf struct{ name string }

func (n *tagLeaf) String() string        { return strconv.Quote(n.name) + " in tags" }
func (n *tagLeaf) deps(add func(string)) { add("tag:" + n.name) }
func (n *tagLeaf) timed() bool           { return false }

// idLeaf: the profile has an identifier of the type.
type idLeaf struct{ typ string }

func (n *idLeaf) String() string        { return strconv.Quote(n.typ) + " in identifiers" }
func (n *idLeaf) deps(add func(string)) { add("id:" + n.typ) }
func (n *idLeaf) timed() bool           { return false }

// Behaviour metrics.
const (
	metricCount     = "event_count"      // number of events (in a window, matching a filter)
	metricSum       = "event_sum"        // sum of their amounts
	metricDaysSince = "days_since_event" // days since the latest one
)

// behLeaf: a condition on a metric of one event name's history.
type behLeaf struct {
	metric string
	event  string
	window time.Duration // 0: all time (count uses the exact total)
	filter *pred         // on the event's amount; nil: every event
	p      pred
}

func (n *behLeaf) String() string {
	var b strings.Builder
	b.WriteString(n.metric + "(" + strconv.Quote(n.event))
	if n.window > 0 || n.filter != nil {
		b.WriteString(", " + strconv.Quote(fmtWindow(n.window)))
	}
	if n.filter != nil {
		b.WriteString(", amount " + n.filter.String())
	}
	b.WriteString(") " + n.p.String())
	return b.String()
}
func (n *behLeaf) deps(add func(string)) { add("event:" + n.event) }
func (n *behLeaf) timed() bool           { return n.window > 0 || n.metric == metricDaysSince }

// seqLeaf: "did A but not B within the window": the profile's latest A is
// within the window and no B happened at or after it.
type seqLeaf struct {
	did, not string
	window   time.Duration
}

func (n *seqLeaf) String() string {
	return fmt.Sprintf("did_but_not(%q, %q, %q)", n.did, n.not, fmtWindow(n.window))
}
func (n *seqLeaf) deps(add func(string)) { add("event:" + n.did); add("event:" + n.not) }
func (n *seqLeaf) timed() bool           { return true }

func fmtWindow(d time.Duration) string {
	if d == 0 {
		return "all"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// parseWindow reads "30d", "12h", "90m", "2w" or "all".
func parseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "all" || s == "" {
		return 0, nil
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	u, ok := unit[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n <= 0 || n > 100000 {
		return 0, fmt.Errorf("window %q must be a positive number followed by m, h, d or w (e.g. \"30d\"), or \"all\"", s)
	}
	d := time.Duration(n) * u
	if d > 20*365*24*time.Hour {
		return 0, fmt.Errorf("window %q is longer than 20 years", s)
	}
	return d, nil
}

// Deps returns the sorted keys a plan depends on.
func Deps(n Node) []string {
	seen := map[string]bool{}
	var out []string
	n.deps(func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	})
	sort.Strings(out)
	return out
}

// Timed reports whether a plan's value can change with time alone, so that
// its segment needs re-evaluation on a schedule.
func Timed(n Node) bool { return n.timed() }
