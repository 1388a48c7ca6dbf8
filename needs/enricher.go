package needs

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/batchcache"
	"github.com/portrait-cdp/portrait/profile"
)

// StateKey is this enricher's entry in Profile.State.
const StateKey = "needs"

// maxEvidence is how many events (the latest) each need, category and
// topic keeps as its evidence.
const maxEvidence = 5

// ref is an event by its canonical key.
type ref struct {
	T int64  `json:"t"`
	M string `json:"m"`
}

func (r ref) cmp(o ref) int {
	if c := cmp.Compare(r.T, o.T); c != 0 {
		return c
	}
	return cmp.Compare(r.M, o.M)
}

// evidence keeps the latest maxEvidence events, sorted, unique.
type evidence []ref

// add reports whether r is new to the kept events (an event already kept
// is not counted twice).
func (e *evidence) add(r ref) bool {
	i, found := slices.BinarySearchFunc(*e, r, ref.cmp)
	if found {
		return false
	}
	*e = slices.Insert(*e, i, r)
	if len(*e) > maxEvidence {
		*e = slices.Delete(*e, 0, len(*e)-maxEvidence)
	}
	return true
}

func (e evidence) ids() []any {
	out := make([]any, len(e))
	for i, r := range e {
		out[len(e)-1-i] = r.M // latest first
	}
	return out
}

func (e evidence) latest() ref {
	if len(e) == 0 {
		return ref{}
	}
	return e[len(e)-1]
}

// cat is a category's decayed weight, as of the epoch: the sum of
// weight × 2^((t − epoch)/half-life) over its events, so that adding is
// commutative and the score as of any time is one multiplication.
type cat struct {
	W  float64  `json:"w"`
	Ev evidence `json:"e"`
}

// item is a stated need or a pain-point topic.
type item struct {
	N     int      `json:"n"`
	Ev    evidence `json:"e"`
	Terms []string `json:"t,omitempty"`
}

func (it *item) add(r ref, terms []string) {
	if it.Ev.add(r) {
		it.N++
	}
	for _, t := range terms {
		if len(it.Terms) < 8 {
			it.Terms = appendUnique(it.Terms, t)
		}
	}
	slices.Sort(it.Terms)
}

type state struct {
	Cats   map[string]*cat  `json:"c,omitempty"`
	Stated map[string]*item `json:"s,omitempty"` // by need key
	Said   map[string]*item `json:"r,omitempty"` // stated values as said
	Pains  map[string]*item `json:"p,omitempty"` // by topic key
}

// epoch anchors the decayed sums; with a 30-day half-life a sum stays far
// inside float64 for centuries around it.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// Enricher derives needs; it implements profile.Enricher.
type Enricher struct {
	cfg                                      Config
	views, buys, stated, after, surveys      map[string]bool
	needs, topics                            *matcher
	statedFields, textFields, needCategories [][]string

	segOnce sync.Once
	// split is the loaded segmenter's tokens method. A func value, not a
	// *segmenter field: the Enricher is converted to an interface, and
	// with a method looked up by reflection anywhere in the binary (expr
	// does) the linker keeps every exported method of every type reachable
	// from such a type's fields. Through a *segmenter field that reached
	// gse.Segmenter, whose LoadDictEmbed and LoadStopEmbed pull gse's
	// embedded dictionaries (32 MB) into the binary though they are never
	// called. A closure carries no type the linker follows.
	split    func(string) []string
	segErr   error
	keywords []string // of the taxonomy, added to the segmenter's dictionary

	// cache holds decoded states of the profiles of the batch being
	// processed, so that a profile's events decode and encode its state
	// once.
	cache batchcache.Cache[portrait.Profile, state]
	// written remembers, by profile object, what Finish last wrote from
	// which state: a profile the processor still holds whose events this
	// batch said nothing about needs (most of them) then needs neither a
	// decode nor a derive while its affinity scores, rounded, are those
	// written. Re-deriving and re-putting every needs trait of every
	// finished profile each batch made its objects new values the segment
	// index rewrote each time (issue 12 §5).
	written batchcache.Cache[portrait.Profile, written]
	// Errors counts texts the segmenter could not read.
	Errors atomic.Int64
}

