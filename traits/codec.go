package traits

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"

	gojson "github.com/goccy/go-json"
)

// The compact state format (version 2). The state is encoded and written
// on every batch, so its size is much of the cost of a write. Three things
// make it small:
//
//   - the events the state refers to (an aggregate's latest event, the
//     event that gave a minimum, a purchase...) are listed once, as a
//     column of times, each relative to the one before, and a column of
//     message ids; everything else refers to them by position. The same
//     order feeds every definition, so a reference is a small number
//     instead of a time and a message id each time;
//   - structures are columns of numbers (arrays) rather than objects with
//     repeated keys, and times are relative to the previous one;
//   - buckets keep only what their aggregate needs, and the sets of
//     unique and distinct_count keep values without counts or events
//     (their provenance is the aggregate's latest event).
//
// It is written by hand (strconv appends) because it is written far more
// often than it is read; it is read with goccy/go-json into the column
// structs below. Every older format is still read (see decodeState).
//
// Version 3 is version 2 with the strings that repeat written once. A
// windowed aggregate keeps a value per bucket, and a customer's buckets
// mostly hold the same few values ("music" in every bucket), so:
//
//   - the values of sets (keys of "q", "c", "ch" and bucket sets) and the
//     string values of buckets are listed once, in a string table "t" in
//     order of first reference, and referred to by position: sets write
//     "x":[positions] where version 2 wrote "k":[strings], and buckets
//     whose values are all strings write "bt":[positions] (-1: none)
//     instead of "bv";
//   - the bucket sets of an aggregate in which no bucket holds more than
//     one value (most buckets hold one event) are columns rather than an
//     object per bucket: "qk" the value's position (-1: an empty set),
//     and for most_frequent "qe" its event and "qn" its count (absent
//     when every count is 1).
//
// Version 2 is still read exactly as before: stores hold it.
const stateVersion = 3

var (
	v2Prefix = []byte(`{"v":2,`)
	v3Prefix = []byte(`{"v":3,`)
)

type stateV2 struct {
	V  int               `json:"v"`
	ET []int64           `json:"e"`  // event times, each relative to the previous
	EM []string          `json:"m"`  // event message ids
	B  *buysV2           `json:"b"`  // purchases
	S  []int64           `json:"s"`  // sessions: start, end, start, end..., each relative to the previous
	C  *freqsV2          `json:"c"`  // categories
	CH *freqsV2          `json:"ch"` // channels
	SV []Survey          `json:"sv"`
	A  map[string]*aggV2 `json:"a"`
	T  []string          `json:"t"` // version 3: the string table
}

type buysV2 struct {
	N  int64   `json:"n"`
	S  int64   `json:"s"`
	E  []int   `json:"e"`  // the earliest purchases (events)
	EA []int64 `json:"ea"` // and their amounts
	L  int     `json:"l"`  // the last purchase (event)
	LA int64   `json:"la"` // and its amount
	GA []int64 `json:"ga"` // long gaps: starts, each relative to the previous
	GB []int   `json:"gb"` // and the purchase (event) that ends each
}

type freqsV2 struct {
	K []string `json:"k"` // values, sorted
	N []int64  `json:"n"` // their counts (absent for sets)
	E []int    `json:"e"` // their latest events (absent for sets)
	X []int    `json:"x"` // version 3: the values, as positions in the string table
}

type valV2 struct {
	V any `json:"v"`
	E int `json:"e"`
}

