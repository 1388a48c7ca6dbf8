package segment

import (
	"math"
	"sort"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// scanLimit: an and-node whose running result has at most this many
// profiles checks its remaining conditions profile by profile from the
// columns instead of building their bitmaps over everyone.
const scanLimit = 4096

type evaluator struct {
	ix  *Index
	now time.Time
}

// Evaluate returns the numbers of the profiles matching the plan as of now.
func (ix *Index) Evaluate(n Node, now time.Time) *roaring.Bitmap {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := &evaluator{ix: ix, now: now}
	return e.eval(n, nil)
}

// Count is the number of matching profiles.
func (ix *Index) Count(n Node, now time.Time) int {
	return int(ix.Evaluate(n, now).GetCardinality())
}

// IDs maps profile numbers to ids, in number order, skipping the first
// skip and returning at most limit.
func (ix *Index) IDs(bm *roaring.Bitmap, skip, limit int) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	it := bm.Iterator()
	for i := 0; it.HasNext() && len(out) < limit; i++ {
		n := it.Next()
		if i >= skip {
			out = append(out, ix.ids[n])
		}
	}
	return out
}

// Numbers maps ids to profile numbers (unknown ids are skipped).
func (ix *Index) Numbers(ids []string) *roaring.Bitmap {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	bm := roaring.New()
	for _, id := range ids {
		if n, ok := ix.nums[id]; ok && ix.live.Contains(n) {
			bm.Add(n)
		}
	}
	return bm
}

// liveNumber is Numbers([]string{id}).Minimum() without the bitmap: id's
// number when it is indexed, else 0.
func (ix *Index) liveNumber(id string) uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if n, ok := ix.nums[id]; ok && ix.live.Contains(n) {
		return n
	}
	return 0
}

// MatchOne evaluates the plan for one indexed profile; ok is false when the
// profile is not in the index.
func (ix *Index) MatchOne(n Node, id string, now time.Time) (match, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	num, ok := ix.nums[id]
	if !ok || !ix.live.Contains(num) {
		return false, false
	}
	return (&evaluator{ix: ix, now: now}).point(n, num), true
}

// cost orders the conditions of an and-node: cheap, selective bitmaps
// first, scans last, so that scans run over few candidates.
func cost(n Node) int {
	switch x := n.(type) {
	case *constNode:
		return 0
	case *tagLeaf, *idLeaf:
		return 1
	case *traitLeaf:
		switch x.p.op {
		case opExists, opEq, opHas:
			return 1
		case opIn:
			if x.p.isRange {
				return 3
			}
			return 2
		case opNe:
			return 2
		}
		return 4
	case *behLeaf, *seqLeaf:
		return 10
	case *listLeaf:
		return 2
	case *refNode:
		return cost(x.kid)
	case *notNode:
		return cost(x.kid) + 1
	case *andNode:
		m := 0
		for _, k := range x.kids {
			m = max(m, cost(k))
		}
		return m + 1
	case *orNode:
		s := 0
		for _, k := range x.kids {
			s += cost(k)
		}
		return s
	}
	return 5
}

func small(cand *roaring.Bitmap) bool { return cand != nil && cand.GetCardinality() <= scanLimit }

// eval returns the matching profiles within cand (nil: all live profiles).
func (e *evaluator) eval(n Node, cand *roaring.Bitmap) *roaring.Bitmap {
	if small(cand) {
		out := roaring.New()
		cand.Iterate(func(num uint32) bool {
			if e.point(n, num) {
				out.Add(num)
			}
			return true
		})
		return out
	}
	switch x := n.(type) {
	case *constNode:
		if !x.v {
			return roaring.New()
		}
		return e.within(e.ix.live, cand)
	case *andNode:
		kids := append([]Node(nil), x.kids...)
		sort.SliceStable(kids, func(i, j int) bool { return cost(kids[i]) < cost(kids[j]) })
		r := cand
		for _, k := range kids {
			r = e.eval(k, r)
			if r.IsEmpty() {
				break
			}
		}
		return r
	case *orNode:
		parts := make([]*roaring.Bitmap, 0, len(x.kids))
		for _, k := range x.kids {
			parts = append(parts, e.eval(k, cand))
		}
		return roaring.FastOr(parts...)
	case *notNode:
		base := cand
		if base == nil {
			base = e.ix.live
		}
		return roaring.AndNot(base, e.eval(x.kid, cand))
	case *tagLeaf:
		return e.within(e.ix.tags[x.name], cand)
	case *idLeaf:
		return e.within(e.ix.idents[x.typ], cand)
	case *traitLeaf:
		return e.within(e.trait(x), cand)
	case *behLeaf:
		return e.behaviour(x, cand)
	case *seqLeaf:
		return e.sequence(x, cand)
	case *refNode:
		return e.eval(x.kid, cand)
	case *listLeaf:
		return e.list(x, cand)
	}
	return roaring.New()
}