var _ profile.Enricher = (*Enricher)(nil)

func set(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[s] = true
	}
	return m
}

// New returns an enricher for cfg.
func New(cfg Config) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, views: set(cfg.ViewEvents), buys: set(cfg.PurchaseEvents), stated: set(cfg.StatedEvents),
		after: set(cfg.AfterSalesEvents), surveys: set(cfg.SurveyEvents)}
	var nk, tk []string
	var nw, tw [][]string
	for _, n := range cfg.Needs {
		nk = append(nk, n.Key)
		nw = append(nw, append([]string{n.Key, n.LabelZh, n.LabelEn}, n.Keywords...))
		e.needCategories = append(e.needCategories, lowerAll(n.Categories))
	}
	for _, t := range cfg.Topics {
		tk = append(tk, t.Key)
		tw = append(tw, append([]string{t.LabelZh}, t.Keywords...))
	}
	e.needs, e.topics = newMatcher(nk, nw), newMatcher(tk, tw)
	for _, l := range append(nw, tw...) {
		e.keywords = append(e.keywords, l...)
	}
	return e, nil
}

// tokens splits text with the configured dictionary, loaded on the first
// text (it takes a second: most profiles never complain).
func (e *Enricher) tokens(text string) ([]string, error) {
	e.segOnce.Do(func() {
		s, err := loadSegmenter(e.cfg.Dictionary, e.keywords)
		if err != nil {
			e.segErr = err
			return
		}
		e.split = s.tokens
	})
	if e.segErr != nil {
		return nil, e.segErr
	}
	return e.split(text), nil
}

// Config returns the configuration.
func (e *Enricher) Config() Config { return e.cfg }

func (e *Enricher) state(p *portrait.Profile) *state {
	return e.cache.Get(p, decodeState)
}

func decodeState(p *portrait.Profile) *state { return decode(p.State[StateKey]) }

func decode(raw json.RawMessage) *state {
	st := &state{}
	if len(raw) > 0 && json.Unmarshal(raw, st) != nil {
		st = &state{}
	}
	if st.Cats == nil {
		st.Cats = map[string]*cat{}
	}
	if st.Stated == nil {
		st.Stated = map[string]*item{}
	}
	if st.Said == nil {
		st.Said = map[string]*item{}
	}
	if st.Pains == nil {
		st.Pains = map[string]*item{}
	}
	return st
}

// categories of an event: properties.category and products[].category.
func (e *Enricher) categories(props map[string]any) []string {
	var out []string
	if c, _ := props[e.cfg.CategoryProperty].(string); strings.TrimSpace(c) != "" {
		out = append(out, strings.TrimSpace(c))
	}
	if items, ok := props["products"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if c, _ := m[e.cfg.CategoryProperty].(string); strings.TrimSpace(c) != "" {
					out = appendUnique(out, strings.TrimSpace(c))
				}
			}
		}
	}
	return out
}