type aggV2 struct {
	N  int64    `json:"n"`
	S  int64    `json:"s"`
	C  int64    `json:"c"`
	O  bool     `json:"o"`
	L  int      `json:"l"` // the latest event + 1; 0: none
	Lo *valV2   `json:"lo"`
	Hi *valV2   `json:"hi"`
	F  *valV2   `json:"f"`
	La *valV2   `json:"la"`
	Q  *freqsV2 `json:"q"`
	// Windowed: bucket width (µs), bucket numbers (start/width, each
	// relative to the previous), and the columns the aggregate needs.
	W  int64     `json:"w"`
	K  []int64   `json:"k"`
	BN []int64   `json:"bn"`
	BS []int64   `json:"bs"`
	BC []int64   `json:"bc"`
	BV []any     `json:"bv"`
	BE []int     `json:"be"` // event of each bucket's value + 1; 0: none
	BQ []freqsV2 `json:"bq"`
	BO []int     `json:"bo"` // buckets whose value set hit its cap
	// Version 3: bucket values that are all strings, as positions in
	// the string table (-1: none), in place of BV; and bucket sets of at
	// most one value as columns, in place of BQ (see stateVersion).
	BT []int   `json:"bt"`
	QK []int   `json:"qk"`
	QN []int64 `json:"qn"`
	QE []int   `json:"qe"`
}

type evKey struct {
	t int64
	m string
}

// encoder appends the compact format to buf.
type encoder struct {
	buf    []byte
	tab    []byte // the event table, written last (see encodeV2)
	byTime map[int64]int
	refs   map[evKey]int // events at an instant byTime has for another
	ts     []int64
	ms     []string
	err    error
	keys   []string // scratch for sorting map keys
	v2     bool     // write version 2 (tests: stores still hold it)
	strs   []string // the string table, in order of first reference
	byStr  map[string]int
}

// linearStrs is how long the string table is searched element by element
// before it is indexed by byStr: most states have a handful of strings,
// and comparing a few short strings is cheaper than hashing one.
const linearStrs = 16

// sref numbers the string s in order of first reference.
func (e *encoder) sref(s string) int {
	if len(e.strs) <= linearStrs {
		for i, t := range e.strs {
			if t == s {
				return i
			}
		}
		if len(e.strs) == linearStrs { // the table outgrows the search
			if e.byStr == nil {
				e.byStr = make(map[string]int, 4*linearStrs)
			}
			for i, t := range e.strs {
				e.byStr[t] = i
			}
		}
	} else if i, ok := e.byStr[s]; ok {
		return i
	}
	if len(e.strs) >= linearStrs {
		e.byStr[s] = len(e.strs)
	}
	e.strs = append(e.strs, s)
	return len(e.strs) - 1
}

// skey writes a set's value: itself in version 2, its position in the
// string table in version 3.
func (e *encoder) skey(s string) {
	if e.v2 {
		e.str(s)
		return
	}
	e.buf = strconv.AppendInt(e.buf, int64(e.sref(s)), 10)
}

// openSet starts a set's value column: "k" in version 2, "x" in 3.
func (e *encoder) openSet() {
	if e.v2 {
		e.buf = append(e.buf, `{"k":[`...)
	} else {
		e.buf = append(e.buf, `{"x":[`...)
	}
}

// ref numbers the event (t, m) in order of first reference. Hashing a
// time is much cheaper than hashing a time and a string, and events at
// one instant are rare: the first event of each time is found by its time
// alone (byTime), any other at that instant by its whole key (refs).
func (e *encoder) ref(t int64, m string) int {
	i, ok := e.byTime[t]
	if ok && e.ms[i] == m {
		return i
	}
	if ok {
		k := evKey{t, m}
		if j, ok := e.refs[k]; ok {
			return j
		}
		e.refs[k] = len(e.ts)
	} else {
		e.byTime[t] = len(e.ts)
	}
	i = len(e.ts)
	e.ts = append(e.ts, t)
	e.ms = append(e.ms, m)
	return i
}

func (e *encoder) key(k string) {
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, k...)
	e.buf = append(e.buf, '"', ':')
}

func (e *encoder) int(k string, n int64) {
	e.key(k)
	e.buf = strconv.AppendInt(e.buf, n, 10)
	e.buf = append(e.buf, ',')
}

