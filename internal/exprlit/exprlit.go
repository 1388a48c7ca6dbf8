// Package exprlit finds the literals an expression (expr-lang syntax, as
// tag rules, computed-trait filters and segments write them) compares a
// field with, and masks them in the expression's text.
//
// A literal is a value: `traits.id_number == "110101…"` shows an ID number
// to whoever may read the rule. The API masks such literals for a caller
// whose clearance is below the field's level (issue 15), and refuses to
// save a rule that compares a field with a mask.
package exprlit

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// Literal is a value an expression compares a field with: a string, or a
// number compared with the field itself (`phone == 13800138000`).
type Literal struct {
	Field  string // a trait or property name
	Value  string // a string's value; a number's
	Number bool   // a number (a threshold, unless the field is an identifier)
	loc    file.Location
}

// roots name containers whose members are fields: traits.x, properties.x,
// identifiers.x, $env["x"]; # (a predicate's element) is one too.
var roots = map[string]bool{"traits": true, "properties": true, "identifiers": true, "$env": true}

// Fields lists the fields an expression reads anywhere (not only in
// comparisons), sorted: bare names, members of traits, properties,
// identifiers and $env at any depth (traits.contact.phone reads contact and
// phone), and the names a predicate's element is read by (#.phone). The API
// checks them against the caller's clearance.
func Fields(src string) ([]string, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, err
	}
	f := newFinder(tree.Node)
	return f.fields(tree.Node), nil
}

// Find lists the literals an expression compares a field with, in the
// order they are written (a literal compared with two fields is listed
// once for each).
func Find(src string) ([]Literal, error) {
	lits, err := found(src)
	return slices.Clone(lits), err
}

// cache keeps what found found in the texts it was asked about: the same
// stored rules are shown on every GET /v1/tags, and parsing them again
// each time cost ten times the rest of the answer (docs/privacy.md). A
// text's literals depend on the text alone, so an entry is never stale;
// the cache is emptied when it holds maxCached texts, and a text longer
// than maxCachedLen is not kept (at most about 4 MiB of texts, whatever
// is defined).
var cache struct {
	sync.Mutex
	m map[string]cached
}

type cached struct {
	lits []Literal
	err  error
}

const maxCached, maxCachedLen = 1024, 4096

// found is Find without the copy: callers do not change the slice.
func found(src string) ([]Literal, error) {
	cache.Lock()
	c, ok := cache.m[src]
	cache.Unlock()
	if ok {
		return c.lits, c.err
	}
	c.lits, c.err = parse(src)
	if len(src) <= maxCachedLen {
		cache.Lock()
		if cache.m == nil || len(cache.m) >= maxCached {
			cache.m = map[string]cached{}
		}
		cache.m[src] = c
		cache.Unlock()
	}
	return c.lits, c.err
}

// parse is found without the cache.
func parse(src string) ([]Literal, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, err
	}
	return newFinder(tree.Node).find(), nil
}

// Mask returns src with each literal that hide masks replaced by the mask,
// quoted; the rest of the text is kept as written. hide is asked for each
// literal (a literal compared with several fields, once per field in
// order, until one hides it). An expression that does not parse is
// returned as it is, with ok false: there are no literals to find in it.
func Mask(src string, hide func(Literal) (mask string, hidden bool)) (out string, ok bool) {
	lits, err := found(src)
	if err != nil {
		return src, false
	}
	masks := map[file.Location]string{}
	for _, l := range lits {
		if _, done := masks[l.loc]; done {
			continue
		}
		if m, hidden := hide(l); hidden {
			masks[l.loc] = m
		}
	}
	if len(masks) == 0 {
		return src, true
	}
	// Replaced from the end, so that earlier offsets (runes) stay valid.
	locs := make([]file.Location, 0, len(masks))
	for loc := range masks {
		locs = append(locs, loc)
	}
	sort.Slice(locs, func(i, j int) bool { return locs[i].From > locs[j].From })
	rs := []rune(src)
	for i, loc := range locs {
		if loc.From < 0 || loc.To > len(rs) || loc.From >= loc.To || (i > 0 && loc.To > locs[i-1].From) {
			return printed(src, masks), true
		}
		q := []rune(strconv.Quote(masks[loc]))
		rs = append(rs[:loc.From], append(q, rs[loc.To:]...)...)
	}
	out = string(rs)
	// The text must still say the same thing with the masks in place: a
	// literal found at another offset than expected is caught here, and
	// the expression is then shown as printed from its tree. The masked
	// text is not kept in found's cache: it is not asked about again (a
	// Masker keeps the result), and it would take the place of a stored
	// text (a segment's plan and expression, masked, were four entries).
	if again, err := parse(out); err != nil || leaks(again, hide) {
		return printed(src, masks), true
	}
	return out, true
}

