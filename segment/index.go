package segment

import (
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// Index holds every profile's segmentable facts in memory, keyed by a dense
// uint32 number per profile so that compressed bitmaps can stand for sets of
// profiles: one bitmap per tag, identifier type, categorical trait value,
// numeric bucket and event name. Values are also kept in dense columns for
// what bitmaps cannot answer (the boundary buckets of a range, a condition
// on a handful of candidates, explanations).
//
// Numbers are never reused: a profile that is deleted leaves a hole, which
// costs one bit of nothing in a roaring bitmap.
type Index struct {
	mu     sync.RWMutex
	ids    []string
	nums   map[string]uint32
	live   *roaring.Bitmap
	traits map[string]*traitCol
	tags   map[string]*roaring.Bitmap
	idents map[string]*roaring.Bitmap
	events map[string]*eventCol
	kept   *kept // SetKeep's values (kept.go); nil: none
	// followers are told of every change of their trait (follow.go).
	followers []followed
	// Overflow counts trait and event names left unindexed (MaxColumns).
	Overflow int
}

// NewIndex returns an empty index.
// MaxColumns bounds the distinct trait names, and the distinct event
// names, the index keeps columns for. Each column is sized by the profile
// numbers that use it, so names without bound (ids in event names, a client
// sending thousands of made-up traits) would grow memory without bound. Names
// past the bound are not indexed, and Overflow counts them.
const MaxColumns = 2000

func NewIndex() *Index {
	return &Index{nums: map[string]uint32{}, live: roaring.New(), traits: map[string]*traitCol{},
		tags: map[string]*roaring.Bitmap{}, idents: map[string]*roaring.Bitmap{}, events: map[string]*eventCol{}}
}

// highCardinality is the number of distinct values beyond which a trait
// keeps no bitmap per value (emails, names): a bitmap per near-unique value
// costs more than scanning the trait's code column.
//
// A variable so that tests can exercise the high-cardinality path on small
// data.
var highCardinality = 1 << 16

// bucketsPerTrait is how many numeric range buckets a trait gets; edges sit
// on quantiles so that buckets hold similar numbers of profiles.
const bucketsPerTrait = 64

// minBucketed: below this many numeric values a range is a plain scan (a
// variable for the same reason as highCardinality).
var minBucketed uint64 = 2048

type traitCol struct {
	exists *roaring.Bitmap
	// numbers
	isNum   *roaring.Bitmap
	nums    []float64
	edges   []float64
	buckets []*roaring.Bitmap
	edgesAt uint64 // numeric cardinality when edges were computed
	// strings and booleans, dictionary-coded (0: none)
	codes    []uint32
	dict     []any
	dictIdx  map[any]uint32
	cat      []*roaring.Bitmap // by code-1; nil once highCard
	highCard bool
	// lists and objects
	other map[uint32]any
	elems map[any]*roaring.Bitmap
}

func newTraitCol() *traitCol {
	return &traitCol{exists: roaring.New(), isNum: roaring.New(), dictIdx: map[any]uint32{}, other: map[uint32]any{}, elems: map[any]*roaring.Bitmap{}}
}

type eventCol struct {
	did   *roaring.Bitmap
	lists []*History
}

// Len is the number of live profiles.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return int(ix.live.GetCardinality())
}

// Has reports whether the profile is indexed.
func (ix *Index) Has(id string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n, ok := ix.nums[id]
	return ok && ix.live.Contains(n)
}

func (ix *Index) number(id string) uint32 {
	if n, ok := ix.nums[id]; ok {
		return n
	}
	n := uint32(len(ix.ids))
	ix.ids = append(ix.ids, id)
	ix.nums[id] = n
	return n
}

// Upsert indexes the profile's current traits, tags and identifiers and,
// when s is not nil, replaces its behaviour summary. It returns the keys
// whose value changed for the profile ("trait:age", "tag:vip", ...), so
// that only the segments reading them are re-evaluated.
func (ix *Index) Upsert(p *portrait.Profile, s Summary) []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var v any
	if ix.kept != nil {
		v = ix.kept.fn(p)
	}
	return ix.upsert(p, s, v)
}

// upsertKept is Upsert with the kept value computed already (Keep).
func (ix *Index) upsertKept(p *portrait.Profile, s Summary, v any) []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.upsert(p, s, v)
}

// upsertValues is upsertKept with the trait values in vals (p's traits are
// not read). Without kept the index's keep function, if any, reads p.
func (ix *Index) upsertValues(p *portrait.Profile, vals map[string]any, s Summary, keep any, kept bool) []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !kept && ix.kept != nil {
		keep = ix.kept.fn(p)
	}
	return upsertWith(ix, p, vals, plainValue, s, keep)
}

func (ix *Index) upsert(p *portrait.Profile, s Summary, keep any) []string {
	return upsertWith(ix, p, p.Traits, traitValue, s, keep)
}