// text joins an event's text fields.
func (e *Enricher) text(props map[string]any) string {
	var b strings.Builder
	for _, f := range e.cfg.TextFields {
		if s, ok := props[f].(string); ok && strings.TrimSpace(s) != "" {
			b.WriteString(s)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Event accumulates what ev says about needs.
func (e *Enricher) Event(p *portrait.Profile, ev *portrait.Event, props map[string]any) {
	if ev.Type != portrait.EventTrack {
		return
	}
	r := ref{T: ev.Timestamp.UnixMicro(), M: ev.MessageID}
	w := 0.0
	switch {
	case e.buys[ev.Name]:
		w = e.cfg.PurchaseWeight
	case e.views[ev.Name]:
		w = e.cfg.ViewWeight
	}
	if w > 0 {
		if cats := e.categories(props); len(cats) > 0 {
			st := e.state(p)
			decay := math.Exp2(float64(r.T-epoch) / float64(e.cfg.HalfLife/time.Microsecond))
			for _, c := range cats {
				a := st.Cats[c]
				if a == nil {
					a = &cat{}
					st.Cats[c] = a
				}
				if a.Ev.add(r) {
					a.W += w * decay
				}
			}
		}
	}
	if e.stated[ev.Name] {
		e.statedNeeds(p, r, props)
	}
	pain := e.after[ev.Name]
	lowCSAT := false
	if e.surveys[ev.Name] {
		if c, ok := props["csat"].(float64); ok && c >= 1 && c <= float64(e.cfg.LowCSAT) {
			pain, lowCSAT = true, true
		}
	}
	if pain {
		e.painPoints(p, r, props, lowCSAT)
	}
}

func (e *Enricher) statedNeeds(p *portrait.Profile, r ref, props map[string]any) {
	var said []string
	for _, f := range e.cfg.StatedFields {
		switch v := props[f].(type) {
		case string:
			for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '，' || r == '、' || r == ';' || r == '；' }) {
				if s = strings.TrimSpace(s); s != "" {
					said = append(said, s)
				}
			}
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok && strings.TrimSpace(s) != "" {
					said = append(said, strings.TrimSpace(s))
				}
			}
		}
	}
	if len(said) == 0 {
		return
	}
	st := e.state(p)
	for _, s := range said {
		it := st.Said[s]
		if it == nil {
			it = &item{}
			st.Said[s] = it
		}
		it.add(r, nil)
		toks, err := e.tokens(s)
		if err != nil {
			e.Errors.Add(1)
			continue
		}
		toks = append(toks, strings.ToLower(s))
		keys, terms := e.needs.match(toks)
		for _, k := range keys {
			it := st.Stated[k]
			if it == nil {
				it = &item{}
				st.Stated[k] = it
			}
			it.add(r, terms[k])
		}
	}
}

func (e *Enricher) painPoints(p *portrait.Profile, r ref, props map[string]any, lowCSAT bool) {
	st := e.state(p)
	text := e.text(props)
	add := func(topic string, terms []string) {
		it := st.Pains[topic]
		if it == nil {
			it = &item{}
			st.Pains[topic] = it
		}
		it.add(r, terms)
	}
	if strings.TrimSpace(text) == "" {
		if lowCSAT {
			add(TopicLowSatisfaction, nil)
		} else {
			add(TopicOther, nil)
		}
		return
	}
	toks, err := e.tokens(text)
	if err != nil {
		e.Errors.Add(1)
		add(TopicOther, nil)
		return
	}
	keys, terms := e.topics.match(toks)
	if len(keys) == 0 {
		// Unnamed by any topic: kept as other, with its words, so that
		// a new topic can be read off them and declared.
		if len(toks) > 8 {
			toks = toks[:8]
		}
		add(TopicOther, toks)
		return
	}
	for _, k := range keys {
		add(k, terms[k])
	}
}

// Merge folds gone's state into keep's.
func (e *Enricher) Merge(keep, gone *portrait.Profile) {
	k, g := e.state(keep), e.cache.Take(gone)
	if g == nil {
		g = decodeState(gone)
	}
	for c, a := range g.Cats {
		b := k.Cats[c]
		if b == nil {
			k.Cats[c] = a
			continue
		}
		// An event both hold (it cannot be, a profile's events are its
		// own) would count twice; evidence unions.
		b.W += a.W
		for _, r := range a.Ev {
			b.Ev.add(r)
		}
	}
	mergeItems := func(dst, src map[string]*item) {
		for key, a := range src {
			b := dst[key]
			if b == nil {
				dst[key] = a
				continue
			}
			for _, r := range a.Ev {
				b.Ev.add(r)
			}
			b.N += a.N
			for _, t := range a.Terms {
				if len(b.Terms) < 8 {
					b.Terms = appendUnique(b.Terms, t)
				}
			}
			slices.Sort(b.Terms)
		}
	}
	mergeItems(k.Stated, g.Stated)
	mergeItems(k.Said, g.Said)
	mergeItems(k.Pains, g.Pains)
}

