// Package traits derives computed traits from the events a profile
// receives: declared aggregates (count, sum, avg, min, max, first, last,
// most frequent, unique, distinct count; all time or in a sliding window,
// with an event filter), the built-ins every portrait has (first and last
// seen, sessions, purchases, revenue, favourite category, preferred
// channel), RFM scores, the lifecycle stage with its history, and survey
// feedback (NPS, CSAT). It also keeps the trait schema.
//
// The Enricher plugs into profile.Processor. Its state is a set of
// commutative accumulators kept in Profile.State, and everything that
// depends on the clock is evaluated in Finish against the time given, so
// profiles stay independent of arrival order and a replay rebuilds them.
package traits

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// SourceComputed is the Source of every trait this package writes.
const SourceComputed = "computed"

// StateKey is this enricher's entry in Profile.State.
const StateKey = "traits"

// Lifecycle stages.
const (
	StageProspect = "prospect"
	StageNew      = "new"
	StageRepeat   = "repeat"
	StageLoyal    = "loyal"
	StageAtRisk   = "at_risk"
	StageChurned  = "churned"
)

// Config says what a purchase, a survey and the lifecycle stages are.
type Config struct {
	// PurchaseEvent is the track event that is a purchase.
	PurchaseEvent string `json:"purchase_event" yaml:"purchase_event"`
	// AmountProperties are tried in order for the purchase amount.
	AmountProperties []string `json:"amount_properties" yaml:"amount_properties"`
	// CategoryProperty names the purchase's category (also looked for in
	// properties.products[].category).
	CategoryProperty string `json:"category_property" yaml:"category_property"`
	// SurveyEvents are the track events that carry survey answers in
	// properties nps (0-10), csat (1-5) and comment.
	SurveyEvents []string  `json:"survey_events" yaml:"survey_events"`
	Lifecycle    Lifecycle `json:"lifecycle" yaml:"lifecycle"`
}

// Lifecycle holds the stage thresholds.
type Lifecycle struct {
	// LoyalPurchases: a customer with this many purchases is loyal.
	LoyalPurchases int `json:"loyal_purchases" yaml:"loyal_purchases"`
	// AtRisk and Churned: time since the last purchase after which a
	// customer is at risk, then churned.
	AtRisk  time.Duration `json:"at_risk" yaml:"at_risk"`
	Churned time.Duration `json:"churned" yaml:"churned"`
}

// DefaultConfig: a purchase is "Order Completed" with properties.revenue or
// properties.total; loyal from 4 purchases; at risk after 180 days without
// a purchase, churned after 365.
func DefaultConfig() Config {
	return Config{
		PurchaseEvent: "Order Completed", AmountProperties: []string{"revenue", "total"}, CategoryProperty: "category",
		SurveyEvents: []string{"Survey Submitted", "Survey Completed", "NPS Survey Submitted"},
		Lifecycle:    Lifecycle{LoyalPurchases: 4, AtRisk: 180 * 24 * time.Hour, Churned: 365 * 24 * time.Hour},
	}
}

// Validate checks the thresholds.
func (c Config) Validate() error {
	l := c.Lifecycle
	if c.PurchaseEvent == "" {
		return portrait.Errorf(portrait.EINVALID, "purchase_event must be set")
	}
	if l.LoyalPurchases < 2 {
		return portrait.Errorf(portrait.EINVALID, "lifecycle loyal_purchases must be at least 2, not %d", l.LoyalPurchases)
	}
	if l.AtRisk <= 0 || l.Churned <= l.AtRisk {
		return portrait.Errorf(portrait.EINVALID, "lifecycle thresholds: want 0 < at_risk (%v) < churned (%v)", l.AtRisk, l.Churned)
	}
	return nil
}

// Enricher computes traits; it implements profile.Enricher.
type Enricher struct {
	cfg    Config
	Schema *Schema

	defs atomic.Pointer[[]*compiled]
	rfm  atomic.Pointer[Boundaries]
	// Finishes counts Finish calls, for progress reports of backfills.
	Finishes atomic.Int64

	mu      sync.Mutex
	machine vm.VM
	// cache holds decoded state by profile object, so that a batch
	// decodes each profile's state once and encodes it once (in Finish).
	// Keyed by pointer: a profile re-read from storage, or re-created by
	// a replay, is a new object and decodes afresh.
	cache map[*portrait.Profile]*entry
	env   map[string]any
}