func traitValue(t portrait.Trait) any { return t.Value }

func plainValue(v any) any { return v }

// upsertWith is upsert reading the traits from traits (p.Traits is not
// read): the processor hook's snapshot holds their values only (see
// snapshot).
func upsertWith[T any](ix *Index, p *portrait.Profile, traits map[string]T, value func(T) any, s Summary, keep any) []string {
	n := ix.number(p.ID)
	if ix.followers != nil {
		defer ix.followedAfter(n, ix.followedBefore(n))
	}
	fresh := !ix.live.Contains(n)
	ix.live.Add(n)
	if ix.kept != nil {
		ix.kept.set(n, keep)
	}
	var changed []string
	if fresh {
		changed = append(changed, "profile")
	}
	// traits: compare the held value with the new one, rewrite on change
	for name, col := range ix.traits {
		if !col.exists.Contains(n) {
			continue
		}
		tr, ok := traits[name]
		var nv any
		if ok {
			nv = normalize(value(tr))
		}
		if ok && nv != nil && sameValue(col.valueAt(n), nv) {
			continue
		}
		col.remove(n)
		changed = append(changed, "trait:"+name)
	}
	for name, tr := range traits {
		v := normalize(value(tr))
		if v == nil {
			continue
		}
		col := ix.traits[name]
		if col == nil {
			if len(ix.traits) >= MaxColumns {
				ix.Overflow++ // a trait name too many: not indexed, see MaxColumns
				continue
			}
			col = newTraitCol()
			ix.traits[name] = col
		}
		if col.exists.Contains(n) {
			continue // unchanged
		}
		col.add(n, v)
		changed = appendOnce(changed, "trait:"+name)
	}
	// tags and identifier types
	has := make(map[string]bool, len(p.Tags))
	for _, t := range p.Tags {
		has[t.Name] = true
	}
	changed = syncSet(ix.tags, has, n, "tag:", changed)
	typ := make(map[string]bool, len(p.Identifiers))
	for _, id := range p.Identifiers {
		typ[id.Type] = true
	}
	changed = syncSet(ix.idents, typ, n, "id:", changed)
	if s != nil {
		for name, ec := range ix.events {
			if !ec.did.Contains(n) {
				continue
			}
			if h := s[name]; h == nil || !sameHistory(ec.lists[n], h) {
				changed = appendOnce(changed, "event:"+name)
			}
			if s[name] == nil {
				ec.did.Remove(n)
				ec.lists[n] = nil
			}
		}
		for name, h := range s {
			ec := ix.events[name]
			if ec == nil {
				if len(ix.events) >= MaxColumns {
					ix.Overflow++
					continue
				}
				ec = &eventCol{did: roaring.New()}
				ix.events[name] = ec
			}
			if !ec.did.Contains(n) {
				changed = appendOnce(changed, "event:"+name)
			}
			ec.did.Add(n)
			ec.lists = growH(ec.lists, n)
			// the index keeps its own copy: callers may reuse s
			ec.lists[n] = &History{Total: h.Total, recs: append([]rec(nil), h.recs...)}
		}
	}
	return changed
}

func appendOnce(list []string, k string) []string {
	for _, x := range list {
		if x == k {
			return list
		}
	}
	return append(list, k)
}

func sameHistory(a, b *History) bool {
	if a == nil || b == nil || a.Total != b.Total || len(a.recs) != len(b.recs) {
		return false
	}
	for i := range a.recs {
		if a.recs[i] != b.recs[i] {
			return false
		}
	}
	return true
}

func syncSet(m map[string]*roaring.Bitmap, want map[string]bool, n uint32, prefix string, changed []string) []string {
	for name, bm := range m {
		if bm.Contains(n) && !want[name] {
			bm.Remove(n)
			changed = append(changed, prefix+name)
		}
	}
	for name := range want {
		bm := m[name]
		if bm == nil {
			bm = roaring.New()
			m[name] = bm
		}
		if !bm.Contains(n) {
			bm.Add(n)
			changed = append(changed, prefix+name)
		}
	}
	return changed
}

// Remove drops a profile (merged away or erased).
func (ix *Index) Remove(id string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n, ok := ix.nums[id]
	if !ok || !ix.live.Contains(n) {
		return false
	}
	if ix.followers != nil {
		defer ix.followedAfter(n, ix.followedBefore(n))
	}
	ix.live.Remove(n)
	if ix.kept != nil {
		ix.kept.remove(n)
	}
	for _, col := range ix.traits {
		if col.exists.Contains(n) {
			col.remove(n)
		}
	}
	for _, bm := range ix.tags {
		bm.Remove(n)
	}
	for _, bm := range ix.idents {
		bm.Remove(n)
	}
	for _, ec := range ix.events {
		if ec.did.Contains(n) {
			ec.did.Remove(n)
			ec.lists[n] = nil
		}
	}
	return true
}

