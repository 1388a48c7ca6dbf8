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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/batchcache"
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

// Enricher computes traits; it implements profile.Enricher. Event and
// Finish may run concurrently for different profiles (never for the same
// one); Merge runs alone.
type Enricher struct {
	cfg    Config
	Schema *Schema

	defs atomic.Pointer[[]*compiled]
	// index finds the definitions an event may feed (see defIndex).
	index atomic.Pointer[defIndex]
	rfm   atomic.Pointer[Boundaries]
	// Finishes counts Finish calls, for progress reports of backfills.
	Finishes atomic.Int64
	// buyers counts profiles seen making their first purchase: a cheap
	// signal (once per new buyer, not per event) that the population the
	// RFM boundaries were computed over has grown.
	buyers atomic.Int64
	// watch, while RecomputeRFM runs, collects the buyers Finish scores:
	// those it scored against the boundaries being replaced are re-scored
	// (see WatchBuyers).
	watch atomic.Pointer[buyerSet]

	// vms holds *vm.VM for filters: a VM is not safe for concurrent use,
	// and a pooled one keeps its stack between runs.
	vms sync.Pool

	// cache holds decoded state by profile object, so that a batch
	// decodes each profile's state once and encodes it once (in Finish),
	// and a profile the processor still holds next batch is not decoded
	// again (its entry stays after Finish while its raw is the profile's).
	// Keyed weakly by the object (batchcache): a profile re-read from
	// storage, or re-created by a replay, is a new object and decodes
	// afresh; an entry goes when its object is collected, never while a
	// Finish can still come. (A restart of the map at 400,000 entries
	// used to drop entries whose events of the batch were not yet
	// finished, losing them.)
	cache batchcache.Cache[portrait.Profile, entry]
}

// entry is a profile's decoded state. Only whoever is processing the
// profile touches it.
type entry struct {
	st    *pstate
	raw   []byte // the encoding st was read from or written to
	dirty bool   // st has changed since raw
}

var _ profile.Enricher = (*Enricher)(nil)

// New returns an enricher with no computed-trait definitions.
func New(cfg Config, schema *Schema) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if schema == nil {
		schema = NewSchema()
	}
	e := &Enricher{cfg: cfg, Schema: schema}
	e.defs.Store(&[]*compiled{})
	e.index.Store(newIndex(e.defs.Load()))
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
	ix := newIndex(&cs)
	e.defs.Store(&cs)
	e.index.Store(ix)
	return nil
}

// defIndex lists, by event name, the definitions an event of that name
// may feed, so that an event skips the others without looking at them,
// and numbers the properties the definitions read, so that an event looks
// each up once.
type defIndex struct {
	defs     *[]*compiled
	byEvent  map[string][]int // definitions restricted to an event name
	anyEvent []int            // and those that are not
	props    int              // properties read
}