// Score is a scored key with its evidence.
type Score struct {
	Key    string  `json:"key"`
	Score  float64 `json:"score"`
	Source string  `json:"source,omitempty"` // stated, affinity, stated+affinity
	Count  int     `json:"count,omitempty"`
	Events []any   `json:"events"`
	Terms  []string
	latest ref
}

// Needs is what a profile's state says as of now.
type Needs struct {
	Affinity []Score // categories, best first
	Needs    []Score // taxonomy needs, strongest first
	Said     []string
	Pains    []Score // topics, most frequent first
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func (e *Enricher) derive(st *state, now time.Time) *Needs {
	out := &Needs{}
	decay := e.decay(now)
	for c, a := range st.Cats {
		out.Affinity = append(out.Affinity, Score{Key: c, Score: round3(a.W * decay), Events: a.Ev.ids(), latest: a.Ev.latest()})
	}
	byScore := func(a, b Score) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	}
	slices.SortFunc(out.Affinity, byScore)
	for i, n := range e.cfg.Needs {
		s := Score{Key: n.Key}
		var ev evidence
		for _, a := range out.Affinity {
			if a.Score < e.cfg.MinAffinity {
				break
			}
			lc := strings.ToLower(a.Key)
			if slices.ContainsFunc(e.needCategories[i], func(c string) bool { return c != "" && strings.Contains(lc, c) }) {
				if a.Score > s.Score {
					s.Score = a.Score
				}
				s.Source = "affinity"
				for _, r := range st.Cats[a.Key].Ev {
					ev.add(r)
				}
			}
		}
		if it := st.Stated[n.Key]; it != nil {
			// Said outright outweighs any inferred interest.
			s.Score += 10 * float64(it.N)
			if s.Source == "" {
				s.Source = "stated"
			} else {
				s.Source = "stated+affinity"
			}
			for _, r := range it.Ev {
				ev.add(r)
			}
			s.Terms = it.Terms
		}
		if s.Source == "" {
			continue
		}
		s.Score, s.Events, s.latest = round3(s.Score), ev.ids(), ev.latest()
		out.Needs = append(out.Needs, s)
	}
	slices.SortFunc(out.Needs, byScore)
	for s := range st.Said {
		out.Said = append(out.Said, s)
	}
	slices.Sort(out.Said)
	for k, it := range st.Pains {
		out.Pains = append(out.Pains, Score{Key: k, Score: float64(it.N), Count: it.N, Events: it.Ev.ids(), Terms: it.Terms, latest: it.Ev.latest()})
	}
	slices.SortFunc(out.Pains, byScore)
	return out
}

// NeedsOf returns what a profile's kept state says as of now.
func (e *Enricher) NeedsOf(p *portrait.Profile, now time.Time) *Needs {
	return e.derive(decode(p.State[StateKey]), now)
}

