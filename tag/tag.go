// Package tag keeps the tag taxonomy (dimension → category → tag, with
// Chinese and English names) and evaluates rule tags: expressions over a
// profile's traits (github.com/expr-lang/expr), type-checked against the
// trait schema when they are defined, so that a typo is an error at
// creation rather than a tag that silently never holds.
//
// The Enricher evaluates every tag in Finish, after the traits enricher,
// from the profile's traits alone. The time a tag was gained is taken from
// the provenance of the traits it reads when it is gained, and kept for as
// long as the tag holds.
package tag

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait/internal/exprcost"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/traits"
)

// Definition is one version of a rule tag.
type Definition struct {
	Name        string `json:"name"`
	Dimension   string `json:"dimension"`
	Category    string `json:"category,omitempty"`
	NameZh      string `json:"name_zh,omitempty"`
	NameEn      string `json:"name_en,omitempty"`
	Description string `json:"description,omitempty"`
	// Expression is a boolean rule over traits, e.g.
	// `revenue > 1000 && days_since_last_purchase < 90`.
	Expression string    `json:"expression"`
	Version    int       `json:"version"`
	Deleted    bool      `json:"deleted,omitempty"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// Compiled is a checked definition ready to run.
type Compiled struct {
	Definition
	program *vm.Program
	refs    []string // traits the expression reads
}

// extra names every expression may use besides traits.
var extra = map[string]any{"event_count": 0.0}

func sample(typ string) any {
	switch typ {
	case traits.TypeNumber:
		return 0.0
	case traits.TypeString, traits.TypeTime:
		return ""
	case traits.TypeBoolean:
		return false
	case traits.TypeList:
		return []any{}
	case traits.TypeObject:
		return map[string]any{}
	}
	return nil
}

// Normalize fills defaults and checks the fields other than the expression.
func (d Definition) Normalize() (Definition, error) {
	d.Name = strings.TrimSpace(d.Name)
	if d.Name == "" || len([]rune(d.Name)) > 64 || strings.IndexFunc(d.Name, unicode.IsControl) >= 0 {
		return d, portrait.Errorf(portrait.EINVALID, "tag name must be 1 to 64 characters without control characters")
	}
	if d.Dimension == "" {
		return d, portrait.Errorf(portrait.EINVALID, "tag %q needs a dimension: one of %s", d.Name, strings.Join(traits.Dimensions, ", "))
	}
	ok := false
	for _, x := range traits.Dimensions {
		ok = ok || x == d.Dimension
	}
	if !ok {
		return d, portrait.Errorf(portrait.EINVALID, "tag %q: dimension %q is not one of %s", d.Name, d.Dimension, strings.Join(traits.Dimensions, ", "))
	}
	d.Category = strings.TrimSpace(d.Category)
	if d.Category == "" {
		d.Category = "general"
	}
	if d.NameZh == "" {
		d.NameZh = d.Name
	}
	if d.NameEn == "" {
		d.NameEn = d.Name
	}
	if strings.TrimSpace(d.Expression) == "" {
		return d, portrait.Errorf(portrait.EINVALID, "tag %q needs an expression", d.Name)
	}
	return d, nil
}

// Compile checks d against the trait types (name → schema type).
func Compile(d Definition, types map[string]string) (*Compiled, error) {
	d, err := d.Normalize()
	if err != nil {
		return nil, err
	}
	env := make(map[string]any, len(types)+len(extra))
	for name, typ := range types {
		env[name] = sample(typ)
	}
	for k, v := range extra {
		env[k] = v
	}
	tree, err := parseRule(d.Expression)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "tag %q: invalid expression: %s", d.Name, oneLine(err.Error()))
	}
	// Evaluated for every changed profile: its cost is bounded here.
	if err := exprcost.Check(d.Expression, exprcost.Max); err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "tag %q: %v", d.Name, err)
	}
	prog, err := expr.Compile(d.Expression, expr.Env(env), expr.AsBool(), expr.Patch(traitsPatcher{}))
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "tag %q: invalid expression: %s%s", d.Name, oneLine(err.Error()), suggestion(tree, env))
	}
	refs := &collector{env: env, seen: map[string]bool{}}
	ast.Walk(&tree.Node, refs)
	sort.Strings(refs.names)
	return &Compiled{Definition: d, program: prog, refs: refs.names}, nil
}

// oneLine keeps expr's message and its pointer at the column, in one line.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, " | ")
}

type collector struct {
	env   map[string]any
	seen  map[string]bool
	names []string
}

func (c *collector) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		if _, known := c.env[id.Value]; known && !c.seen[id.Value] {
			c.seen[id.Value] = true
			c.names = append(c.names, id.Value)
		}
	}
}

// Enricher evaluates the tags; it implements profile.Enricher and must run
// after the traits enricher.
type Enricher struct {
	tags atomic.Pointer[set]
	// Finishes counts evaluations, for backfill progress.
	Finishes atomic.Int64

	// vms holds *vm.VM: a VM is not safe for concurrent use, and Finish
	// runs concurrently for different profiles. A pooled one keeps its
	// stack between runs, which a fresh VM per call would allocate.
	vms sync.Pool
}

type set struct {
	tags  []*Compiled
	types map[string]string
	refs  []string // union of the tags' references
	fast  []fast   // by tag; nil where a tag needs the VM
}

var _ profile.Enricher = (*Enricher)(nil)

// NewEnricher returns an enricher with no tags.
func NewEnricher() *Enricher {
	e := &Enricher{}
	e.tags.Store(&set{})
	return e
}

// SetTags replaces the active tags (compiled against types).
func (e *Enricher) SetTags(tags []*Compiled, types map[string]string) {
	s := &set{tags: append([]*Compiled(nil), tags...), types: types}
	sort.Slice(s.tags, func(i, j int) bool { return s.tags[i].Name < s.tags[j].Name })
	seen := map[string]int{}
	for _, t := range s.tags {
		for _, r := range t.refs {
			if _, ok := seen[r]; !ok {
				seen[r] = len(s.refs)
				s.refs = append(s.refs, r)
			}
		}
	}
	index := func(name string) (int, bool) {
		i, ok := seen[name]
		return i, ok
	}
	// A comparison with a missing trait is run once in the VM, compiled
	// as Compile compiles the whole rule (the same types give the same
	// instructions), and its outcome stands for every profile.
	env := make(map[string]any, len(types)+len(extra))
	for name, typ := range types {
		env[name] = sample(typ)
	}
	for k, v := range extra {
		env[k] = v
	}
	var m vm.VM
	nilOutcome := func(leaf, name string) outcome {
		prog, err := expr.Compile(leaf, expr.Env(env), expr.AsBool())
		if err != nil {
			return unknown
		}
		res, err := m.Run(prog, map[string]any{name: nil})
		if err != nil {
			return fails
		}
		b, ok := res.(bool)
		if !ok {
			return unknown
		}
		return of(b)
	}
	s.fast = make([]fast, len(s.tags))
	for i, t := range s.tags {
		s.fast[i] = compileFast(t.Expression, index, nilOutcome)
	}
	e.tags.Store(s)
}

// Tags returns the active tags.
func (e *Enricher) Tags() []*Compiled { return e.tags.Load().tags }

// Event does nothing: tags depend on traits only.
func (e *Enricher) Event(*portrait.Profile, *portrait.Event, map[string]any) {}

// Merge does nothing: Finish re-evaluates the merged profile.
func (e *Enricher) Merge(keep, gone *portrait.Profile) {}

// Finish sets p.Tags to the tags that hold as of now.
func (e *Enricher) Finish(p *portrait.Profile, now time.Time) {
	e.Finishes.Add(1)
	s := e.tags.Load()
	if len(s.tags) == 0 {
		if len(p.Tags) > 0 {
			p.Tags = nil
		}
		return
	}
	sc := scratches.Get().(*scratch)
	defer sc.release()
	vals := sc.values(len(s.refs))
	for i, name := range s.refs {
		if name == "event_count" {
			vals[i] = float64(p.EventCount)
			continue
		}
		tr, ok := p.Traits[name]
		if !ok {
			continue // unknown (nil): comparisons with it fail, the tag does not hold
		}
		v := tr.Value
		if typ := traits.TypeOf(v); v != nil && !fits(s.types[name], typ) {
			v = nil // a type conflict is reported by the schema, not guessed at
		}
		vals[i] = v
	}
	// The VM and its environment only if some tag needs them.
	var m *vm.VM
	var env map[string]any
	prev := previous(p.Tags)
	for i, t := range s.tags {
		o := unknown
		if f := s.fast[i]; f != nil {
			o = f(vals)
		}
		held := o == isTrue
		if o == unknown {
			if m == nil {
				m, _ = e.vms.Get().(*vm.VM)
				if m == nil {
					m = &vm.VM{}
				}
				env = make(map[string]any, len(s.refs))
				for i, name := range s.refs {
					env[name] = vals[i]
				}
			}
			res, err := m.Run(t.program, env)
			b, _ := res.(bool)
			held = err == nil && b
		}
		if !held {
			continue
		}
		// A tag held before keeps the time it was gained: newer evidence
		// for a rule that keeps holding does not make the tag newer.
		at, ok := prev.since(t.Name)
		if !ok {
			at = since(t, p, now)
		}
		sc.held = append(sc.held, heldTag{i, at})
	}
	if m != nil {
		e.vms.Put(m)
	}
	if len(sc.held) == 0 {
		p.Tags = nil
		return
	}
	// Tags mostly stay as they were from one batch to the next: then the
	// profile keeps its list, and a changed one is allocated at its size.
	if same(p.Tags, s.tags, sc.held) {
		return
	}
	out := make([]portrait.ProfileTag, len(sc.held))
	for j, h := range sc.held {
		out[j] = portrait.ProfileTag{Name: s.tags[h.i].Name, Since: h.at}
	}
	p.Tags = out
}

// heldTag is a tag that holds (by position) and its time.
type heldTag struct {
	i  int
	at time.Time
}

// same reports whether tags lists exactly the tags held. Times compare
// as values (==, not Equal): a tag kept holding has the very time the
// list has, and anything else writes a new list, as before.
func same(tags []portrait.ProfileTag, all []*Compiled, held []heldTag) bool {
	if len(tags) != len(held) {
		return false
	}
	for j, h := range held {
		if tags[j].Name != all[h.i].Name || tags[j].Since != h.at {
			return false
		}
	}
	return true
}

// scratch is Finish's working space, pooled: a Finish per profile per
// batch should not allocate it each time.
type scratch struct {
	vals []any
	held []heldTag
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// values returns n nil values.
func (sc *scratch) values(n int) []any {
	if cap(sc.vals) < n {
		sc.vals = make([]any, n)
	}
	return sc.vals[:n]
}

func (sc *scratch) release() {
	clear(sc.vals[:cap(sc.vals)]) // trait values belong to the profile: do not keep them
	sc.vals, sc.held = sc.vals[:0], sc.held[:0]
	scratches.Put(sc)
}

// held is the previous evaluation's tags, for looking up by name in the
// order Finish evaluates them (by name).
type held struct {
	tags   []portrait.ProfileTag
	j      int
	byName map[string]time.Time // when tags is not sorted by name
}

func previous(tags []portrait.ProfileTag) held {
	h := held{tags: tags}
	if !sort.SliceIsSorted(tags, func(i, j int) bool { return tags[i].Name < tags[j].Name }) {
		h.byName = make(map[string]time.Time, len(tags))
		for _, g := range tags {
			h.byName[g.Name] = g.Since
		}
	}
	return h
}

// since returns the time name was gained, if it was held; names must be
// asked for in increasing order.
func (h *held) since(name string) (time.Time, bool) {
	if h.byName != nil {
		t, ok := h.byName[name]
		return t, ok
	}
	for h.j < len(h.tags) && h.tags[h.j].Name < name {
		h.j++
	}
	if h.j < len(h.tags) && h.tags[h.j].Name == name && !h.tags[h.j].Since.IsZero() {
		return h.tags[h.j].Since, true
	}
	return time.Time{}, false
}

func fits(want, got string) bool {
	return want == "" || want == got || want == traits.TypeAny || (want == traits.TypeString && got == traits.TypeTime) ||
		(want == traits.TypeTime && got == traits.TypeString)
}

// since is the provenance time of the evidence for a tag newly gained: the
// latest event time among the traits the rule reads. While the tag keeps
// holding, Finish keeps that time. So the time depends on how events were
// batched: a replay that applies in one batch what live processing applied
// in several dates a tag by the evidence at the end of the batch.
func since(t *Compiled, p *portrait.Profile, now time.Time) time.Time {
	var at time.Time
	for _, r := range t.refs {
		if r == "event_count" {
			if p.LastSeen.After(at) {
				at = p.LastSeen
			}
			continue
		}
		if tr, ok := p.Traits[r]; ok && tr.Time.After(at) {
			at = tr.Time
		}
	}
	if at.IsZero() {
		at = p.FirstSeen
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	return at.UTC()
}

// String describes a compiled tag.
func (c *Compiled) String() string {
	return fmt.Sprintf("%s v%d (%s/%s): %s", c.Name, c.Version, c.Dimension, c.Category, c.Expression)
}

// References lists the traits the expression reads.
func (c *Compiled) References() []string { return c.refs }