type entry struct {
	st    *pstate
	raw   []byte // the encoding st was read from or written to
	dirty bool
}

var _ profile.Enricher = (*Enricher)(nil)

// maxCache bounds the decoded states kept between batches.
const maxCache = 200_000

// New returns an enricher with no computed-trait definitions.
func New(cfg Config, schema *Schema) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if schema == nil {
		schema = NewSchema()
	}
	e := &Enricher{cfg: cfg, Schema: schema, cache: map[*portrait.Profile]*entry{}}
	e.defs.Store(&[]*compiled{})
	return e, nil
}

// Config returns the configuration.
func (e *Enricher) Config() Config { return e.cfg }

// SetDefinitions replaces the computed-trait definitions. They apply to
// events processed from now on; a replay (portrait rebuild) gives existing
// profiles their history.
func (e *Enricher) SetDefinitions(defs []Definition) error {
	cs := make([]*compiled, 0, len(defs))
	seen := map[string]bool{}
	for _, d := range defs {
		c, err := d.compile()
		if err != nil {
			return err
		}
		if seen[c.Name] {
			return portrait.Errorf(portrait.EINVALID, "computed trait %q is defined twice", c.Name)
		}
		seen[c.Name] = true
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := make([]Definition, len(cs))
	for i, c := range cs {
		out[i] = c.Definition
	}
	e.Schema.setComputed(out)
	e.defs.Store(&cs)
	return nil
}

// Definitions returns the active definitions.
func (e *Enricher) Definitions() []Definition {
	cs := *e.defs.Load()
	out := make([]Definition, len(cs))
	for i, c := range cs {
		out[i] = c.Definition
	}
	return out
}

// SetBoundaries makes Finish score RFM against b (nil: no RFM traits).
func (e *Enricher) SetBoundaries(b *Boundaries) { e.rfm.Store(b) }

// Boundaries returns the RFM boundaries in use.
func (e *Enricher) Boundaries() *Boundaries { return e.rfm.Load() }

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// state returns p's decoded state; e.mu is held.
func (e *Enricher) state(p *portrait.Profile) *entry {
	raw := p.State[StateKey]
	if en := e.cache[p]; en != nil && sameBytes(en.raw, raw) {
		return en
	}
	st := &pstate{}
	if len(raw) > 0 {
		// State is written only by Finish; an unreadable one (a store
		// edited by hand) starts over rather than stopping the processor.
		if json.Unmarshal(raw, st) != nil {
			st = &pstate{}
		}
		if len(st.Purchases) > 0 { // the first state format kept every purchase
			if st.Buys == nil {
				st.Buys = &purchases{}
			}
			for _, p := range st.Purchases {
				st.Buys.add(p, e.cfg.Lifecycle)
			}
			st.Purchases = nil
		}
	}
	if len(e.cache) >= maxCache {
		for k, en := range e.cache {
			if !en.dirty || len(e.cache) >= 2*maxCache {
				delete(e.cache, k)
			}
		}
	}
	en := &entry{st: st, raw: raw}
	e.cache[p] = en
	return en
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Event accumulates e into p's state.
func (e *Enricher) Event(p *portrait.Profile, ev *portrait.Event, props map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.state(p)
	en.dirty = true
	st := en.st
	t, m := micros(ev.Timestamp), ev.MessageID
	visit := ev.Type == portrait.EventTrack || ev.Type == portrait.EventPage || ev.Type == portrait.EventScreen
	if visit {
		st.Sessions = insertSession(st.Sessions, t, t)
		ch, _ := props["channel"].(string)
		if ch == "" {
			ch = ev.Source
		}
		if ch != "" {
			st.Chans = addFreq(st.Chans, ch, 1, t, m)
		}
	}
	if ev.Type == portrait.EventTrack {
		if ev.Name == e.cfg.PurchaseEvent {
			e.purchase(st, t, m, props)
		}
		for _, s := range e.cfg.SurveyEvents {
			if ev.Name == s {
				if sv, ok := survey(t, m, props); ok {
					st.Surveys = insertSurvey(st.Surveys, sv)
				}
			}
		}
	}
	defs := *e.defs.Load()
	if len(defs) == 0 {
		return
	}
	e.env = nil
	for _, c := range defs {
		e.accumulate(st, c, ev, props, t, m)
	}
}

// accumulate adds one event to one computed trait's aggregate; e.mu is held
// and e.env caches the filter environment of ev.
func (e *Enricher) accumulate(st *pstate, c *compiled, ev *portrait.Event, props map[string]any, t int64, m string) {
	if (c.Type != "" && ev.Type != c.Type) || (c.Event != "" && ev.Name != c.Event) {
		return
	}
	if c.filter != nil {
		if e.env == nil {
			pr := props
			if pr == nil {
				pr = map[string]any{}
			}
			e.env = map[string]any{"event": ev.Name, "type": ev.Type, "source": ev.Source, "properties": pr}
		}
		// A filter that fails at run time (a property of another
		// type than expected) does not match.
		ok, err := e.machine.Run(c.filter, e.env)
		if b, _ := ok.(bool); err != nil || !b {
			return
		}
	}
	var v any
	if c.Property != "" {
		v = props[c.Property]
		if v == nil {
			return
		}
	}
	if st.Aggs == nil {
		st.Aggs = map[string]*agg{}
	}
	g := st.Aggs[c.Name]
	if g == nil {
		g = &agg{}
		st.Aggs[c.Name] = g
	}
	if c.window > 0 {
		g.Win = insertVal(g.Win, val{V: normalize(v), T: t, M: m})
		return
	}
	g.add(c.Aggregate, normalize(v), t, m)
}

// Backfill computes the named computed traits of p again from the profile's
// whole history (events in canonical order), as if they had been defined
// before any of it: a trait defined today covers the past. Aggregates do not
// depend on order, so the result is what processing the history with the
// definition in place would have given.
func (e *Enricher) Backfill(p *portrait.Profile, events []*portrait.Event, names map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.state(p)
	en.dirty = true
	st := en.st
	var defs []*compiled
	for _, c := range *e.defs.Load() {
		if names[c.Name] {
			defs = append(defs, c)
			delete(st.Aggs, c.Name)
		}
	}
	if len(defs) == 0 {
		return
	}
	for _, ev := range events {
		if ev.System() {
			continue
		}
		var props map[string]any
		if len(ev.Properties) > 0 {
			json.Unmarshal(ev.Properties, &props) // an unreadable payload counts as no properties
		}
		e.env = nil
		for _, c := range defs {
			e.accumulate(st, c, ev, props, micros(ev.Timestamp), ev.MessageID)
		}
	}
}

func (e *Enricher) purchase(st *pstate, t int64, m string, props map[string]any) {
	var amount float64
	for _, k := range e.cfg.AmountProperties {
		if f, ok := toFloat(props[k]); ok {
			amount = f
			break
		}
	}
	if st.Buys == nil {
		st.Buys = &purchases{}
	}
	// The processor applies each event to a profile once (a rebuild starts
	// from an empty state), so the summary needs no record of what it saw.
	st.Buys.add(purchase{T: t, M: m, A: millionths(amount)}, e.cfg.Lifecycle)
	if c, ok := props[e.cfg.CategoryProperty].(string); ok && c != "" {
		st.Cats = addFreq(st.Cats, c, 1, t, m)
		return
	}
	if items, ok := props["products"].([]any); ok {
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				if c, ok := im[e.cfg.CategoryProperty].(string); ok && c != "" {
					st.Cats = addFreq(st.Cats, c, 1, t, m)
				}
			}
		}
	}
}