// Masker masks literals with one mask function and remembers the texts
// it made: the same stored rules are shown on every GET /v1/tags, to
// callers whose clearances hide the same few sets of fields. What it made
// depends on the text and the set of hidden fields alone (mask must
// depend on the literal alone), so a result is never stale; the memory is
// bounded as found's cache is.
type Masker struct {
	mask func(Literal) (string, bool)
	mu   sync.Mutex
	made map[string]string
}

// NewMasker returns a masker that masks a hidden field's literal l as
// mask(l) (false: l is left as written, a threshold say).
func NewMasker(mask func(Literal) (string, bool)) *Masker {
	return &Masker{mask: mask, made: map[string]string{}}
}

// Mask is Mask for the literals of the fields hidden says the caller may
// not see (asked once a field and text).
func (m *Masker) Mask(src string, hidden func(field string) bool) (string, bool) {
	lits, err := found(src)
	if err != nil {
		return src, false
	}
	var key strings.Builder
	for i, l := range lits {
		if slices.ContainsFunc(lits[:i], func(x Literal) bool { return x.Field == l.Field }) || !hidden(l.Field) {
			continue
		}
		key.WriteString(l.Field)
		key.WriteByte(0)
	}
	if key.Len() == 0 {
		return src, true
	}
	key.WriteByte(0)
	key.WriteString(src)
	m.mu.Lock()
	out, ok := m.made[key.String()]
	m.mu.Unlock()
	if ok {
		return out, true
	}
	out, _ = Mask(src, func(l Literal) (string, bool) {
		if !hidden(l.Field) {
			return "", false
		}
		return m.mask(l)
	})
	if len(src) <= maxCachedLen {
		m.mu.Lock()
		if len(m.made) >= maxCached {
			m.made = map[string]string{}
		}
		m.made[key.String()] = out
		m.mu.Unlock()
	}
	return out, true
}

// leaks reports whether a literal that hide masks is still unmasked.
func leaks(lits []Literal, hide func(Literal) (string, bool)) bool {
	for _, l := range lits {
		if m, hidden := hide(l); hidden && m != l.Value {
			return true
		}
	}
	return false
}

// printed is the expression printed from its tree with the masked literals
// replaced (expr's printer: the meaning is kept, the layout is not).
func printed(src string, masks map[file.Location]string) string {
	tree, err := parser.Parse(src)
	if err != nil {
		return src // found parsed it: not reached
	}
	p := &patcher{masks: masks}
	ast.Walk(&tree.Node, p)
	return tree.Node.String()
}

type patcher struct{ masks map[file.Location]string }

func (p *patcher) Visit(n *ast.Node) {
	loc := (*n).Location()
	if u, ok := (*n).(*ast.UnaryNode); ok {
		// A negative number's literal spans its sign (see literals).
		if m, ok := p.masks[file.Location{From: loc.From, To: u.Node.Location().To}]; ok {
			ast.Patch(n, &ast.StringNode{Value: m})
		}
		return
	}
	switch (*n).(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode:
		if m, ok := p.masks[loc]; ok {
			ast.Patch(n, &ast.StringNode{Value: m})
		}
	}
}

// finder knows what the names of one expression stand for.
type finder struct {
	nodes   []ast.Node                    // parents before their children
	lets    map[string]ast.Node           // let x = …: x's value
	ptr     map[*ast.PointerNode][]string // #: the fields of its predicate's subject
	callees map[ast.Node]bool             // f in f(…): a function, not a field
	props   map[ast.Node]bool             // x in a.x, "x" in a["x"]: a name, not a value
}