// within intersects bm with cand (nil: everyone), never aliasing bm.
func (e *evaluator) within(bm, cand *roaring.Bitmap) *roaring.Bitmap {
	if bm == nil {
		return roaring.New()
	}
	if cand == nil {
		return bm.Clone()
	}
	return roaring.And(bm, cand)
}

// point evaluates the plan on one profile from the index's columns.
func (e *evaluator) point(n Node, num uint32) bool {
	switch x := n.(type) {
	case *constNode:
		return x.v
	case *andNode:
		for _, k := range x.kids {
			if !e.point(k, num) {
				return false
			}
		}
		return true
	case *orNode:
		for _, k := range x.kids {
			if e.point(k, num) {
				return true
			}
		}
		return false
	case *notNode:
		return !e.point(x.kid, num)
	case *tagLeaf:
		bm := e.ix.tags[x.name]
		return bm != nil && bm.Contains(num)
	case *idLeaf:
		bm := e.ix.idents[x.typ]
		return bm != nil && bm.Contains(num)
	case *traitLeaf:
		return x.p.test(e.ix.traits[x.name].valueAt(num))
	case *behLeaf:
		return x.p.test(metric(e.history(x.event, num), x, e.now))
	case *seqLeaf:
		return sequence(e.history(x.did, num), e.history(x.not, num), x, e.now)
	case *refNode:
		return e.point(x.kid, num)
	case *listLeaf:
		return x.ids[e.ix.ids[num]]
	}
	return false
}

func (e *evaluator) history(event string, num uint32) *History {
	ec := e.ix.events[event]
	if ec == nil || int(num) >= len(ec.lists) {
		return nil
	}
	return ec.lists[num]
}

func (e *evaluator) behaviour(l *behLeaf, cand *roaring.Bitmap) *roaring.Bitmap {
	out := roaring.New()
	ec := e.ix.events[l.event]
	if ec != nil {
		did := ec.did
		if cand != nil {
			did = roaring.And(did, cand)
		}
		did.Iterate(func(num uint32) bool {
			if l.p.test(metric(ec.lists[num], l, e.now)) {
				out.Add(num)
			}
			return true
		})
	}
	// profiles without the event hold the metric's empty value (count 0):
	// "event_count(...) < 2" includes them all at once
	if l.p.test(metric(nil, l, e.now)) {
		base := cand
		if base == nil {
			base = e.ix.live
		}
		if ec != nil {
			base = roaring.AndNot(base, ec.did)
		}
		out.Or(base)
	}
	return out
}

func (e *evaluator) sequence(l *seqLeaf, cand *roaring.Bitmap) *roaring.Bitmap {
	out := roaring.New()
	ea := e.ix.events[l.did]
	if ea == nil {
		return out
	}
	did := ea.did
	if cand != nil {
		did = roaring.And(did, cand)
	}
	did.Iterate(func(num uint32) bool {
		if sequence(ea.lists[num], e.history(l.not, num), l, e.now) {
			out.Add(num)
		}
		return true
	})
	return out
}

// trait answers a trait condition over all profiles with bitmaps, scanning
// only the boundary buckets of numeric ranges and the code column of
// high-cardinality traits.
func (e *evaluator) trait(l *traitLeaf) *roaring.Bitmap {
	c := e.ix.traits[l.name]
	if c == nil {
		return roaring.New()
	}
	p := l.p
	switch p.op {
	case opExists:
		return c.exists
	case opEq:
		return c.eq(p.lit)
	case opNe:
		return roaring.AndNot(c.exists, c.eq(p.lit))
	case opLt, opLe, opGt, opGe:
		if _, num := p.lit.(float64); num {
			return c.numRange(p)
		}
		return c.dictMatch(p.test)
	case opIn:
		if p.isRange {
			return c.numRange(p)
		}
		parts := make([]*roaring.Bitmap, 0, len(p.set))
		for _, v := range p.set {
			parts = append(parts, c.eq(v))
		}
		return roaring.FastOr(parts...)
	case opPrefix:
		return c.dictMatch(p.test)
	case opHas:
		if bm := c.elems[p.lit]; bm != nil {
			return bm
		}
	}
	return roaring.New()
}