// survey reads an answer; values out of range are not answers.
func survey(t int64, m string, props map[string]any) (Survey, bool) {
	sv := Survey{T: t, M: m}
	score := func(keys []string, lo, hi float64) *int {
		for _, k := range keys {
			if f, ok := toFloat(props[k]); ok && f >= lo && f <= hi && f == math.Trunc(f) {
				n := int(f)
				return &n
			}
		}
		return nil
	}
	sv.NPS = score([]string{"nps", "nps_score"}, 0, 10)
	sv.CSAT = score([]string{"csat", "csat_score"}, 1, 5)
	sv.Comment, _ = props["comment"].(string)
	return sv, sv.NPS != nil || sv.CSAT != nil || sv.Comment != ""
}

// add accumulates one value into an all-time aggregate.
func (g *agg) add(aggregate string, v any, t int64, m string) {
	g.N++
	if less(g.LT, g.LM, t, m) || g.LM == "" {
		g.LT, g.LM = t, m
	}
	me := &val{V: v, T: t, M: m}
	switch aggregate {
	case AggSum, AggAvg:
		if f, ok := toFloat(v); ok {
			g.S = satAdd(g.S, millionths(f))
			g.C++
		}
	case AggMin, AggMax:
		if f, ok := toFloat(v); ok {
			me.V = f
			g.Lo = mergeVal(g.Lo, me, smaller)
			g.Hi = mergeVal(g.Hi, me, larger)
		}
	case AggFirst, AggLast:
		g.Fst = mergeVal(g.Fst, me, earlier)
		g.Lst = mergeVal(g.Lst, me, later)
	case AggMostFrequent:
		g.Freq = addFreq(g.Freq, valueKey(v), 1, t, m)
	case AggUnique, AggDistinctCount:
		g.Freq = addFreq(g.Freq, valueKey(v), 1, t, m)
		capSet(g.Freq, &g.Over)
	}
}