func (e *encoder) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, err := gojson.Marshal(s)
			if err != nil {
				e.err = err
			}
			e.buf = append(e.buf, b...)
			return
		}
	}
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, '"')
}

func (e *encoder) value(v any) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			e.err = errors.New("traits: a value is not a finite number")
			e.buf = append(e.buf, '0')
			return
		}
		e.buf = appendFloat(e.buf, x)
	case string:
		e.str(x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case nil:
		e.buf = append(e.buf, "null"...)
	default:
		b, err := gojson.Marshal(v)
		if err != nil {
			e.err = err
			b = []byte("null")
		}
		e.buf = append(e.buf, b...)
	}
}

// appendFloat is strconv.AppendFloat(b, x, 'g', -1, 64), faster for what
// most values are, amounts and counts: an integer, or a number of cents,
// below a million. Such a number's shortest form is its decimal digits
// (any other decimal as short is at least a cent away, far more than
// the spacing of floats there), and 'g' prints it without an exponent.
func appendFloat(b []byte, x float64) []byte {
	if ax := math.Abs(x); (ax >= 0.01 && ax < 1e6) || (x == 0 && !math.Signbit(x)) {
		if x == math.Trunc(x) {
			return strconv.AppendInt(b, int64(x), 10)
		}
		// x is the float nearest k/100 for an integer k.
		if k := x * 100; k == math.Trunc(k) && k/100 == x {
			c := int64(k)
			if c < 0 {
				b = append(b, '-')
				c = -c
			}
			b = strconv.AppendInt(b, c/100, 10)
			b = append(b, '.', byte('0'+c%100/10))
			if c%10 != 0 {
				b = append(b, byte('0'+c%10))
			}
			return b
		}
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// ints appends k:[...] with each number relative to the previous when delta.
func (e *encoder) ints(k string, ns []int64, delta bool) {
	e.key(k)
	e.buf = append(e.buf, '[')
	prev := int64(0)
	for i, n := range ns {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if delta {
			n, prev = n-prev, n
		}
		e.buf = strconv.AppendInt(e.buf, n, 10)
	}
	e.buf = append(e.buf, ']', ',')
}

func (e *encoder) open(k string, c byte) {
	e.key(k)
	e.buf = append(e.buf, c)
}

// close ends an object or array opened with open, dropping a trailing comma.
func (e *encoder) close(c byte) {
	if n := len(e.buf); e.buf[n-1] == ',' {
		e.buf = e.buf[:n-1]
	}
	e.buf = append(e.buf, c, ',')
}

func (e *encoder) sortedKeys(m map[string]*freq) []string {
	e.keys = e.keys[:0]
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	return e.keys
}

// freqs writes a value table; a set (counts false) keeps the values only.
func (e *encoder) freqs(m map[string]*freq, counts bool) {
	keys := e.sortedKeys(m)
	e.openSet()
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.skey(k)
	}
	e.buf = append(e.buf, ']')
	if counts {
		e.buf = append(e.buf, `,"n":[`...)
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = strconv.AppendInt(e.buf, m[k].N, 10)
		}
		e.buf = append(e.buf, `],"e":[`...)
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			f := m[k]
			e.buf = strconv.AppendInt(e.buf, int64(e.ref(f.T, f.M)), 10)
		}
		e.buf = append(e.buf, ']')
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) val(k string, v *val) {
	if v == nil {
		return
	}
	e.open(k, '{')
	e.buf = append(e.buf, `"v":`...)
	e.value(v.V)
	e.buf = append(e.buf, `,"e":`...)
	e.buf = strconv.AppendInt(e.buf, int64(e.ref(v.T, v.M)), 10)
	e.buf = append(e.buf, '}', ',')
}

func (e *encoder) latest(t int64, m string) int64 {
	if m == "" && t == 0 {
		return 0
	}
	return int64(e.ref(t, m)) + 1
}