func (c *traitCol) eq(lit any) *roaring.Bitmap {
	switch lit.(type) {
	case float64:
		return c.numRange(pred{op: opEq, lit: lit})
	case string, bool:
		code, ok := c.dictIdx[lit]
		if !ok {
			return roaring.New()
		}
		if !c.highCard {
			return c.cat[code-1]
		}
		out := roaring.New()
		c.exists.Iterate(func(n uint32) bool {
			if int(n) < len(c.codes) && c.codes[n] == code {
				out.Add(n)
			}
			return true
		})
		return out
	}
	return roaring.New()
}

// dictMatch ORs the bitmaps of the dictionary values that pass f (prefixes,
// string ranges); for a high-cardinality trait it scans the code column.
func (c *traitCol) dictMatch(f func(any) bool) *roaring.Bitmap {
	if !c.highCard {
		var parts []*roaring.Bitmap
		for i, d := range c.dict {
			if f(d) {
				parts = append(parts, c.cat[i])
			}
		}
		return roaring.FastOr(parts...)
	}
	ok := make([]bool, len(c.dict)+1)
	any := false
	for i, d := range c.dict {
		ok[i+1] = f(d)
		any = any || ok[i+1]
	}
	out := roaring.New()
	if !any {
		return out
	}
	c.exists.Iterate(func(n uint32) bool {
		if int(n) < len(c.codes) && ok[c.codes[n]] {
			out.Add(n)
		}
		return true
	})
	return out
}

// numRange answers a numeric comparison: buckets wholly inside the range
// are ORed, the two boundary buckets are scanned.
func (c *traitCol) numRange(p pred) *roaring.Bitmap {
	if c.edges == nil {
		out := roaring.New()
		c.isNum.Iterate(func(n uint32) bool {
			if p.test(c.nums[n]) {
				out.Add(n)
			}
			return true
		})
		return out
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	switch p.op {
	case opEq:
		lo, hi = p.lit.(float64), p.lit.(float64)
	case opLt, opLe:
		hi = p.lit.(float64)
	case opGt, opGe:
		lo = p.lit.(float64)
	case opIn:
		lo, hi = p.lo, p.hi
	}
	bLo, bHi := -1, len(c.buckets)
	if !math.IsInf(lo, -1) {
		bLo = c.bucket(lo)
	}
	if !math.IsInf(hi, 1) {
		bHi = c.bucket(hi)
	}
	var parts []*roaring.Bitmap
	for i := bLo + 1; i < bHi; i++ {
		parts = append(parts, c.buckets[i])
	}
	out := roaring.FastOr(parts...)
	for i, b := range []int{bLo, bHi} {
		if b < 0 || b >= len(c.buckets) || (i == 1 && bHi == bLo) {
			continue
		}
		c.buckets[b].Iterate(func(n uint32) bool {
			if p.test(c.nums[n]) {
				out.Add(n)
			}
			return true
		})
	}
	return out
}

// Match is the reference evaluation on a raw profile and its behaviour
// summary, written without the index: the property test holds the bitmap
// evaluation to it.
func Match(n Node, p *portrait.Profile, s Summary, now time.Time) bool {
	switch x := n.(type) {
	case *constNode:
		return x.v
	case *andNode:
		for _, k := range x.kids {
			if !Match(k, p, s, now) {
				return false
			}
		}
		return true
	case *orNode:
		for _, k := range x.kids {
			if Match(k, p, s, now) {
				return true
			}
		}
		return false
	case *notNode:
		return !Match(x.kid, p, s, now)
	case *tagLeaf:
		for _, t := range p.Tags {
			if t.Name == x.name {
				return true
			}
		}
		return false
	case *idLeaf:
		for _, id := range p.Identifiers {
			if id.Type == x.typ {
				return true
			}
		}
		return false
	case *traitLeaf:
		tr, ok := p.Traits[x.name]
		if !ok {
			return false
		}
		return x.p.test(tr.Value)
	case *behLeaf:
		return x.p.test(metric(s[x.event], x, now))
	case *seqLeaf:
		return sequence(s[x.did], s[x.not], x, now)
	case *refNode:
		return Match(x.kid, p, s, now)
	case *listLeaf:
		return x.ids[p.ID]
	}
	return false
}