// Merge folds gone's state into keep's.
func (e *Enricher) Merge(keep, gone *portrait.Profile) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, g := e.state(keep), e.state(gone)
	k.st.merge(g.st, e.cfg.Lifecycle)
	k.dirty = true
	delete(e.cache, gone)
}

// Finish writes the computed traits of p as of now and encodes its state.
func (e *Enricher) Finish(p *portrait.Profile, now time.Time) {
	e.Finishes.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.state(p)
	st := en.st
	if p.Traits == nil {
		p.Traits = map[string]portrait.Trait{}
	}
	// Incoming traits are typed on first sight; computed ones are known.
	for name, tr := range p.Traits {
		if tr.Source != SourceComputed {
			e.Schema.Observe(name, tr.Value, tr.Time)
		}
	}
	w := writer{p: p, set: map[string]bool{}}
	e.builtins(&w, st, now)
	e.computed(&w, st, now)
	for name, tr := range p.Traits {
		if tr.Source == SourceComputed && !w.set[name] {
			delete(p.Traits, name)
		}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return // cannot happen for these types; keep the old state
	}
	if p.State == nil {
		p.State = map[string]json.RawMessage{}
	}
	p.State[StateKey] = raw
	en.raw, en.dirty = p.State[StateKey], false
}

type writer struct {
	p   *portrait.Profile
	set map[string]bool
}

func (w *writer) put(name string, v any, at time.Time, msg string) {
	w.set[name] = true
	w.p.Traits[name] = portrait.Trait{Value: v, Source: SourceComputed, Time: at, MessageID: msg}
}