func growF(s []float64, n uint32) []float64 {
	for uint32(len(s)) <= n {
		s = append(s, math.NaN())
	}
	return s
}

func growU(s []uint32, n uint32) []uint32 {
	if uint32(len(s)) > n {
		return s
	}
	return append(s, make([]uint32, int(n)+1-len(s))...)
}

func growH(s []*History, n uint32) []*History {
	if uint32(len(s)) > n {
		return s
	}
	return append(s, make([]*History, int(n)+1-len(s))...)
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64, string, bool:
		return equal(x, b)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(normalize(x[i]), normalize(y[i])) {
				return false
			}
		}
		return true
	case map[string]any:
		// Objects are compared by content: the needs and journey enrichers
		// write theirs again when a profile is finished, and a rewrite
		// costs the column and re-evaluates every segment reading it.
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !sameValue(normalize(xv), normalize(yv)) {
				return false
			}
		}
		return true
	case nil:
		return b == nil // a null inside a list or an object
	}
	return false
}

func (c *traitCol) add(n uint32, v any) {
	c.exists.Add(n)
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			c.other[n] = x
			return
		}
		c.isNum.Add(n)
		c.nums = growF(c.nums, n)
		c.nums[n] = x
		if c.edges != nil {
			c.buckets[c.bucket(x)].Add(n)
		}
		card := c.isNum.GetCardinality()
		if (c.edges == nil && card >= minBucketed) || (c.edges != nil && card >= 16*c.edgesAt) {
			c.rebucket()
		}
	case string, bool:
		code, ok := c.dictIdx[x]
		if !ok {
			c.dict = append(c.dict, x)
			code = uint32(len(c.dict))
			c.dictIdx[x] = code
			if !c.highCard {
				if len(c.dict) > highCardinality {
					c.highCard, c.cat = true, nil
				} else {
					c.cat = append(c.cat, roaring.New())
				}
			}
		}
		c.codes = growU(c.codes, n)
		c.codes[n] = code
		if !c.highCard {
			c.cat[code-1].Add(n)
		}
	default:
		c.other[n] = x
		if list, ok := x.([]any); ok {
			for _, e := range list {
				e = normalize(e)
				switch e.(type) {
				case float64, string, bool:
				default:
					continue
				}
				bm := c.elems[e]
				if bm == nil {
					bm = roaring.New()
					c.elems[e] = bm
				}
				bm.Add(n)
			}
		}
	}
}

func (c *traitCol) remove(n uint32) {
	c.exists.Remove(n)
	if c.isNum.Contains(n) {
		c.isNum.Remove(n)
		if c.edges != nil {
			c.buckets[c.bucket(c.nums[n])].Remove(n)
		}
		c.nums[n] = math.NaN()
	}
	if int(n) < len(c.codes) && c.codes[n] != 0 {
		if !c.highCard {
			c.cat[c.codes[n]-1].Remove(n)
		}
		c.codes[n] = 0
	}
	if v, ok := c.other[n]; ok {
		if list, ok := v.([]any); ok {
			for _, e := range list {
				e = normalize(e)
				switch e.(type) {
				case float64, string, bool: // what add indexed; objects are not hashable
				default:
					continue
				}
				if bm := c.elems[e]; bm != nil {
					bm.Remove(n)
				}
			}
		}
		delete(c.other, n)
	}
}

// valueAt is the value a profile holds (nil: none).
func (c *traitCol) valueAt(n uint32) any {
	if c == nil || !c.exists.Contains(n) {
		return nil
	}
	if int(n) < len(c.nums) && !math.IsNaN(c.nums[n]) {
		return c.nums[n]
	}
	if int(n) < len(c.codes) && c.codes[n] != 0 {
		return c.dict[c.codes[n]-1]
	}
	return c.other[n]
}

// bucket i holds values in (edges[i-1], edges[i]].
func (c *traitCol) bucket(v float64) int { return sort.SearchFloat64s(c.edges, v) }