type collect struct{ out *[]ast.Node }

func (c collect) Visit(n *ast.Node) { *c.out = append(*c.out, *n) }

func newFinder(root ast.Node) *finder {
	f := &finder{lets: map[string]ast.Node{}, ptr: map[*ast.PointerNode][]string{},
		callees: map[ast.Node]bool{}, props: map[ast.Node]bool{}}
	var post []ast.Node
	ast.Walk(&root, collect{&post})
	for i := len(post) - 1; i >= 0; i-- {
		f.nodes = append(f.nodes, post[i])
	}
	for _, n := range f.nodes {
		switch x := n.(type) {
		case *ast.VariableDeclaratorNode:
			f.lets[x.Name] = x.Value
		case *ast.CallNode:
			f.callees[x.Callee] = true
		case *ast.MemberNode:
			f.props[x.Property] = true
		}
	}
	// An outer predicate before an inner one: the inner one's subject may
	// be the outer #, and its own # is then set last.
	for _, n := range f.nodes {
		b, ok := n.(*ast.BuiltinNode)
		if !ok || len(b.Arguments) < 2 {
			continue
		}
		subject := f.fields(b.Arguments[0])
		for _, a := range b.Arguments[1:] {
			if p, ok := a.(*ast.PredicateNode); ok {
				var in []ast.Node
				ast.Walk(&p.Node, collect{&in})
				for _, x := range in {
					if pn, ok := x.(*ast.PointerNode); ok {
						f.ptr[pn] = subject
					}
				}
			}
		}
	}
	return f
}

// fields lists the fields n reads, sorted.
func (f *finder) fields(n ast.Node) []string {
	seen := map[string]bool{}
	f.addFields(n, seen, 0)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *finder) addFields(n ast.Node, seen map[string]bool, depth int) {
	if n == nil || depth > 16 { // let chains deeper than this are not followed
		return
	}
	var in []ast.Node
	ast.Walk(&n, collect{&in})
	for _, x := range in {
		switch v := x.(type) {
		case *ast.IdentifierNode:
			if roots[v.Value] || f.callees[x] {
				continue
			}
			if val, ok := f.lets[v.Value]; ok {
				f.addFields(val, seen, depth+1)
				continue
			}
			seen[v.Value] = true
		case *ast.PointerNode:
			for _, s := range f.ptr[v] {
				seen[s] = true
			}
		case *ast.MemberNode:
			if s, ok := v.Property.(*ast.StringNode); ok && f.rooted(v) && s.Value != "" {
				seen[s.Value] = true
			}
		}
	}
}

// rooted reports whether a member chain starts at traits, properties,
// identifiers, $env or #.
func (f *finder) rooted(m *ast.MemberNode) bool {
	var n ast.Node = m
	for {
		switch v := n.(type) {
		case *ast.MemberNode:
			n = v.Node
		case *ast.ChainNode:
			n = v.Node
		case *ast.IdentifierNode:
			return roots[v.Value]
		case *ast.PointerNode:
			return true
		default:
			return false
		}
	}
}

// direct reports whether n is a field itself, not a function of it: only
// then is a number it is compared with one of its values.
func (f *finder) direct(n ast.Node) bool { return f.directAt(n, 0) }

func (f *finder) directAt(n ast.Node, depth int) bool {
	if depth > 16 {
		return false
	}
	switch v := n.(type) {
	case *ast.IdentifierNode:
		if val, ok := f.lets[v.Value]; ok {
			return f.directAt(val, depth+1)
		}
		return !roots[v.Value]
	case *ast.PointerNode:
		return true
	case *ast.MemberNode:
		return f.rooted(v)
	case *ast.ChainNode:
		return f.directAt(v.Node, depth+1)
	}
	return false
}

// logical operators join conditions: their sides are not compared.
var logical = map[string]bool{"&&": true, "||": true, "and": true, "or": true}