func (w *writer) putAt(name string, v any, us int64, msg string) {
	w.put(name, v, fromMicros(us), msg)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func daysSince(now time.Time, us int64) float64 {
	d := math.Floor(now.Sub(fromMicros(us)).Hours() / 24)
	return max(d, 0)
}

func (e *Enricher) builtins(w *writer, st *pstate, now time.Time) {
	p := w.p
	if !p.FirstSeen.IsZero() {
		w.put("first_seen", stamp(p.FirstSeen), p.FirstSeen.UTC(), p.FirstKey.MessageID)
		w.put("last_seen", stamp(p.LastSeen), p.LastSeen.UTC(), p.LastKey.MessageID)
		w.put("days_since_last_seen", daysSince(now, micros(p.LastSeen)), p.LastSeen.UTC(), p.LastKey.MessageID)
	}
	if n := len(st.Sessions); n > 0 {
		w.putAt("sessions", float64(n), st.Sessions[n-1][1], "")
	}
	var sum int64
	var n int
	if b := st.Buys; b != nil {
		sum, n = b.Sum, int(b.N)
	}
	if n == 0 {
		w.put("purchase_count", 0.0, time.Time{}, "")
		w.put("revenue", 0.0, time.Time{}, "")
	} else {
		first, last := st.Buys.first(), *st.Buys.Last
		w.putAt("purchase_count", float64(n), last.T, last.M)
		w.putAt("revenue", float64(sum)/1e6, last.T, last.M)
		w.putAt("avg_order_value", float64(sum)/1e6/float64(n), last.T, last.M)
		w.putAt("first_purchase_at", stamp(fromMicros(first.T)), first.T, first.M)
		w.putAt("last_purchase_at", stamp(fromMicros(last.T)), last.T, last.M)
		w.putAt("days_since_last_purchase", daysSince(now, last.T), last.T, last.M)
	}
	if k, f := topFreq(st.Cats); f != nil {
		w.putAt("favourite_category", k, f.T, f.M)
	}
	if k, f := topFreq(st.Chans); f != nil {
		w.putAt("preferred_channel", k, f.T, f.M)
	}
	if b := e.rfm.Load(); b != nil && n > 0 {
		last := *st.Buys.Last
		r, fq, m := b.Score(daysSince(now, last.T), float64(n), float64(sum)/1e6)
		w.putAt("rfm_r", float64(r), last.T, last.M)
		w.putAt("rfm_f", float64(fq), last.T, last.M)
		w.putAt("rfm_m", float64(m), last.T, last.M)
		w.putAt("rfm_score", strconv.Itoa(r*100+fq*10+m), last.T, last.M)
		w.putAt("rfm_segment", SegmentName(r, fq), last.T, last.M)
	}
	hist := LifecycleHistory(e.cfg.Lifecycle, st.Buys, p.FirstSeen, p.FirstKey.MessageID, now)
	if len(hist) > 0 {
		cur := hist[len(hist)-1]
		w.put("lifecycle_stage", cur.Stage, cur.At, cur.MessageID)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		list := make([]any, len(hist))
		for i, h := range hist {
			list[i] = map[string]any{"stage": h.Stage, "at": stamp(h.At)}
		}
		w.put("lifecycle_history", list, cur.At, cur.MessageID)
	}
	var nps, csat, comment *Survey
	for i := len(st.Surveys) - 1; i >= 0 && (nps == nil || csat == nil || comment == nil); i-- {
		s := &st.Surveys[i]
		if nps == nil && s.NPS != nil {
			nps = s
		}
		if csat == nil && s.CSAT != nil {
			csat = s
		}
		if comment == nil && s.Comment != "" {
			comment = s
		}
	}
	if nps != nil {
		w.putAt("nps_score", float64(*nps.NPS), nps.T, nps.M)
		w.putAt("nps_category", NPSCategory(*nps.NPS), nps.T, nps.M)
	}
	if csat != nil {
		w.putAt("csat_score", float64(*csat.CSAT), csat.T, csat.M)
	}
	if comment != nil {
		w.putAt("feedback_comment", comment.Comment, comment.T, comment.M)
	}
}

// maxHistory bounds the lifecycle history shown on a profile.
const maxHistory = 50

func (e *Enricher) computed(w *writer, st *pstate, now time.Time) {
	for _, c := range *e.defs.Load() {
		g := st.Aggs[c.Name]
		if c.window > 0 && g != nil {
			// The window is relative to now: drop what fell out of
			// it, and aggregate what is left in canonical order.
			cut := micros(now.Add(-c.window))
			i := sort.Search(len(g.Win), func(i int) bool { return g.Win[i].T >= cut })
			g.Win = append(g.Win[:0], g.Win[i:]...)
			tmp := &agg{}
			for _, v := range g.Win {
				tmp.add(c.Aggregate, v.V, v.T, v.M)
			}
			g = tmp
		}
		if g == nil {
			g = &agg{}
		}
		switch c.Aggregate {
		case AggCount:
			w.putAt(c.Name, float64(g.N), g.LT, g.LM)
		case AggSum:
			w.putAt(c.Name, float64(g.S)/1e6, g.LT, g.LM)
		case AggAvg:
			if g.C > 0 {
				w.putAt(c.Name, float64(g.S)/1e6/float64(g.C), g.LT, g.LM)
			}
		case AggMin, AggMax:
			v := g.Lo
			if c.Aggregate == AggMax {
				v = g.Hi
			}
			if v != nil {
				w.putAt(c.Name, v.V, v.T, v.M)
			}
		case AggFirst, AggLast:
			v := g.Fst
			if c.Aggregate == AggLast {
				v = g.Lst
			}
			if v != nil {
				w.putAt(c.Name, v.V, v.T, v.M)
			}
		case AggMostFrequent:
			if k, f := topFreq(g.Freq); f != nil {
				w.putAt(c.Name, k, f.T, f.M)
			}
		case AggUnique:
			keys := make([]string, 0, len(g.Freq))
			for k := range g.Freq {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			list := make([]any, len(keys))
			for i, k := range keys {
				list[i] = k
			}
			w.putAt(c.Name, list, g.LT, g.LM)
		case AggDistinctCount:
			w.putAt(c.Name, float64(len(g.Freq)), g.LT, g.LM)
		}
	}
	// Accumulators of definitions that were removed go with them.
	for name := range st.Aggs {
		found := false
		for _, c := range *e.defs.Load() {
			found = found || c.Name == name
		}
		if !found {
			delete(st.Aggs, name)
		}
	}
}