// rebucket puts the bucket edges on the quantiles of the current values:
// once when a trait first has enough numbers, again whenever their count
// has grown sixteenfold, so buckets stay balanced as data arrives.
func (c *traitCol) rebucket() {
	vals := make([]float64, 0, c.isNum.GetCardinality())
	c.isNum.Iterate(func(n uint32) bool {
		vals = append(vals, c.nums[n])
		return true
	})
	sort.Float64s(vals)
	var edges []float64
	for i := 1; i < bucketsPerTrait; i++ {
		e := vals[i*len(vals)/bucketsPerTrait]
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	c.edges = edges
	c.buckets = make([]*roaring.Bitmap, len(edges)+1)
	for i := range c.buckets {
		c.buckets[i] = roaring.New()
	}
	c.isNum.Iterate(func(n uint32) bool {
		c.buckets[c.bucket(c.nums[n])].Add(n)
		return true
	})
	c.edgesAt = uint64(len(vals))
}

// Bytes estimates the memory the index holds.
func (ix *Index) Bytes() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var b int64
	bm := func(x *roaring.Bitmap) {
		if x != nil {
			b += int64(x.GetSizeInBytes())
		}
	}
	for _, id := range ix.ids {
		b += int64(len(id)) + 16 + 24 // string, header, map entry share
	}
	bm(ix.live)
	for _, c := range ix.traits {
		bm(c.exists)
		bm(c.isNum)
		b += int64(cap(c.nums))*8 + int64(cap(c.codes))*4
		for _, x := range c.buckets {
			bm(x)
		}
		for _, x := range c.cat {
			bm(x)
		}
		for _, d := range c.dict {
			if s, ok := d.(string); ok {
				b += int64(len(s)) + 48
			}
		}
		for _, x := range c.elems {
			bm(x)
		}
		b += int64(len(c.other)) * 48
	}
	for _, x := range ix.tags {
		bm(x)
	}
	for _, x := range ix.idents {
		bm(x)
	}
	for _, ec := range ix.events {
		bm(ec.did)
		b += int64(cap(ec.lists)) * 8
		for _, h := range ec.lists {
			if h != nil {
				b += 32 + int64(cap(h.recs))*8
			}
		}
	}
	return b
}

// ID returns the profile id of a number.
func (ix *Index) ID(n uint32) string { return ix.ids[n] }

// TraitKinds counts the kinds of value a trait holds (number, string,
// boolean, list, object): a segment over a trait whose type changed can say
// how many profiles its condition can no longer match.
func (ix *Index) TraitKinds(name string) map[string]int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.traitKinds(name)
}

func (ix *Index) traitKinds(name string) map[string]int {
	c := ix.traits[name]
	out := map[string]int{}
	if c == nil {
		return out
	}
	out["number"] = int(c.isNum.GetCardinality())
	strs, bools := 0, 0
	if !c.highCard {
		for i, d := range c.dict {
			k := int(c.cat[i].GetCardinality())
			if _, ok := d.(bool); ok {
				bools += k
			} else {
				strs += k
			}
		}
	} else {
		c.exists.Iterate(func(n uint32) bool {
			if int(n) < len(c.codes) && c.codes[n] != 0 {
				if _, ok := c.dict[c.codes[n]-1].(bool); ok {
					bools++
				} else {
					strs++
				}
			}
			return true
		})
	}
	out["string"], out["boolean"] = strs, bools
	for _, v := range c.other {
		if _, ok := v.([]any); ok {
			out["list"]++
		} else {
			out["object"]++
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

func kindOf(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case nil:
		return "missing"
	}
	return "object"
}

// Warnings explains parts of a plan that cannot match some profiles because
// of the type of the values they hold: a trait that changed type keeps
// working for the profiles that hold the expected type, and says so for
// the others.
func (ix *Index) Warnings(n Node) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	seen := map[string]bool{}
	var walk func(Node)
	walk = func(n Node) {
		switch x := n.(type) {
		case *andNode:
			for _, k := range x.kids {
				walk(k)
			}
		case *orNode:
			for _, k := range x.kids {
				walk(k)
			}
		case *notNode:
			walk(x.kid)
		case *refNode:
			walk(x.kid)
		case *traitLeaf:
			want := expectedKind(x.p)
			if want == "" {
				return
			}
			kinds := ix.traitKinds(x.name)
			if len(kinds) == 0 {
				if !seen[x.name] {
					seen[x.name] = true
					out = append(out, "no profile has the trait "+x.name+" yet")
				}
				return
			}
			var others []string
			for k, c := range kinds {
				if k != want {
					others = append(others, k+": "+itoa(c))
				}
			}
			sort.Strings(others)
			if len(others) > 0 {
				// The operator, not the literal: a warning is plain text
				// no masker parses, and the literal may be a value the
				// reader may not see (phone == 13800138000).
				w := "the condition " + x.p.op + " on " + traitRef(x.name) + " expects a " + want + "; profiles holding another type never match (" + strings.Join(others, ", ") + ")"
				if !seen[w] { // two conditions alike say it once
					seen[w] = true
					out = append(out, w)
				}
			}
		}
	}
	walk(n)
	return out
}

func expectedKind(p pred) string {
	switch p.op {
	case opExists, opNe:
		return ""
	case opHas:
		return "list"
	case opPrefix:
		return "string"
	case opIn:
		if p.isRange {
			return "number"
		}
		k := kindOf(p.set[0])
		for _, v := range p.set[1:] {
			if kindOf(v) != k {
				return ""
			}
		}
		return k
	}
	return kindOf(p.lit)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