// written is what Finish wrote to a profile object.
type written struct {
	raw   []byte   // the state encoding the traits were derived from
	names []string // the needs traits written
	// weights are the categories' decayed sums and scores their rounded
	// scores as written: everything written depends on the clock only
	// through those scores.
	weights, scores []float64
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (e *Enricher) decay(now time.Time) float64 {
	return math.Exp2(-float64(now.UnixMicro()-epoch) / float64(e.cfg.HalfLife/time.Microsecond))
}

// current reports whether p's needs traits are those Finish would write
// now: Finish wrote them from the state p holds, nothing changed them since
// and no affinity score has moved in its rounding.
func (e *Enricher) current(p *portrait.Profile, now time.Time) bool {
	w := e.written.Take(p)
	if w == nil || !sameBytes(w.raw, p.State[StateKey]) {
		return false
	}
	for _, name := range w.names {
		if tr, ok := p.Traits[name]; !ok || tr.Source != Source {
			return false
		}
	}
	decay := e.decay(now)
	for i, wt := range w.weights {
		if round3(wt*decay) != w.scores[i] {
			return false
		}
	}
	e.written.Put(p, w)
	return true
}

// Finish writes the needs traits and the state.
func (e *Enricher) Finish(p *portrait.Profile, now time.Time) {
	st := e.cache.Take(p)
	fresh := st != nil
	if st == nil {
		if len(p.State[StateKey]) == 0 {
			e.written.Take(p)
			return
		}
		if e.current(p, now) {
			return
		}
		st = decode(p.State[StateKey])
	}
	n := e.derive(st, now)
	for name, tr := range p.Traits {
		if tr.Source == Source {
			delete(p.Traits, name)
		}
	}
	if p.Traits == nil {
		p.Traits = map[string]portrait.Trait{}
	}
	var names []string
	put := func(name string, v any, r ref) {
		p.Traits[name] = portrait.Trait{Value: v, Source: Source, Time: time.UnixMicro(r.T).UTC(), MessageID: r.M}
		names = append(names, name)
	}
	latest := func(ss []Score) ref {
		var l ref
		for _, s := range ss {
			if l.cmp(s.latest) < 0 {
				l = s.latest
			}
		}
		return l
	}
	if len(n.Affinity) > 0 {
		aff := map[string]any{}
		var top []any
		for i, a := range n.Affinity {
			if i < 10 {
				aff[a.Key] = a.Score
			}
			if a.Score >= e.cfg.MinAffinity && len(top) < 3 {
				top = append(top, a.Key)
			}
		}
		put(TraitAffinity, aff, latest(n.Affinity))
		if len(top) > 0 {
			put(TraitTopCategories, top, latest(n.Affinity[:len(top)]))
		}
	}
	if len(n.Needs) > 0 {
		keys := make([]any, len(n.Needs))
		ev := map[string]any{}
		for i, s := range n.Needs {
			keys[i] = s.Key
			ev[s.Key] = map[string]any{"source": s.Source, "score": s.Score, "events": s.Events}
		}
		put(TraitNeeds, keys, latest(n.Needs))
		put(TraitNeedsEvidence, ev, latest(n.Needs))
	}
	if len(n.Said) > 0 {
		said := make([]any, len(n.Said))
		var l ref
		for i, s := range n.Said {
			said[i] = s
			if r := st.Said[s].Ev.latest(); l.cmp(r) < 0 {
				l = r
			}
		}
		put(TraitStated, said, l)
	}
	if len(n.Pains) > 0 {
		keys := make([]any, len(n.Pains))
		ev := map[string]any{}
		for i, s := range n.Pains {
			keys[i] = s.Key
			terms := make([]any, len(s.Terms))
			for j, t := range s.Terms {
				terms[j] = t
			}
			ev[s.Key] = map[string]any{"count": float64(s.Count), "events": s.Events, "terms": terms}
		}
		put(TraitPainPoints, keys, latest(n.Pains))
		put(TraitPainEvidence, ev, latest(n.Pains))
	}
	if fresh {
		raw, err := json.Marshal(st)
		if err != nil {
			e.written.Take(p)
			return
		}
		if p.State == nil {
			p.State = map[string]json.RawMessage{}
		}
		p.State[StateKey] = raw
	}
	w := &written{raw: p.State[StateKey], names: names,
		weights: make([]float64, 0, len(st.Cats)), scores: make([]float64, 0, len(st.Cats))}
	decay := e.decay(now)
	for _, a := range st.Cats {
		w.weights = append(w.weights, a.W)
		w.scores = append(w.scores, round3(a.W*decay))
	}
	e.written.Put(p, w)
}