// agg writes g; sets (unique, distinct_count) keep their values only.
func (e *encoder) agg(g *agg, set bool) {
	e.buf = append(e.buf, '{')
	if g.N != 0 {
		e.int("n", g.N)
	}
	if g.S != 0 {
		e.int("s", g.S)
	}
	if g.C != 0 {
		e.int("c", g.C)
	}
	if g.Over {
		e.buf = append(e.buf, `"o":true,`...)
	}
	if l := e.latest(g.LT, g.LM); l != 0 {
		e.int("l", l)
	}
	e.val("lo", g.Lo)
	e.val("hi", g.Hi)
	e.val("f", g.Fst)
	e.val("la", g.Lst)
	if len(g.Freq) > 0 {
		e.key("q")
		e.freqs(g.Freq, !set)
		e.buf = append(e.buf, ',')
	}
	if g.W > 0 {
		e.int("w", g.W)
		if len(g.B.At) > 0 {
			e.bucketColumns(g, set)
		}
	}
	e.close('}')
}

func anyNonZero[T comparable](c []T) bool {
	var zero T
	for _, x := range c {
		if x != zero {
			return true
		}
	}
	return false
}

func (e *encoder) column(k string, c []int64) {
	e.open(k, '[')
	for i := range c {
		e.buf = strconv.AppendInt(e.buf, c[i], 10)
		e.buf = append(e.buf, ',')
	}
	e.close(']')
}