func (f *finder) find() []Literal {
	var out []Literal
	seen := map[[2]any]bool{}
	add := func(fields []string, lits []Literal) {
		for _, l := range lits {
			for _, fd := range fields {
				k := [2]any{fd, l.loc}
				if !seen[k] {
					seen[k] = true
					out = append(out, Literal{Field: fd, Value: l.Value, Number: l.Number, loc: l.loc})
				}
			}
		}
	}
	// pair: the literals of one side are compared with the fields the
	// other reads.
	pair := func(side, other ast.Node) {
		fs := f.fields(other)
		if len(fs) == 0 {
			return
		}
		add(fs, f.literals(side, f.direct(other)))
	}
	for _, n := range f.nodes {
		switch x := n.(type) {
		case *ast.BinaryNode:
			if logical[x.Operator] {
				continue
			}
			pair(x.Right, x.Left)
			pair(x.Left, x.Right)
		case *ast.CallNode:
			f.args(x.Arguments, add)
		case *ast.BuiltinNode:
			f.args(x.Arguments, add)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].loc.From < out[j].loc.From })
	return out
}

// args: hasPrefix(phone, "138"), indexOf(email, "zhang"): the literals
// among a call's arguments are compared with the fields the others read.
// A predicate is left to its own comparisons (# startsWith "138").
func (f *finder) args(args []ast.Node, add func([]string, []Literal)) {
	for i, a := range args {
		if _, ok := a.(*ast.PredicateNode); ok {
			continue
		}
		fs := f.fields(a)
		if len(fs) == 0 {
			continue
		}
		for j, b := range args {
			if j == i {
				continue
			}
			if _, ok := b.(*ast.PredicateNode); ok {
				continue
			}
			add(fs, f.literals(b, false))
		}
	}
}

// literals lists the literals n stands for: a string, a list of them
// (`in ["…", "…"]`), a range's bounds, either branch of a condition, the arguments of a call
// (trim("…")), a concatenation, a let variable's value; numbers only when
// compared with the field itself. A comparison or a member's name inside n is not one of them.
func (f *finder) literals(n ast.Node, numbers bool) []Literal {
	var out []Literal
	depth := 0
	var walk func(ast.Node)
	walk = func(n ast.Node) {
		if n == nil || f.props[n] {
			return
		}
		switch v := n.(type) {
		case *ast.IdentifierNode:
			// let x = "…"; phone == x: the literal is where x is declared.
			if val, ok := f.lets[v.Value]; ok && depth < 16 {
				depth++
				walk(val)
				depth--
			}
		case *ast.StringNode:
			out = append(out, Literal{Value: v.Value, loc: v.Location()})
		case *ast.IntegerNode, *ast.FloatNode:
			if numbers {
				out = append(out, Literal{Value: number(v), Number: true, loc: v.Location()})
			}
		case *ast.UnaryNode:
			if (v.Operator == "-" || v.Operator == "+") && numbers {
				switch v.Node.(type) {
				case *ast.IntegerNode, *ast.FloatNode:
					loc := file.Location{From: v.Location().From, To: v.Node.Location().To}
					out = append(out, Literal{Value: v.Operator + number(v.Node), Number: true, loc: loc})
					return
				}
			}
			walk(v.Node)
		case *ast.ArrayNode:
			for _, e := range v.Nodes {
				walk(e)
			}
		case *ast.ConditionalNode:
			walk(v.Exp1)
			walk(v.Exp2)
		case *ast.BinaryNode:
			// A range's bounds are numbers of the field too: phone in
			// 13800000000..13899999999 says its prefix.
			if v.Operator == "+" || v.Operator == "??" || v.Operator == ".." {
				walk(v.Left)
				walk(v.Right)
			}
		case *ast.CallNode:
			for _, a := range v.Arguments {
				walk(a)
			}
		case *ast.BuiltinNode:
			for _, a := range v.Arguments {
				walk(a)
			}
		}
	}
	walk(n)
	return out
}

// number is a number literal's value as text.
func number(n ast.Node) string {
	switch v := n.(type) {
	case *ast.IntegerNode:
		return strconv.Itoa(v.Value)
	case *ast.FloatNode:
		return strconv.FormatFloat(v.Value, 'f', -1, 64)
	}
	return ""
}
