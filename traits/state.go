package traits

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
)

// The per-profile state of the enricher, kept in Profile.State. Every part
// is a commutative, idempotent accumulator (sets keyed by message id,
// counts, extremes compared by canonical event key), so the state — and the
// traits derived from it — does not depend on arrival order or on which way
// round profiles merge.
type pstate struct {
	// Purchases, summarised in bounded space (see purchases).
	Buys *purchases `json:"b,omitempty"`
	// Legacy: every purchase, as states were first written; read once and
	// folded into Buys.
	Purchases []purchase `json:"p,omitempty"`
	// Sessions: disjoint [start, end] runs of events (unix µs), sorted.
	Sessions [][2]int64 `json:"s,omitempty"`
	// Categories of purchases and channels of events, with counts.
	Cats  map[string]*freq `json:"c,omitempty"`
	Chans map[string]*freq `json:"ch,omitempty"`
	// Surveys answered, sorted by key.
	Surveys []Survey `json:"sv,omitempty"`
	// Aggs of the computed traits, by definition name: the encoded form.
	// Decoded, they are in aggs instead, by position in defs, which
	// spares the hot path looking names up.
	Aggs map[string]*agg `json:"a,omitempty"`
	aggs []*agg
	defs *[]*compiled
	// room for new aggs, counts and values (see room).
	room room
	// changed: Finish changed the state (a window moved, a definition
	// went), so it must be encoded again.
	changed bool
}

// decodeState reads a state as Finish wrote it, in any of its formats.
func decodeState(raw []byte, l Lifecycle) *pstate {
	st := &pstate{}
	if len(raw) == 0 {
		return st
	}
	// State is written only by Finish; an unreadable one (a store edited
	// by hand) starts over rather than stopping the processor.
	if isV2(raw) {
		v2, err := decodeV2(raw)
		if err != nil {
			return &pstate{}
		}
		return v2
	}
	if gojson.Unmarshal(raw, st) != nil {
		return &pstate{}
	}
	for _, g := range st.Aggs {
		g.restore()
	}
	if len(st.Purchases) > 0 { // the first state format kept every purchase
		if st.Buys == nil {
			st.Buys = &purchases{}
		}
		for _, p := range st.Purchases {
			st.Buys.add(p, l)
		}
		st.Purchases = nil
		st.changed = true
	}
	return st
}

// encode writes the state in the compact format (see encodeV2).
func (s *pstate) encode() ([]byte, error) { return s.encodeV2() }

// room hands out a state's small parts from spare room made for several
// at once: a customer's first order makes an aggregate for each
// definition it feeds, a count for each value and a value for each
// extreme, an allocation each otherwise. A state's parts live as long as
// it does, so sharing allocations keeps nothing alive for longer.
type room struct {
	aggs  []agg
	freqs []freq
	vals  []val
}

// newAgg returns an empty agg. The definitions an event feeds mostly
// start together, so room is made for n of them at once.
func (r *room) newAgg(n int) *agg {
	if len(r.aggs) == 0 {
		r.aggs = make([]agg, max(n, 1))
	}
	g := &r.aggs[0]
	r.aggs = r.aggs[1:]
	return g
}

func (r *room) newFreq() *freq {
	if r == nil {
		return new(freq)
	}
	if len(r.freqs) == 0 {
		n := 8
		if r.freqs == nil {
			n = 2 // the first: most visitors come through one channel
		}
		r.freqs = make([]freq, n)
	}
	f := &r.freqs[0]
	r.freqs = r.freqs[1:]
	return f
}

func (r *room) newVal() *val {
	if r == nil {
		return new(val)
	}
	if len(r.vals) == 0 {
		r.vals = make([]val, 4)
	}
	v := &r.vals[0]
	r.vals = r.vals[1:]
	return v
}

// align puts the aggregates in the order of defs. Aggregates of names no
// longer defined go; those kept are fitted to a changed window.
func (s *pstate) align(defs *[]*compiled) {
	if s.defs == defs {
		return
	}
	byName := s.Aggs
	if s.defs != nil {
		byName = make(map[string]*agg, len(s.aggs))
		for i, g := range s.aggs {
			if g != nil {
				byName[(*s.defs)[i].Name] = g
			}
		}
	}
	s.aggs = make([]*agg, len(*defs))
	for i, c := range *defs {
		if g := byName[c.Name]; g != nil {
			if g.fit(c) {
				s.changed = true
			}
			s.aggs[i] = g
			delete(byName, c.Name)
		}
	}
	if len(byName) > 0 {
		s.changed = true
	}
	s.defs, s.Aggs = defs, nil
}

