package traits

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
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
	// Aggs of the computed traits, by definition name.
	Aggs map[string]*agg `json:"a,omitempty"`
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
// they need; windowed ones keep the events inside the window.
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
	Win  []val            `json:"w,omitempty"` // windowed: events in the window, sorted
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
	if m == nil {
		m = map[string]*freq{}
	}
	f := m[k]
	if f == nil {
		m[k] = &freq{N: n, T: t, M: msg}
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

// merge folds o into a (both describe the same definition).
func (a *agg) merge(o *agg) {
	a.N += o.N
	a.S = satAdd(a.S, o.S)
	a.C += o.C
	a.Lo = mergeVal(a.Lo, o.Lo, smaller)
	a.Hi = mergeVal(a.Hi, o.Hi, larger)
	a.Fst = mergeVal(a.Fst, o.Fst, earlier)
	a.Lst = mergeVal(a.Lst, o.Lst, later)
	for k, f := range o.Freq {
		a.Freq = addFreq(a.Freq, k, f.N, f.T, f.M)
	}
	a.Over = a.Over || o.Over
	capSet(a.Freq, &a.Over)
	if less(a.LT, a.LM, o.LT, o.LM) {
		a.LT, a.LM = o.LT, o.LM
	}
	for _, v := range o.Win {
		a.Win = insertVal(a.Win, v)
	}
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
	for name, g := range o.Aggs {
		if s.Aggs == nil {
			s.Aggs = map[string]*agg{}
		}
		if cur := s.Aggs[name]; cur != nil {
			cur.merge(g)
		} else {
			s.Aggs[name] = g
		}
	}
}