func (e *encoder) bucketColumns(g *agg, set bool) {
	b := &g.B
	// strs: every bucket value (of the buckets that have one) is a
	// string; small: no bucket set holds more than one value.
	hasX, strs := false, !e.v2
	for i := range b.X {
		if b.X[i].M != "" {
			hasX = true
			if _, ok := b.X[i].V.(string); !ok {
				strs = false
			}
		}
	}
	hasQ, small := false, !e.v2
	for _, q := range b.Q {
		hasQ = hasQ || len(q) > 0
		small = small && len(q) <= 1
	}
	e.open("k", '[')
	prev := int64(0)
	for _, at := range b.At {
		n := floorDiv(at, g.W)
		e.buf = strconv.AppendInt(e.buf, n-prev, 10)
		e.buf = append(e.buf, ',')
		prev = n
	}
	e.close(']')
	if anyNonZero(b.N) {
		e.column("bn", b.N)
	}
	if anyNonZero(b.S) {
		e.column("bs", b.S)
	}
	if anyNonZero(b.C) {
		e.column("bc", b.C)
	}
	if hasX && strs {
		e.open("bt", '[')
		for i := range b.X {
			r := int64(-1)
			if x := &b.X[i]; x.M != "" {
				r = int64(e.sref(x.V.(string)))
			}
			e.buf = strconv.AppendInt(e.buf, r, 10)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	} else if hasX {
		e.open("bv", '[')
		for i := range b.X {
			e.value(b.X[i].V)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	if hasX {
		e.open("be", '[')
		for i := range b.X {
			r := int64(0)
			if x := &b.X[i]; x.M != "" {
				r = int64(e.ref(x.T, x.M)) + 1
			}
			e.buf = strconv.AppendInt(e.buf, r, 10)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	if hasQ && small {
		e.smallSets(b.Q, !set)
	} else if hasQ {
		e.open("bq", '[')
		for _, q := range b.Q {
			e.set(q, !set)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	if anyNonZero(b.O) {
		e.open("bo", '[')
		for i, o := range b.O {
			if o {
				e.buf = strconv.AppendInt(e.buf, int64(i), 10)
				e.buf = append(e.buf, ',')
			}
		}
		e.close(']')
	}
}

// smallSets writes bucket sets of at most one value each as columns:
// "qk" the value (-1: none); with counts, "qe" its event and "qn" its
// count, the latter only if some count is not 1.
func (e *encoder) smallSets(qs [][]fv, counts bool) {
	e.open("qk", '[')
	ones := true
	for _, q := range qs {
		r := int64(-1)
		if len(q) == 1 {
			r = int64(e.sref(q[0].K))
			ones = ones && q[0].N == 1
		}
		e.buf = strconv.AppendInt(e.buf, r, 10)
		e.buf = append(e.buf, ',')
	}
	e.close(']')
	if !counts {
		return
	}
	if !ones {
		e.open("qn", '[')
		for _, q := range qs {
			n := int64(0)
			if len(q) == 1 {
				n = q[0].N
			}
			e.buf = strconv.AppendInt(e.buf, n, 10)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	e.open("qe", '[')
	for _, q := range qs {
		r := int64(0)
		if len(q) == 1 {
			r = int64(e.ref(q[0].T, q[0].M))
		}
		e.buf = strconv.AppendInt(e.buf, r, 10)
		e.buf = append(e.buf, ',')
	}
	e.close(']')
}

// set writes a bucket's values as freqs writes a table.
func (e *encoder) set(q []fv, counts bool) {
	e.openSet()
	for i := range q {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.skey(q[i].K)
	}
	e.buf = append(e.buf, ']')
	if counts {
		e.buf = append(e.buf, `,"n":[`...)
		for i := range q {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = strconv.AppendInt(e.buf, q[i].N, 10)
		}
		e.buf = append(e.buf, `],"e":[`...)
		for i := range q {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = strconv.AppendInt(e.buf, int64(e.ref(q[i].T, q[i].M)), 10)
		}
		e.buf = append(e.buf, ']')
	}
	e.buf = append(e.buf, '}')
}

// encodeV2 writes s in the current compact format, version 3 (the name is
// the one encode has always called). The aggregates go by name; s must be
// aligned to its definitions.
func (s *pstate) encodeV2() ([]byte, error) { return s.encodeCompact(stateVersion) }

// encodeCompact writes s in compact format version v, 2 or 3. Only tests
// write version 2, to check that what stores hold still reads the same.
func (s *pstate) encodeCompact(v int) ([]byte, error) {
	// The event and string tables go first but are known last: the body
	// is written to a pooled buffer, then copied after the tables into
	// the result.
	e, _ := encoders.Get().(*encoder)
	if e == nil {
		e = &encoder{buf: make([]byte, 0, 4096), byTime: make(map[int64]int, 64), refs: map[evKey]int{}}
	}
	defer e.release()
	e.v2 = v == 2
	if b := s.Buys; b != nil && b.N > 0 {
		e.open("b", '{')
		e.int("n", b.N)
		if b.Sum != 0 {
			e.int("s", b.Sum)
		}
		e.open("e", '[')
		for _, p := range b.Early {
			e.buf = strconv.AppendInt(e.buf, int64(e.ref(p.T, p.M)), 10)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
		e.open("ea", '[')
		for _, p := range b.Early {
			e.buf = strconv.AppendInt(e.buf, p.A, 10)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
		if b.Last != nil {
			e.int("l", int64(e.ref(b.Last.T, b.Last.M)))
			e.int("la", b.Last.A)
		}
		if len(b.Gaps) > 0 {
			ga := make([]int64, len(b.Gaps))
			gb := make([]int64, len(b.Gaps))
			for i, g := range b.Gaps {
				ga[i], gb[i] = g.A, int64(e.ref(g.B, g.M))
			}
			e.ints("ga", ga, true)
			e.ints("gb", gb, false)
		}
		e.close('}')
	}
	if len(s.Sessions) > 0 {
		e.open("s", '[')
		prev := int64(0)
		for _, r := range s.Sessions {
			e.buf = strconv.AppendInt(e.buf, r[0]-prev, 10)
			e.buf = append(e.buf, ',')
			e.buf = strconv.AppendInt(e.buf, r[1]-r[0], 10)
			e.buf = append(e.buf, ',')
			prev = r[1]
		}
		e.close(']')
	}
	if len(s.Cats) > 0 {
		e.key("c")
		e.freqs(s.Cats, true)
		e.buf = append(e.buf, ',')
	}
	if len(s.Chans) > 0 {
		e.key("ch")
		e.freqs(s.Chans, true)
		e.buf = append(e.buf, ',')
	}
	if len(s.Surveys) > 0 {
		b, err := gojson.Marshal(s.Surveys)
		if err != nil {
			return nil, err
		}
		e.key("sv")
		e.buf = append(e.buf, b...)
		e.buf = append(e.buf, ',')
	}
	if s.defs != nil {
		opened := false
		for i, c := range *s.defs {
			g := s.aggs[i]
			if g == nil || g.bare(c) {
				continue
			}
			if !opened {
				e.open("a", '{')
				opened = true
			}
			e.key(c.Name)
			e.agg(g, c.Aggregate == AggUnique || c.Aggregate == AggDistinctCount)
		}
		if opened {
			e.close('}')
		}
	} else if len(s.Aggs) > 0 {
		return nil, errors.New("traits: state not aligned to definitions")
	}
	if e.err != nil {
		return nil, e.err
	}
	// The table goes to a second pooled buffer, so that the result is
	// allocated once, at its size (refs come in no time order, so the
	// table's length is hard to guess).
	body := e.buf
	e.buf = e.tab[:0]
	defer func() { e.buf, e.tab = body, e.buf }() // the pooled buffers go back
	if len(e.ts) > 0 {
		e.ints("e", e.ts, true)
		e.open("m", '[')
		for _, m := range e.ms {
			e.str(m)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	if len(e.strs) > 0 {
		e.open("t", '[')
		for _, s := range e.strs {
			e.str(s)
			e.buf = append(e.buf, ',')
		}
		e.close(']')
	}
	if e.err != nil {
		return nil, e.err
	}
	prefix := v3Prefix
	if e.v2 {
		prefix = v2Prefix
	}
	out := make([]byte, 0, len(prefix)+len(e.buf)+len(body)+1)
	out = append(out, prefix...)
	out = append(out, e.buf...)
	out = append(out, body...)
	// Drop the trailing comma and close the object.
	if out[len(out)-1] == ',' {
		out = out[:len(out)-1]
	}
	return append(out, '}'), nil
}

// decodeV2 reads the compact format, version 2 or 3. Version 3 is turned
// into version 2's columns (strings for positions, a set per bucket) and
// read on as version 2 is; its fields are ignored in version 2, as they
// always were.
func decodeV2(raw []byte) (*pstate, error) {
	var d stateV2
	if err := gojson.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	if (d.V != 2 && d.V != 3) || len(d.ET) != len(d.EM) {
		return nil, errors.New("traits: not a version 2 or 3 state")
	}
	if d.V == 3 && !d.resolve() {
		return nil, errors.New("traits: inconsistent version 3 state")
	}
	ts := d.ET
	for i := 1; i < len(ts); i++ {
		ts[i] += ts[i-1]
	}
	bad := false
	ev := func(i int) (int64, string) {
		if i < 0 || i >= len(ts) {
			bad = true
			return 0, ""
		}
		return ts[i], d.EM[i]
	}
	st := &pstate{Surveys: d.SV}
	if b := d.B; b != nil {
		p := &purchases{N: b.N, Sum: b.S}
		if len(b.EA) != len(b.E) || len(b.GA) != len(b.GB) {
			bad = true
		}
		for i := range min(len(b.E), len(b.EA)) {
			t, m := ev(b.E[i])
			p.Early = append(p.Early, purchase{T: t, M: m, A: b.EA[i]})
		}
		if b.N > 0 {
			t, m := ev(b.L)
			p.Last = &purchase{T: t, M: m, A: b.LA}
		}
		prev := int64(0)
		for i := range min(len(b.GA), len(b.GB)) {
			a := prev + b.GA[i]
			prev = a
			t, m := ev(b.GB[i])
			p.Gaps = append(p.Gaps, gap{A: a, B: t, M: m})
		}
		if p.N > 0 && len(p.Early) == 0 {
			bad = true
		}
		st.Buys = p
	}
	if len(d.S)%2 != 0 {
		bad = true
	}
	if len(d.S) >= 2 {
		st.Sessions = make([][2]int64, 0, len(d.S)/2)
	}
	prev := int64(0)
	for i := 0; i+1 < len(d.S); i += 2 {
		a := prev + d.S[i]
		b := a + d.S[i+1]
		st.Sessions = append(st.Sessions, [2]int64{a, b})
		prev = b
	}
	freqs := func(q *freqsV2) map[string]*freq {
		if q == nil || len(q.K) == 0 {
			return nil
		}
		m := make(map[string]*freq, len(q.K))
		counts := len(q.N) == len(q.K) && len(q.E) == len(q.K)
		if !counts && (len(q.N) > 0 || len(q.E) > 0) {
			bad = true
		}
		fs := make([]freq, len(q.K)) // one allocation for the table
		for i, k := range q.K {
			f := &fs[i]
			f.N = 1
			if counts {
				f.N = q.N[i]
				f.T, f.M = ev(q.E[i])
			}
			m[k] = f
		}
		return m
	}
	st.Cats, st.Chans = freqs(d.C), freqs(d.CH)
	set := func(q *freqsV2) []fv {
		if q == nil || len(q.K) == 0 {
			return nil
		}
		counts := len(q.N) == len(q.K) && len(q.E) == len(q.K)
		if !counts && (len(q.N) > 0 || len(q.E) > 0) {
			bad = true
		}
		out := make([]fv, 0, len(q.K))
		for i, k := range q.K {
			f := fv{K: k, N: 1}
			if counts {
				f.N = q.N[i]
				f.T, f.M = ev(q.E[i])
			}
			if n := len(out); n > 0 && out[n-1].K >= k {
				out = addFV(out, f.K, f.N, f.T, f.M) // not as written: keep it a sorted set
				continue
			}
			out = append(out, f)
		}
		return out
	}
	value := func(v *valV2) *val {
		if v == nil {
			return nil
		}
		t, m := ev(v.E)
		return &val{V: v.V, T: t, M: m}
	}
	if len(d.A) > 0 {
		st.Aggs = make(map[string]*agg, len(d.A))
	}
	for name, a := range d.A {
		if a == nil {
			continue
		}
		g := &agg{N: a.N, S: a.S, C: a.C, Over: a.O, Lo: value(a.Lo), Hi: value(a.Hi), Fst: value(a.F), Lst: value(a.La), Freq: freqs(a.Q), W: a.W}
		if a.L > 0 {
			g.LT, g.LM = ev(a.L - 1)
		}
		if n := len(a.K); n > 0 {
			if a.W <= 0 {
				bad = true
				continue
			}
			column := func(c []int64) []int64 {
				if c != nil && len(c) != n {
					bad = true
					return nil
				}
				return c
			}
			bn, bs, bc := column(a.BN), column(a.BS), column(a.BC)
			// Events without values (a state edited by hand: the
			// encoder writes both or neither) are refused rather than
			// read past the values' end.
			if (a.BV != nil && len(a.BV) != n) || (a.BE != nil && len(a.BE) != n) || (a.BE != nil && a.BV == nil) || (a.BQ != nil && len(a.BQ) != n) {
				bad = true
				continue
			}
			g.B.At = make([]int64, n)
			k := int64(0)
			for i := range n {
				k += a.K[i]
				g.B.At[i] = k * a.W
			}
			// The columns are fresh from the decoder: the buckets own them.
			g.B.N, g.B.S, g.B.C = bn, bs, bc
			if a.BE != nil {
				g.B.X = make([]val, n)
				for i, r := range a.BE {
					if r > 0 {
						x := &g.B.X[i]
						x.T, x.M = ev(r - 1)
						x.V = a.BV[i]
					}
				}
			}
			if a.BQ != nil {
				g.B.Q = make([][]fv, n)
				for i := range a.BQ {
					g.B.Q[i] = set(&a.BQ[i])
				}
			}
			for _, i := range a.BO {
				if i >= 0 && i < n {
					if g.B.O == nil {
						g.B.O = make([]bool, n)
					}
					g.B.O[i] = true
				}
			}
		}
		st.Aggs[name] = g
	}
	if bad {
		return nil, errors.New("traits: inconsistent version 2 state")
	}
	return st, nil
}

// resolve turns a version 3 state into version 2's columns: strings in
// place of positions in the string table, and a set per bucket in place
// of the columns of small sets. It reports whether the state is
// consistent; what version 2 checks is left to decodeV2.
func (d *stateV2) resolve() bool {
	ok := true
	str := func(i int) string {
		if i < 0 || i >= len(d.T) {
			ok = false
			return ""
		}
		return d.T[i]
	}
	keys := func(q *freqsV2) {
		if q == nil {
			return
		}
		if q.K != nil {
			ok = false // version 3 sets are written by position only
		}
		q.K = nil
		if len(q.X) > 0 {
			q.K = make([]string, len(q.X))
			for i, x := range q.X {
				q.K[i] = str(x)
			}
		}
	}
	keys(d.C)
	keys(d.CH)
	for _, a := range d.A {
		if a == nil {
			continue
		}
		keys(a.Q)
		for i := range a.BQ {
			keys(&a.BQ[i])
		}
		if a.BT != nil {
			if a.BV != nil {
				ok = false
			}
			a.BV = make([]any, len(a.BT))
			for i, x := range a.BT {
				if x != -1 {
					a.BV[i] = str(x)
				}
			}
		}
		if a.QK == nil {
			if a.QN != nil || a.QE != nil {
				ok = false
			}
			continue
		}
		n := len(a.QK)
		if a.BQ != nil || (a.QN != nil && (len(a.QN) != n || a.QE == nil)) || (a.QE != nil && len(a.QE) != n) {
			ok = false
			continue
		}
		// One allocation for each column of the sets.
		a.BQ = make([]freqsV2, n)
		ks := make([]string, n)
		var ns []int64
		var es []int
		if a.QE != nil {
			ns, es = make([]int64, n), make([]int, n)
		}
		for i, x := range a.QK {
			if x == -1 {
				continue
			}
			q := &a.BQ[i]
			ks[i] = str(x)
			q.K = ks[i : i+1 : i+1]
			if es != nil {
				ns[i], es[i] = 1, a.QE[i]
				if a.QN != nil {
					ns[i] = a.QN[i]
				}
				q.N, q.E = ns[i:i+1:i+1], es[i:i+1:i+1]
			}
		}
	}
	return ok
}

var encoders sync.Pool

func (e *encoder) release() {
	if cap(e.buf) > 1<<16 || cap(e.tab) > 1<<16 {
		return // an outsized state: let the pool keep small buffers
	}
	clear(e.byTime)
	clear(e.refs)
	clear(e.ms)
	clear(e.byStr)
	clear(e.strs)
	e.buf, e.tab, e.ts, e.ms, e.keys, e.err = e.buf[:0], e.tab[:0], e.ts[:0], e.ms[:0], e.keys[:0], nil
	e.strs, e.v2 = e.strs[:0], false
	encoders.Put(e)
}

// isV2 tells whether raw is in a compact format, version 2 or 3 (decodeV2
// reads both).
func isV2(raw []byte) bool {
	return bytes.HasPrefix(raw, v2Prefix) || bytes.HasPrefix(raw, v3Prefix)
}