func newIndex(defs *[]*compiled) *defIndex {
	ix := &defIndex{defs: defs, byEvent: map[string][]int{}}
	props := map[string]int{}
	number := func(name string) int {
		if name == "" {
			return -1
		}
		i, ok := props[name]
		if !ok {
			i = len(props)
			props[name] = i
		}
		return i
	}
	for i, c := range *defs {
		c.prop, c.qprop = number(c.Property), number(c.quickProp)
		if c.Event == "" {
			ix.anyEvent = append(ix.anyEvent, i)
		} else {
			ix.byEvent[c.Event] = append(ix.byEvent[c.Event], i)
		}
	}
	ix.props = len(props)
	return ix
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

// WatchBuyers starts collecting the ids of the buyers Finish scores; the
// function it returns stops and returns them. Finish adds a profile before
// it reads the boundaries, so a profile scored against boundaries replaced
// (SetBoundaries) while watching is in the set, once the Finish that
// scored it has returned.
func (e *Enricher) WatchBuyers() (stop func() []string) {
	w := &buyerSet{ids: map[string]struct{}{}}
	e.watch.Store(w)
	return func() []string {
		e.watch.CompareAndSwap(w, nil)
		w.mu.Lock()
		defer w.mu.Unlock()
		ids := make([]string, 0, len(w.ids))
		for id := range w.ids {
			ids = append(ids, id)
		}
		w.ids = nil // a late Finish adds to nothing
		return ids
	}
}

// buyerSet is the set WatchBuyers collects; Finish runs concurrently.
type buyerSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (w *buyerSet) add(id string) {
	w.mu.Lock()
	if w.ids != nil {
		w.ids[id] = struct{}{}
	}
	w.mu.Unlock()
}

// NewBuyers counts the profiles Finish has seen become buyers (a profile
// replayed or rebuilt counts again): it only says when to recompute.
func (e *Enricher) NewBuyers() int64 { return e.buyers.Load() }

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// state returns p's decoded state, marked dirty when the caller is about
// to change it. Decoding happens outside any lock: no one else touches p.
func (e *Enricher) state(p *portrait.Profile, dirty bool) *entry {
	raw := p.State[StateKey]
	decode := func(*portrait.Profile) *entry {
		return &entry{st: decodeState(raw, e.cfg.Lifecycle), raw: raw}
	}
	en := e.cache.Get(p, decode)
	if !sameBytes(en.raw, raw) {
		// p's state was replaced since (a backfill, a rebuild of the
		// object's state): what the entry holds is stale.
		en = decode(p)
		e.cache.Put(p, en)
	}
	if dirty {
		en.dirty = true
	}
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
	st := e.state(p, true).st
	t, m := micros(ev.Timestamp), ev.MessageID
	visit := ev.Type == portrait.EventTrack || ev.Type == portrait.EventPage || ev.Type == portrait.EventScreen
	if visit {
		st.Sessions = insertSession(st.Sessions, t, t)
		if ch := channel(ev, props); ch != "" {
			st.Chans = addFreqIn(&st.room, st.Chans, ch, 1, t, m)
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
	ix := e.index.Load()
	defs := *ix.defs
	named := ix.byEvent[ev.Name]
	if len(named) == 0 && len(ix.anyEvent) == 0 {
		return
	}
	st.align(ix.defs)
	x := matcher{e: e, ev: ev, props: props, cache: true, feeds: len(named) + len(ix.anyEvent)}
	for _, i := range named {
		x.accumulate(st, i, defs[i], t, m)
	}
	for _, i := range ix.anyEvent {
		x.accumulate(st, i, defs[i], t, m)
	}
	x.release()
}

// propValue is a property of the event, looked up once.
type propValue struct {
	v      any
	looked bool
}

// matcher runs the filters of one event: it builds the filter environment
// once, and borrows a VM only if some filter needs one.
type matcher struct {
	e     *Enricher
	ev    *portrait.Event
	props map[string]any
	env   map[string]any
	vm    *vm.VM
	// vals caches the first properties numbered by the index, when
	// cache is set (the definitions come from the index).
	vals  [8]propValue
	cache bool
	// feeds: how many aggregates this event may feed (see newAgg).
	feeds int
}

// prop returns the property name, numbered i (see defIndex).
func (x *matcher) prop(i int, name string) any {
	if !x.cache || i < 0 || i >= len(x.vals) {
		return x.props[name]
	}
	p := &x.vals[i]
	if !p.looked {
		p.v, p.looked = x.props[name], true
	}
	return p.v
}

func (x *matcher) match(c *compiled) bool {
	if c.quickValue != nil {
		if ok, known := c.quickValue(x.prop(c.qprop, c.quickProp)); known {
			return ok
		}
	}
	if x.env == nil {
		pr := x.props
		if pr == nil {
			pr = map[string]any{}
		}
		x.env = map[string]any{"event": x.ev.Name, "type": x.ev.Type, "source": x.ev.Source, "properties": pr}
	}
	if x.vm == nil {
		x.vm, _ = x.e.vms.Get().(*vm.VM)
		if x.vm == nil {
			x.vm = &vm.VM{}
		}
	}
	// A filter that fails at run time (a property of another type than
	// expected) does not match.
	ok, err := x.vm.Run(c.filter, x.env)
	b, _ := ok.(bool)
	return err == nil && b
}

func (x *matcher) release() {
	if x.vm != nil {
		x.e.vms.Put(x.vm)
		x.vm = nil
	}
}

// accumulate adds one event to the aggregate of definition i.
func (x *matcher) accumulate(st *pstate, i int, c *compiled, t int64, m string) {
	ev := x.ev
	if (c.Type != "" && ev.Type != c.Type) || (c.Event != "" && ev.Name != c.Event) {
		return
	}
	if c.filter != nil && !x.match(c) {
		return
	}
	var v any
	if c.Property != "" {
		v = x.prop(c.prop, c.Property)
		if v == nil {
			return
		}
		v = normalize(v)
	}
	g := st.aggs[i]
	if g == nil {
		g = st.room.newAgg(x.feeds)
		g.W = c.width
		st.aggs[i] = g
	}
	if c.width > 0 {
		g.addWindowed(c, v, t, m)
		return
	}
	g.add(c.Aggregate, v, t, m, &st.room)
}

// Backfill computes the named computed traits of p again from the profile's
// whole history (events in canonical order), as if they had been defined
// before any of it: a trait defined today covers the past. Aggregates do not
// depend on order, so the result is what processing the history with the
// definition in place would have given.
func (e *Enricher) Backfill(p *portrait.Profile, events []*portrait.Event, names map[string]bool) {
	st := e.state(p, true).st
	defs := e.defs.Load()
	st.align(defs)
	var idx []int
	for i, c := range *defs {
		if names[c.Name] {
			idx = append(idx, i)
			st.aggs[i] = nil
		}
	}
	if len(idx) == 0 {
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
		x := matcher{e: e, ev: ev, props: props}
		for _, i := range idx {
			x.accumulate(st, i, (*defs)[i], micros(ev.Timestamp), ev.MessageID)
		}
		x.release()
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
		st.Cats = addFreqIn(&st.room, st.Cats, c, 1, t, m)
		return
	}
	if items, ok := props["products"].([]any); ok {
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				if c, ok := im[e.cfg.CategoryProperty].(string); ok && c != "" {
					st.Cats = addFreqIn(&st.room, st.Cats, c, 1, t, m)
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

// Merge folds gone's state into keep's.
func (e *Enricher) Merge(keep, gone *portrait.Profile) {
	k, g := e.state(keep, true), e.state(gone, false)
	defs := e.defs.Load()
	k.st.align(defs)
	g.st.align(defs)
	k.st.merge(g.st, e.cfg.Lifecycle)
	e.cache.Take(gone)
}

// Finish writes the computed traits of p as of now and encodes its state.
func (e *Enricher) Finish(p *portrait.Profile, now time.Time) {
	e.Finishes.Add(1)
	en := e.state(p, false)
	st := en.st
	// Incoming traits are typed on first sight; computed ones are known,
	// and counted (see below).
	computedBefore := 0
	for name, tr := range p.Traits {
		if tr.Source != SourceComputed {
			e.Schema.Observe(name, tr.Value, tr.Time)
		} else {
			computedBefore++
		}
	}
	st.align(e.defs.Load())
	w := writer{p: p}
	// A profile's first Finish (purchase_count is always written) adds
	// some 15 to 40 traits: they are collected first and the map is
	// made once at its size, so that it neither grows (and rehashes) on
	// the way nor is made for the most a profile could have.
	_, done := p.Traits["purchase_count"]
	if !done {
		w.fresh = freshTraits.Get().(*[]namedTrait)
	}
	e.builtins(&w, st, now)
	e.computed(&w, st, now)
	if !done {
		fresh := *w.fresh
		m := make(map[string]portrait.Trait, len(p.Traits)+len(fresh))
		for k, v := range p.Traits {
			m[k] = v
		}
		for _, x := range fresh {
			m[x.name] = x.tr
		}
		p.Traits = m
		clear(fresh)
		*w.fresh = fresh[:0]
		freshTraits.Put(w.fresh)
		w.fresh = nil
	}
	// Every put names a different trait (definitions are unique and
	// cannot take a built-in's name): when as many computed traits are
	// present as were put, none is left over from before. Those present
	// are those before and those the puts added.
	if computedBefore+w.added != w.n {
		// Rare (a definition removed, a window emptied): write again
		// into a scratch profile to learn which traits are current.
		q := *p
		q.Traits = make(map[string]portrait.Trait, w.n)
		sw := writer{p: &q}
		e.builtins(&sw, st, now)
		e.computed(&sw, st, now)
		for name, tr := range p.Traits {
			if _, ok := q.Traits[name]; tr.Source == SourceComputed && !ok {
				delete(p.Traits, name)
			}
		}
	}
	if !en.dirty && !st.changed && len(p.State[StateKey]) > 0 {
		return // as read: no need to encode it again
	}
	raw, err := st.encode()
	if err != nil {
		return // cannot happen for these types; keep the old state
	}
	if p.State == nil {
		p.State = map[string]json.RawMessage{}
	}
	p.State[StateKey] = raw
	st.changed = false
	en.raw = raw
	en.dirty = false
}

// writer puts computed traits, leaving a trait that has not changed as it
// is (no new boxed value, no new string).
type writer struct {
	p *portrait.Profile
	n int // traits put
	// added: puts of a name that was not a computed trait
	added int
	// fresh, when set, collects the traits instead of p.Traits (see
	// Finish).
	fresh *[]namedTrait
}

type namedTrait struct {
	name string
	tr   portrait.Trait
}

var freshTraits = sync.Pool{New: func() any { return new([]namedTrait) }}

// set writes a trait.
func (w *writer) set(name string, tr portrait.Trait) {
	if w.fresh != nil {
		*w.fresh = append(*w.fresh, namedTrait{name, tr})
		return
	}
	w.p.Traits[name] = tr
}

func (w *writer) keep(name string, at time.Time, msg string) (portrait.Trait, bool) {
	w.n++
	old, ok := w.p.Traits[name]
	if !ok || old.Source != SourceComputed {
		w.added++
	}
	return old, ok && old.Source == SourceComputed && old.MessageID == msg && old.Time.Equal(at) && old.Time.Location() == at.Location()
}

func (w *writer) put(name string, v any, at time.Time, msg string) {
	w.n++
	if old, ok := w.p.Traits[name]; !ok || old.Source != SourceComputed {
		w.added++
	}
	w.set(name, portrait.Trait{Value: v, Source: SourceComputed, Time: at, MessageID: msg})
}

func (w *writer) putAt(name string, v any, us int64, msg string) {
	w.put(name, v, fromMicros(us), msg)
}

// num puts a number dated us.
func (w *writer) num(name string, f float64, us int64, msg string) {
	w.numAt(name, f, fromMicros(us), msg)
}

func (w *writer) numAt(name string, f float64, at time.Time, msg string) {
	if old, same := w.keep(name, at, msg); same {
		if g, ok := old.Value.(float64); ok && (g == f || (g != g && f != f)) {
			return
		}
	}
	w.set(name, portrait.Trait{Value: boxed(f), Source: SourceComputed, Time: at, MessageID: msg})
}

// smallNumbers are boxed once: counts, scores and days are mostly small
// integers, and boxing a float64 allocates.
var smallNumbers = func() (b [256]any) {
	for i := range b {
		b[i] = float64(i)
	}
	return
}()

func boxed(f float64) any {
	if f >= 0 && f < float64(len(smallNumbers)) && f == math.Trunc(f) && !math.Signbit(f) {
		return smallNumbers[int(f)]
	}
	return f
}

// str puts a string.
func (w *writer) str(name, s string, us int64, msg string) {
	at := fromMicros(us)
	if old, same := w.keep(name, at, msg); same {
		if g, ok := old.Value.(string); ok && g == s {
			return
		}
	}
	w.set(name, portrait.Trait{Value: s, Source: SourceComputed, Time: at, MessageID: msg})
}

// stampAt puts the time at as a string, dated at.
func (w *writer) stampAt(name string, at time.Time, msg string) {
	if old, same := w.keep(name, at, msg); same {
		if _, ok := old.Value.(string); ok {
			return // the value is a function of the time
		}
	}
	w.set(name, portrait.Trait{Value: stamp(at), Source: SourceComputed, Time: at, MessageID: msg})
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func daysSince(now time.Time, us int64) float64 {
	d := math.Floor(now.Sub(fromMicros(us)).Hours() / 24)
	return max(d, 0)
}

func (e *Enricher) builtins(w *writer, st *pstate, now time.Time) {
	p := w.p
	if !p.FirstSeen.IsZero() {
		w.stampAt("first_seen", p.FirstSeen.UTC(), p.FirstKey.MessageID)
		w.stampAt("last_seen", p.LastSeen.UTC(), p.LastKey.MessageID)
		w.numAt("days_since_last_seen", daysSince(now, micros(p.LastSeen)), p.LastSeen.UTC(), p.LastKey.MessageID)
	}
	if n := len(st.Sessions); n > 0 {
		w.num("sessions", float64(n), st.Sessions[n-1][1], "")
	}
	var sum int64
	var n int
	if b := st.Buys; b != nil {
		sum, n = b.Sum, int(b.N)
	}
	if prev, _ := toFloat(p.Traits["purchase_count"].Value); prev <= 0 && n > 0 {
		e.buyers.Add(1)
	}
	if n == 0 {
		w.num("purchase_count", 0, 0, "")
		w.num("revenue", 0, 0, "")
	} else {
		first, last := st.Buys.first(), *st.Buys.Last
		w.num("purchase_count", float64(n), last.T, last.M)
		w.num("revenue", float64(sum)/1e6, last.T, last.M)
		w.num("avg_order_value", float64(sum)/1e6/float64(n), last.T, last.M)
		w.stampAt("first_purchase_at", fromMicros(first.T), first.M)
		w.stampAt("last_purchase_at", fromMicros(last.T), last.M)
		w.num("days_since_last_purchase", daysSince(now, last.T), last.T, last.M)
	}
	if k, f := topFreq(st.Cats); f != nil {
		w.str("favourite_category", k, f.T, f.M)
	}
	if k, f := topFreq(st.Chans); f != nil {
		w.str("preferred_channel", k, f.T, f.M)
	}
	if w := e.watch.Load(); w != nil && n > 0 {
		w.add(p.ID) // before the boundaries are read: see WatchBuyers
	}
	if b := e.rfm.Load(); b != nil && n > 0 {
		last := *st.Buys.Last
		r, fq, m := b.Score(daysSince(now, last.T), float64(n), float64(sum)/1e6)
		w.num("rfm_r", float64(r), last.T, last.M)
		w.num("rfm_f", float64(fq), last.T, last.M)
		w.num("rfm_m", float64(m), last.T, last.M)
		w.str("rfm_score", strconv.Itoa(r*100+fq*10+m), last.T, last.M)
		w.str("rfm_segment", SegmentName(r, fq), last.T, last.M)
	}
	hist := LifecycleHistory(e.cfg.Lifecycle, st.Buys, p.FirstSeen, p.FirstKey.MessageID, now)
	if len(hist) > 0 {
		cur := hist[len(hist)-1]
		w.put("lifecycle_stage", stageValue(cur.Stage), cur.At, cur.MessageID)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		w.history("lifecycle_history", hist, cur.At, cur.MessageID)
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
		w.num("nps_score", float64(*nps.NPS), nps.T, nps.M)
		w.str("nps_category", NPSCategory(*nps.NPS), nps.T, nps.M)
	}
	if csat != nil {
		w.num("csat_score", float64(*csat.CSAT), csat.T, csat.M)
	}
	if comment != nil {
		w.str("feedback_comment", comment.Comment, comment.T, comment.M)
	}
}

// stageValue boxes a stage without allocating: a constant's interface
// value is static.
func stageValue(s string) any {
	switch s {
	case StageProspect:
		return StageProspect
	case StageNew:
		return StageNew
	case StageRepeat:
		return StageRepeat
	case StageLoyal:
		return StageLoyal
	case StageAtRisk:
		return StageAtRisk
	case StageChurned:
		return StageChurned
	}
	return s
}

// history puts the lifecycle history as a list of {stage, at}, leaving
// an equal one alone: it changes with a stage, not with every batch, and
// each entry costs a map and a string.
func (w *writer) history(name string, hist []Transition, at time.Time, msg string) {
	if old, same := w.keep(name, at, msg); same && sameHistory(old.Value, hist) {
		return
	}
	w.set(name, portrait.Trait{Value: historyValue(hist), Source: SourceComputed, Time: at, MessageID: msg})
}

// historyValue is the trait value of a stage history: [{stage, at}].
func historyValue(hist []Transition) []any {
	list := make([]any, len(hist))
	for i, h := range hist {
		list[i] = map[string]any{"stage": stageValue(h.Stage), "at": stamp(h.At)}
	}
	return list
}

// sameHistory reports whether v is the list history would put for hist.
func sameHistory(v any, hist []Transition) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(hist) {
		return false
	}
	var buf [64]byte
	for i, h := range hist {
		m, ok := l[i].(map[string]any)
		if !ok || len(m) != 2 {
			return false
		}
		if s, ok := m["stage"].(string); !ok || s != h.Stage {
			return false
		}
		if s, ok := m["at"].(string); !ok || s != string(h.At.UTC().AppendFormat(buf[:0], time.RFC3339Nano)) {
			return false
		}
	}
	return true
}

// maxHistory bounds the lifecycle history shown on a profile.
const maxHistory = 50

// scratchFVs holds the buffers computed folds value sets in: a fold of
// several buckets' sets would otherwise allocate on every Finish.
var scratchFVs = sync.Pool{New: func() any { return new([]fv) }}

func (e *Enricher) computed(w *writer, st *pstate, now time.Time) {
	us := micros(now)
	sp := scratchFVs.Get().(*[]fv)
	scratch := *sp
	defer func() {
		// The traits written hold strings, not the buffer: it is free.
		if cap(scratch) <= 4*maxValues {
			clear(scratch[:cap(scratch)])
			*sp = scratch[:0]
			scratchFVs.Put(sp)
		}
	}()
	for i, c := range *st.defs {
		g := st.aggs[i]
		var q []fv // a window's value set, folded
		if c.width > 0 && g != nil {
			// The window is relative to now: drop the buckets that
			// fell out of it, and aggregate the rest.
			if g.expire(c.width, us-c.span) {
				st.changed = true
			}
			var tmp agg
			tmp, q = g.fold(c.Aggregate, &scratch)
			g = &tmp
		} else if g != nil {
			q = sortedFreqs(g.Freq, c.Aggregate, scratch)
			scratch = q[:0]
		}
		if g == nil {
			g = &agg{}
		}
		switch c.Aggregate {
		case AggCount:
			w.num(c.Name, float64(g.N), g.LT, g.LM)
		case AggSum:
			w.num(c.Name, float64(g.S)/1e6, g.LT, g.LM)
		case AggAvg:
			if g.C > 0 {
				w.num(c.Name, float64(g.S)/1e6/float64(g.C), g.LT, g.LM)
			}
		case AggMin, AggMax:
			v := g.Lo
			if c.Aggregate == AggMax {
				v = g.Hi
			}
			if v != nil {
				if f, ok := v.V.(float64); ok {
					w.num(c.Name, f, v.T, v.M)
				} else {
					w.putAt(c.Name, v.V, v.T, v.M)
				}
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
			if f := topFV(q); f != nil {
				w.str(c.Name, f.K, f.T, f.M)
			}
		case AggUnique:
			w.list(c.Name, q, g.LT, g.LM)
		case AggDistinctCount:
			w.num(c.Name, float64(len(q)), g.LT, g.LM)
		}
	}
}

// sortedFreqs lists an all-time aggregate's values in order (in scratch),
// with counts when the aggregate needs them.
func sortedFreqs(m map[string]*freq, aggregate string, scratch []fv) []fv {
	q := scratch[:0]
	switch aggregate {
	case AggUnique:
		for k := range m {
			q = append(q, fv{K: k})
		}
		slices.SortFunc(q, func(a, b fv) int { return strings.Compare(a.K, b.K) })
	case AggMostFrequent:
		for k, f := range m {
			q = append(q, fv{K: k, N: f.N, T: f.T, M: f.M})
		}
		slices.SortFunc(q, func(a, b fv) int { return strings.Compare(a.K, b.K) })
	case AggDistinctCount:
		q = slices.Grow(q, len(m))[:len(m)] // only the number matters
	}
	return q
}

// list puts the sorted values q as a list, leaving an equal one alone.
func (w *writer) list(name string, q []fv, us int64, msg string) {
	at := fromMicros(us)
	if old, same := w.keep(name, at, msg); same {
		if l, ok := old.Value.([]any); ok && len(l) == len(q) {
			equal := true
			for i, x := range l {
				if s, ok := x.(string); !ok || s != q[i].K {
					equal = false
					break
				}
			}
			if equal {
				return
			}
		}
	}
	list := make([]any, len(q))
	for i := range q {
		list[i] = q[i].K
	}
	w.set(name, portrait.Trait{Value: list, Source: SourceComputed, Time: at, MessageID: msg})
}