type purchase struct {
	T int64  `json:"t"` // unix µs
	M string `json:"m"`
	A int64  `json:"a"` // amount in millionths
}

// freq counts a value and remembers its latest event.
type freq struct {
	N int64  `json:"n"`
	T int64  `json:"t"`
	M string `json:"m"`
}

// Survey is one answer to a satisfaction survey.
type Survey struct {
	T       int64  `json:"t"`
	M       string `json:"m"`
	NPS     *int   `json:"nps,omitempty"`
	CSAT    *int   `json:"csat,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Time is when the survey was answered.
func (s Survey) Time() time.Time { return time.UnixMicro(s.T).UTC() }

// val is a value with the key of the event that gave it.
type val struct {
	V any    `json:"v"`
	T int64  `json:"t"`
	M string `json:"m"`
}

// agg accumulates one computed trait. All-time aggregates keep only what
// they need; windowed ones keep what an all-time agg would, per time
// bucket (see bucketWidth), in columns.
type agg struct {
	N    int64            `json:"n,omitempty"`  // matching events
	S    int64            `json:"s,omitempty"`  // sum of numeric values, millionths
	C    int64            `json:"c,omitempty"`  // numeric values
	Lo   *val             `json:"lo,omitempty"` // min
	Hi   *val             `json:"hi,omitempty"` // max
	Fst  *val             `json:"f,omitempty"`
	Lst  *val             `json:"l,omitempty"`
	Freq map[string]*freq `json:"q,omitempty"` // most_frequent, unique, distinct
	Over bool             `json:"o,omitempty"` // the value set hit its cap
	LT   int64            `json:"lt,omitempty"`
	LM   string           `json:"lm,omitempty"`
	// Windowed: the width of the buckets (µs), and the buckets.
	W int64   `json:"bw,omitempty"`
	B buckets `json:"-"`
	// Legacy: buckets as objects (read, then moved to B by restore), and
	// windows that kept every event (folded into buckets by fit).
	LB  []legacyBucket `json:"k,omitempty"`
	Win []val          `json:"w,omitempty"`
}

// buckets aggregate the events of [At, At+W) (unix µs), sorted by At, as
// columns: a window grows by one bucket per event for most profiles, and
// a bucket should then cost little more than the event's number would.
// A column is empty until an aggregate needs it, then as long as At.
type buckets struct {
	At []int64
	N  []int64 // count
	S  []int64 // sum, avg: millionths
	C  []int64 // avg: numeric values
	X  []val   // min, max, first, last
	Q  [][]fv  // most_frequent, unique, distinct_count: sorted by value
	O  []bool  // unique, distinct_count: the set hit its cap
	// spare is room for new sets, cut off one value at a time: most
	// buckets hold one event, and a set each would be an allocation
	// each. A set cut off has capacity 1, so that one that grows moves
	// out rather than over its neighbour.
	spare []fv
}

// oneFV returns the set {f}.
func (b *buckets) oneFV(f fv) []fv {
	if len(b.spare) == 0 {
		b.spare = make([]fv, max(8, len(b.At)))
	}
	s := b.spare[:1:1]
	s[0] = f
	b.spare = b.spare[1:]
	return s
}

// fv is a value of a bucket's set: its count and latest event.
type fv struct {
	K string
	N int64
	T int64
	M string
}

// legacyBucket is a bucket as the first bucketed states wrote it.
type legacyBucket struct {
	N    int64            `json:"n,omitempty"`
	S    int64            `json:"s,omitempty"`
	C    int64            `json:"c,omitempty"`
	X    val              `json:"x,omitzero"`
	Freq map[string]*freq `json:"q,omitempty"`
	Over bool             `json:"o,omitempty"`
	// Each bucket's latest event. The latest event of a window is in its
	// newest bucket, which is the last to expire, so the agg keeps one
	// (LT, LM) instead; restore moves these there.
	LT int64  `json:"lt,omitempty"`
	LM string `json:"lm,omitempty"`
}

// key is the time of one of the bucket's events, chosen the same way
// however the bucket was filled, which places a legacy bucket.
func (b *legacyBucket) key() int64 {
	if b.LM != "" {
		return b.LT
	}
	if b.X.M != "" {
		return b.X.T
	}
	t := int64(math.MinInt64)
	for _, f := range b.Freq {
		t = max(t, f.T)
	}
	return t
}

// better reports whether x should replace y as the value of aggregate.
func better(aggregate string, x, y *val) bool {
	switch aggregate {
	case AggMin:
		return smaller(x, y)
	case AggMax:
		return larger(x, y)
	case AggFirst:
		return earlier(x, y)
	}
	return later(x, y)
}

// column makes c as long as the buckets, with room for as many as the
// starts have (most windows grow by one bucket an event).
func column[T any](c []T, n, room int) []T {
	if len(c) == n {
		return c
	}
	if cap(c) >= n {
		return c[:n]
	}
	out := make([]T, n, max(room, n))
	copy(out, c)
	return out
}

// shiftIn puts a zero at i in a column in use (as long as the n buckets
// there were), which grow has made room in.
func shiftIn[T any](c []T, i, n int) []T {
	if len(c) != n || n == 0 {
		return c
	}
	if len(c) == cap(c) {
		c = slices.Grow(c, max(8, n)) // not grown with the others; cannot happen
	}
	c = c[:n+1]
	copy(c[i+1:], c[i:n])
	var zero T
	c[i] = zero
	return c
}

// grownTo copies the first n entries of c (zeros if c has fewer) to a
// new column with room for more.
func grownTo[T any](c []T, n, room int) []T {
	out := make([]T, n, room)
	copy(out, c)
	return out
}

// grow makes room for more buckets in every column in use and in those
// aggregate needs, at once: the int64 columns in a single allocation,
// carved with capped capacity so that none grows over the next. Columns
// grow 8, 16, 32, then to the most buckets a window keeps.
func (b *buckets) grow(aggregate string) {
	n := len(b.At)
	room := max(8, 2*n)
	if n <= windowBuckets && room > windowBuckets {
		room = windowBuckets + 1
	}
	inUse := func(l int, needed bool) bool { return (n > 0 && l == n) || needed }
	useN := inUse(len(b.N), aggregate == AggCount)
	useS := inUse(len(b.S), aggregate == AggSum || aggregate == AggAvg)
	useC := inUse(len(b.C), aggregate == AggAvg)
	k := 1
	for _, u := range []bool{useN, useS, useC} {
		if u {
			k++
		}
	}
	ints := make([]int64, k*room)
	carve := func(c []int64) []int64 {
		d := ints[:n:room]
		copy(d, c)
		ints = ints[room:]
		return d
	}
	b.At = carve(b.At)
	if useN {
		b.N = carve(b.N)
	}
	if useS {
		b.S = carve(b.S)
	}
	if useC {
		b.C = carve(b.C)
	}
	if inUse(len(b.X), aggregate == AggMin || aggregate == AggMax || aggregate == AggFirst || aggregate == AggLast) {
		b.X = grownTo(b.X, n, room)
	}
	if inUse(len(b.Q), aggregate == AggMostFrequent || aggregate == AggUnique || aggregate == AggDistinctCount) {
		b.Q = grownTo(b.Q, n, room)
	}
	if inUse(len(b.O), false) {
		b.O = grownTo(b.O, n, room)
	}
}

// dropFirst removes the first k entries of a column in use.
func dropFirst[T any](c []T, k int) []T {
	if len(c) == 0 {
		return c
	}
	n := copy(c, c[k:])
	clear(c[n:])
	return c[:n]
}

func (b *buckets) len() int { return len(b.At) }

// insert makes an empty bucket at position i, growing the columns for
// aggregate when they are full.
func (b *buckets) insert(i int, at int64, aggregate string) {
	n := len(b.At)
	if n == cap(b.At) {
		b.grow(aggregate)
	}
	b.At = b.At[:n+1]
	copy(b.At[i+1:], b.At[i:n])
	b.At[i] = at
	b.N = shiftIn(b.N, i, n)
	b.S = shiftIn(b.S, i, n)
	b.C = shiftIn(b.C, i, n)
	b.X = shiftIn(b.X, i, n)
	b.Q = shiftIn(b.Q, i, n)
	b.O = shiftIn(b.O, i, n)
}

// drop removes the first k buckets.
func (b *buckets) drop(k int) {
	b.At = dropFirst(b.At, k)
	b.N = dropFirst(b.N, k)
	b.S = dropFirst(b.S, k)
	b.C = dropFirst(b.C, k)
	b.X = dropFirst(b.X, k)
	b.Q = dropFirst(b.Q, k)
	b.O = dropFirst(b.O, k)
}

// add accumulates one value into bucket i, keeping only what aggregate
// needs.
func (b *buckets) add(i int, aggregate string, v any, t int64, m string) {
	n := len(b.At)
	switch aggregate {
	case AggCount:
		b.N = column(b.N, n, cap(b.At))
		b.N[i]++
	case AggSum, AggAvg:
		if f, ok := toFloat(v); ok {
			b.S = column(b.S, n, cap(b.At))
			b.S[i] = satAdd(b.S[i], millionths(f))
			if aggregate == AggAvg {
				b.C = column(b.C, n, cap(b.At))
				b.C[i]++
			}
		}
	case AggMin, AggMax, AggFirst, AggLast:
		b.X = column(b.X, n, cap(b.At))
		x := &b.X[i]
		if x.M != "" && !betterThan(aggregate, v, t, m, x) {
			return
		}
		if aggregate == AggMin || aggregate == AggMax {
			if _, isFloat := v.(float64); !isFloat {
				f, _ := toFloat(v) // numeric: see addWindowed
				v = f
			}
		}
		*x = val{V: v, T: t, M: m}
	case AggMostFrequent, AggUnique, AggDistinctCount:
		b.Q = column(b.Q, n, cap(b.At))
		if len(b.Q[i]) == 0 {
			b.Q[i] = b.oneFV(fv{K: valueKey(v), N: 1, T: t, M: m})
			break
		}
		b.Q[i] = addFV(b.Q[i], valueKey(v), 1, t, m)
		if aggregate != AggMostFrequent && len(b.Q[i]) > maxValues {
			b.O = column(b.O, n, cap(b.At))
			b.Q[i], b.O[i] = capFV(b.Q[i]), true
		}
	}
}

// addFV adds n of the value k, latest at (t, msg), to the sorted set q.
func addFV(q []fv, k string, n, t int64, msg string) []fv {
	i, found := slices.BinarySearchFunc(q, k, func(f fv, k string) int { return strings.Compare(f.K, k) })
	if !found {
		return slices.Insert(q, i, fv{K: k, N: n, T: t, M: msg})
	}
	f := &q[i]
	f.N += n
	if less(f.T, f.M, t, msg) {
		f.T, f.M = t, msg
	}
	return q
}

// capFV keeps the maxValues smallest values, as capSet does.
func capFV(q []fv) []fv {
	if len(q) <= maxValues {
		return q
	}
	clear(q[maxValues:])
	return q[:maxValues]
}

// betterThan is better for a value not yet made a val (no allocation).
func betterThan(aggregate string, v any, t int64, m string, y *val) bool {
	switch aggregate {
	case AggMin, AggMax:
		fx, _ := toFloat(v)
		fy, _ := toFloat(y.V)
		if aggregate == AggMin {
			return fx < fy || (fx == fy && less(t, m, y.T, y.M))
		}
		return fx > fy || (fx == fy && less(t, m, y.T, y.M))
	case AggFirst:
		return less(t, m, y.T, y.M)
	}
	return less(y.T, y.M, t, m)
}

// mergeFrom folds bucket i of o into bucket j.
func (b *buckets) mergeFrom(j int, o *buckets, i int, aggregate string) {
	n := len(b.At)
	if i < len(o.N) && o.N[i] != 0 {
		b.N = column(b.N, n, cap(b.At))
		b.N[j] += o.N[i]
	}
	if i < len(o.S) && o.S[i] != 0 {
		b.S = column(b.S, n, cap(b.At))
		b.S[j] = satAdd(b.S[j], o.S[i])
	}
	if i < len(o.C) && o.C[i] != 0 {
		b.C = column(b.C, n, cap(b.At))
		b.C[j] += o.C[i]
	}
	if i < len(o.X) && o.X[i].M != "" {
		b.X = column(b.X, n, cap(b.At))
		if b.X[j].M == "" || better(aggregate, &o.X[i], &b.X[j]) {
			b.X[j] = o.X[i]
		}
	}
	if i < len(o.Q) && len(o.Q[i]) > 0 {
		b.Q = column(b.Q, n, cap(b.At))
		for _, f := range o.Q[i] {
			b.Q[j] = addFV(b.Q[j], f.K, f.N, f.T, f.M)
		}
		if aggregate == AggUnique || aggregate == AggDistinctCount {
			if len(b.Q[j]) > maxValues {
				b.O = column(b.O, n, cap(b.At))
				b.Q[j], b.O[j] = capFV(b.Q[j]), true
			}
		}
	}
	if i < len(o.O) && o.O[i] {
		b.O = column(b.O, n, cap(b.At))
		b.O[j] = true
	}
}

// windowBuckets is how many buckets a window spans.
const windowBuckets = 64

// bucketWidth is the width (µs) of a window's buckets: window/64, rounded
// up and at least a second, so that the buckets meeting any stretch as
// long as the window number at most 65. Buckets are aligned to multiples
// of the width since the Unix epoch, so every profile and every replay
// cuts time the same way.
func bucketWidth(window time.Duration) int64 {
	us := int64(window / time.Microsecond)
	return max((us+windowBuckets-1)/windowBuckets, int64(time.Second/time.Microsecond))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// addWindowed adds a value to its bucket. Buckets that end at or before
// the window's start as of the latest bucket's start go: they cannot count
// at any time after the latest event, and state stays bounded (at most 65
// buckets). Since the latest bucket only moves forward, what goes does not
// depend on the order events arrive in.
func (g *agg) addWindowed(c *compiled, v any, t int64, m string) {
	if c.Aggregate == AggMin || c.Aggregate == AggMax {
		if _, ok := toFloat(v); !ok {
			return // counts for nothing, and an empty bucket has no place
		}
	}
	at := floorDiv(t, c.width) * c.width
	n := len(g.B.At)
	if n > 0 && at+c.width <= max(g.B.At[n-1], at)-c.span {
		return
	}
	i := g.slotFor(at, c.Aggregate)
	g.B.add(i, c.Aggregate, v, t, m)
	if c.latest && (g.LM == "" || less(g.LT, g.LM, t, m)) {
		g.LT, g.LM = t, m
	}
	if i == len(g.B.At)-1 {
		g.expire(c.width, at-c.span)
	}
}

// slot returns the index of the bucket starting at at, made if need be.
func (g *agg) slot(at int64) int { return g.slotFor(at, "") }

// slotFor is slot for a value of aggregate, for which a new bucket makes
// room in the columns the aggregate needs.
func (g *agg) slotFor(at int64, aggregate string) int {
	n := len(g.B.At)
	switch {
	case n == 0 || g.B.At[n-1] < at: // events mostly come in time order
		g.B.insert(n, at, aggregate)
		return n
	case g.B.At[n-1] == at:
		return n - 1
	}
	i, found := slices.BinarySearch(g.B.At, at)
	if !found {
		g.B.insert(i, at, aggregate)
	}
	return i
}

// mergeBuckets folds the buckets of o into g's (both fitted to c).
func (g *agg) mergeBuckets(o *agg, c *compiled) {
	for i, at := range o.B.At {
		g.B.mergeFrom(g.slot(at), &o.B, i, c.Aggregate)
	}
	if o.LM != "" && (g.LM == "" || less(g.LT, g.LM, o.LT, o.LM)) {
		g.LT, g.LM = o.LT, o.LM
	}
	if n := len(g.B.At); n > 0 {
		g.expire(c.width, g.B.At[n-1]-c.span)
	}
}

// expire drops the buckets that end at or before cut.
func (g *agg) expire(width, cut int64) bool {
	i := 0
	for i < len(g.B.At) && g.B.At[i]+width <= cut {
		i++
	}
	if i == 0 {
		return false
	}
	g.B.drop(i)
	if len(g.B.At) == 0 {
		// The latest event was in the newest bucket, gone too.
		g.LT, g.LM = 0, ""
	}
	return true
}

// restore moves legacy buckets, placed by key, into the columns, and their
// latest events to the aggregate.
func (g *agg) restore() {
	lb := g.LB
	g.LB = nil
	if g.W <= 0 {
		return
	}
	for i := range lb {
		b := &lb[i]
		var q []fv
		for k, f := range b.Freq {
			q = addFV(q, k, f.N, f.T, f.M)
		}
		o := buckets{At: []int64{0}, N: []int64{b.N}, S: []int64{b.S}, C: []int64{b.C}, X: []val{b.X}, Q: [][]fv{q}, O: []bool{b.Over}}
		// Legacy buckets are distinct, so each fills an empty one and
		// the aggregate's rule for choosing between values is not needed.
		g.B.mergeFrom(g.slot(floorDiv(b.key(), g.W)*g.W), &o, 0, "")
		if b.LM != "" && (g.LM == "" || less(g.LT, g.LM, b.LT, b.LM)) {
			g.LT, g.LM = b.LT, b.LM
		}
	}
}

// bare is whether g holds nothing but what definition c gives it (an
// empty window of c's width): it reads back as no aggregate, which is the
// same, and most profiles have an empty window or two.
func (g *agg) bare(c *compiled) bool {
	return g.N == 0 && g.S == 0 && g.C == 0 && g.Lo == nil && g.Hi == nil && g.Fst == nil && g.Lst == nil &&
		len(g.Freq) == 0 && !g.Over && g.LT == 0 && g.LM == "" && g.W == c.width && len(g.B.At) == 0 &&
		len(g.LB) == 0 && len(g.Win) == 0
}

// fit makes a stored aggregate follow definition c: the all-time fields
// of a windowed one, and the buckets of an all-time one, are left alone
// (a changed definition is backfilled), but buckets of another width, and
// the windows of the legacy format, are bucketed again, each old bucket
// whole into the new bucket that holds its start.
func (g *agg) fit(c *compiled) bool {
	if c.width == 0 || (g.W == c.width && g.Win == nil) {
		return false
	}
	if g.W == 0 {
		g.LT, g.LM = 0, "" // an all-time latest is not the window's
	}
	old, win := g.B, g.Win
	g.W, g.B, g.Win = c.width, buckets{}, nil
	for i, at := range old.At {
		g.B.mergeFrom(g.slot(floorDiv(at, c.width)*c.width), &old, i, c.Aggregate)
	}
	if n := len(g.B.At); n > 0 {
		g.expire(c.width, g.B.At[n-1]-c.span)
	}
	for _, v := range win {
		g.addWindowed(c, v.V, v.T, v.M)
	}
	return true
}

// fold merges the buckets into one aggregate to read a value from, and
// their value sets into q (sorted by value; built in *scratch when there
// is more than one). It shares what it can with the buckets, so it is for
// reading only.
func (g *agg) fold(aggregate string, scratch *[]fv) (out agg, q []fv) {
	if len(g.B.At) > 0 {
		out.LT, out.LM = g.LT, g.LM
	}
	for _, n := range g.B.N {
		out.N += n
	}
	for _, s := range g.B.S {
		out.S = satAdd(out.S, s)
	}
	for _, c := range g.B.C {
		out.C += c
	}
	x := bestX(g.B.X, aggregate)
	for _, o := range g.B.O {
		out.Over = out.Over || o
	}
	switch aggregate {
	case AggMin:
		out.Lo = x
	case AggMax:
		out.Hi = x
	case AggFirst:
		out.Fst = x
	case AggLast:
		out.Lst = x
	}
	sets, values := 0, 0
	for _, s := range g.B.Q {
		if len(s) > 0 {
			sets++
			values += len(s)
			q = s
		}
	}
	if sets > 1 && values <= 64 {
		// Few values (mostly one a bucket, some repeated): adding them
		// to a sorted set copies only the distinct ones.
		q = (*scratch)[:0]
		for _, s := range g.B.Q {
			for i := range s {
				q = addFV(q, s[i].K, s[i].N, s[i].T, s[i].M)
			}
		}
		*scratch = q[:0] // fewer than maxValues: no cap to apply
	} else if sets > 1 {
		q = (*scratch)[:0]
		for _, s := range g.B.Q {
			q = append(q, s...)
		}
		slices.SortFunc(q, func(a, b fv) int { return strings.Compare(a.K, b.K) })
		k := 0
		for i := range q {
			if k > 0 && q[k-1].K == q[i].K {
				f := &q[k-1]
				f.N += q[i].N
				if less(f.T, f.M, q[i].T, q[i].M) {
					f.T, f.M = q[i].T, q[i].M
				}
				continue
			}
			q[k] = q[i]
			k++
		}
		q = q[:k]
		*scratch = q[:0]
		if (aggregate == AggUnique || aggregate == AggDistinctCount) && len(q) > maxValues {
			q, out.Over = q[:maxValues], true
		}
	}
	return out, q
}

// bestX is the buckets' value that better prefers, each bucket's number
// read once (better reads both sides' on every comparison).
func bestX(xs []val, aggregate string) *val {
	var x *val
	switch aggregate {
	case AggMin, AggMax:
		lower := aggregate == AggMin
		var fx float64
		for i := range xs {
			b := &xs[i]
			if b.M == "" {
				continue
			}
			f, _ := toFloat(b.V) // as smaller and larger compare
			if x == nil || (lower && f < fx) || (!lower && f > fx) || (f == fx && earlier(b, x)) {
				x, fx = b, f
			}
		}
	case AggFirst:
		for i := range xs {
			if b := &xs[i]; b.M != "" && (x == nil || earlier(b, x)) {
				x = b
			}
		}
	default:
		for i := range xs {
			if b := &xs[i]; b.M != "" && (x == nil || better(aggregate, b, x)) {
				x = b
			}
		}
	}
	return x
}

// topFV is the most frequent value; ties go to the smaller value.
func topFV(q []fv) *fv {
	var best *fv
	for i := range q {
		if best == nil || q[i].N > best.N {
			best = &q[i] // sorted: an equal count later is a larger value
		}
	}
	return best
}

// add accumulates one value into an all-time aggregate. It changes the
// values g points to in place: an agg owns them (merge copies).
func (g *agg) add(aggregate string, v any, t int64, m string, r *room) {
	g.N++
	if less(g.LT, g.LM, t, m) || g.LM == "" {
		g.LT, g.LM = t, m
	}
	switch aggregate {
	case AggSum, AggAvg:
		if f, ok := toFloat(v); ok {
			g.S = satAdd(g.S, millionths(f))
			g.C++
		}
	case AggMin, AggMax:
		f, ok := toFloat(v)
		if !ok {
			return
		}
		if _, isFloat := v.(float64); !isFloat {
			v = f
		}
		if aggregate == AggMin {
			if g.Lo == nil || f < num(g.Lo) || (f == num(g.Lo) && less(t, m, g.Lo.T, g.Lo.M)) {
				setVal(&g.Lo, v, t, m, r)
			}
		} else if g.Hi == nil || f > num(g.Hi) || (f == num(g.Hi) && less(t, m, g.Hi.T, g.Hi.M)) {
			setVal(&g.Hi, v, t, m, r)
		}
	case AggFirst:
		if g.Fst == nil || less(t, m, g.Fst.T, g.Fst.M) {
			setVal(&g.Fst, v, t, m, r)
		}
	case AggLast:
		if g.Lst == nil || less(g.Lst.T, g.Lst.M, t, m) {
			setVal(&g.Lst, v, t, m, r)
		}
	case AggMostFrequent:
		g.Freq = addFreqIn(r, g.Freq, valueKey(v), 1, t, m)
	case AggUnique, AggDistinctCount:
		g.Freq = addFreqIn(r, g.Freq, valueKey(v), 1, t, m)
		capSet(g.Freq, &g.Over)
	}
}

func num(x *val) float64 {
	f, _ := toFloat(x.V)
	return f
}

func setVal(dst **val, v any, t int64, m string, r *room) {
	if *dst == nil {
		*dst = r.newVal()
	}
	**dst = val{V: v, T: t, M: m}
}

// maxValues caps the value sets of unique and distinct_count per profile.
// The set keeps the smallest values, which is order-independent.
const maxValues = 1000

func less(t1 int64, m1 string, t2 int64, m2 string) bool {
	if t1 != t2 {
		return t1 < t2
	}
	return m1 < m2
}

// millionths turns an amount into an exact integer, so that sums are
// associative (float sums in different orders differ in the last bits).
func millionths(v float64) int64 {
	x := math.Round(v * 1e6)
	if x > math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	if x < math.MinInt64/4 {
		return math.MinInt64 / 4
	}
	return int64(x)
}

func satAdd(a, b int64) int64 {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		if a > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// toFloat reads a number from JSON (or a numeric string, as CSV imports send).
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// normalize makes a property value JSON-stable: what is stored must read
// back equal after a round trip.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func valueKey(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func addFreq(m map[string]*freq, k string, n, t int64, msg string) map[string]*freq {
	return addFreqIn(nil, m, k, n, t, msg)
}

// addFreqIn is addFreq making new counts in r (nil: on their own).
func addFreqIn(r *room, m map[string]*freq, k string, n, t int64, msg string) map[string]*freq {
	if m == nil {
		m = map[string]*freq{}
	}
	f := m[k]
	if f == nil {
		f = r.newFreq()
		*f = freq{N: n, T: t, M: msg}
		m[k] = f
		return m
	}
	f.N += n
	if less(f.T, f.M, t, msg) {
		f.T, f.M = t, msg
	}
	return m
}

// topFreq is the most frequent value; ties go to the smaller value.
func topFreq(m map[string]*freq) (string, *freq) {
	var best string
	var bf *freq
	for k, f := range m {
		if bf == nil || f.N > bf.N || (f.N == bf.N && k < best) {
			best, bf = k, f
		}
	}
	return best, bf
}

func insertPurchase(ps []purchase, p purchase) []purchase {
	i := sort.Search(len(ps), func(i int) bool { return !less(ps[i].T, ps[i].M, p.T, p.M) })
	if i < len(ps) && ps[i].T == p.T && ps[i].M == p.M {
		return ps // the same event again
	}
	ps = append(ps, purchase{})
	copy(ps[i+1:], ps[i:])
	ps[i] = p
	return ps
}

func insertSurvey(ss []Survey, s Survey) []Survey {
	i := sort.Search(len(ss), func(i int) bool { return !less(ss[i].T, ss[i].M, s.T, s.M) })
	if i < len(ss) && ss[i].T == s.T && ss[i].M == s.M {
		return ss
	}
	ss = append(ss, Survey{})
	copy(ss[i+1:], ss[i:])
	ss[i] = s
	return ss
}

func insertVal(vs []val, v val) []val {
	i := sort.Search(len(vs), func(i int) bool { return !less(vs[i].T, vs[i].M, v.T, v.M) })
	if i < len(vs) && vs[i].T == v.T && vs[i].M == v.M {
		return vs
	}
	vs = append(vs, val{})
	copy(vs[i+1:], vs[i:])
	vs[i] = v
	return vs
}

// sessionGap separates visits.
const sessionGap = int64(30 * time.Minute / time.Microsecond)

// insertSession adds the run [a, b] to the sorted disjoint runs, joining
// every run within sessionGap of it. Runs are the connected components of
// the event times, which do not depend on insertion order.
func insertSession(ss [][2]int64, a, b int64) [][2]int64 {
	// Events mostly come in time order: a run after the last one, or
	// one that the last run holds or extends (runs are more than
	// sessionGap apart, so no earlier run can be joined).
	if n := len(ss); n > 0 && a >= ss[n-1][0] {
		if last := &ss[n-1]; a <= last[1]+sessionGap {
			last[1] = max(last[1], b)
			return ss
		}
		if len(ss) == cap(ss) {
			ss = slices.Grow(ss, max(4, n)) // a visitor's sessions: not one at a time
		}
		return append(ss, [2]int64{a, b})
	}
	return joinSession(ss, a, b)
}

// joinSession is insertSession for a run anywhere.
func joinSession(ss [][2]int64, a, b int64) [][2]int64 {
	i := sort.Search(len(ss), func(i int) bool { return ss[i][1]+sessionGap >= a })
	j := i
	for j < len(ss) && ss[j][0]-sessionGap <= b {
		a, b = min(a, ss[j][0]), max(b, ss[j][1])
		j++
	}
	if i == j {
		ss = append(ss, [2]int64{})
		copy(ss[i+1:], ss[i:])
		ss[i] = [2]int64{a, b}
		return ss
	}
	ss[i] = [2]int64{a, b}
	return append(ss[:i+1], ss[j:]...)
}

func mergeVal(a, b *val, better func(x, y *val) bool) *val {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if better(b, a) {
		return b
	}
	return a
}

func earlier(x, y *val) bool { return less(x.T, x.M, y.T, y.M) }
func later(x, y *val) bool   { return less(y.T, y.M, x.T, x.M) }
func smaller(x, y *val) bool {
	fx, _ := toFloat(x.V)
	fy, _ := toFloat(y.V)
	return fx < fy || (fx == fy && earlier(x, y))
}
func larger(x, y *val) bool {
	fx, _ := toFloat(x.V)
	fy, _ := toFloat(y.V)
	return fx > fy || (fx == fy && earlier(x, y))
}

// capSet keeps the maxValues smallest values.
func capSet(m map[string]*freq, over *bool) {
	if len(m) <= maxValues {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys[maxValues:] {
		delete(m, k)
	}
	*over = true
}

// merge folds o into a (both describe the same definition). It copies
// o's values: add changes a's in place.
func (a *agg) merge(o *agg) {
	a.N += o.N
	a.S = satAdd(a.S, o.S)
	a.C += o.C
	a.Lo = copyVal(a.Lo, o.Lo, smaller)
	a.Hi = copyVal(a.Hi, o.Hi, larger)
	a.Fst = copyVal(a.Fst, o.Fst, earlier)
	a.Lst = copyVal(a.Lst, o.Lst, later)
	for k, f := range o.Freq {
		a.Freq = addFreq(a.Freq, k, f.N, f.T, f.M)
	}
	a.Over = a.Over || o.Over
	capSet(a.Freq, &a.Over)
	if less(a.LT, a.LM, o.LT, o.LM) {
		a.LT, a.LM = o.LT, o.LM
	}
}

func copyVal(a, o *val, better func(x, y *val) bool) *val {
	if o == nil || (a != nil && !better(o, a)) {
		return a
	}
	c := *o
	return &c
}

// merge folds o into s.
func (s *pstate) merge(o *pstate, l Lifecycle) {
	if o.Buys != nil {
		if s.Buys == nil {
			s.Buys = &purchases{}
		}
		s.Buys.merge(o.Buys, l)
	}
	for _, r := range o.Sessions {
		s.Sessions = insertSession(s.Sessions, r[0], r[1])
	}
	for k, f := range o.Cats {
		s.Cats = addFreq(s.Cats, k, f.N, f.T, f.M)
	}
	for k, f := range o.Chans {
		s.Chans = addFreq(s.Chans, k, f.N, f.T, f.M)
	}
	for _, v := range o.Surveys {
		s.Surveys = insertSurvey(s.Surveys, v)
	}
	// Both are aligned to the same definitions.
	for i, g := range o.aggs {
		c := (*s.defs)[i]
		switch cur := s.aggs[i]; {
		case g == nil:
		case cur == nil:
			s.aggs[i] = g
		case c.width > 0:
			cur.mergeBuckets(g, c)
		default:
			cur.merge(g)
		}
	}
}
