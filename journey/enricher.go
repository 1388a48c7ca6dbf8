package journey

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/batchcache"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/traits"
)

// StateKey is this enricher's entry in Profile.State.
const StateKey = "journey"

// hit is an event that put the customer in a stage.
type hit struct {
	T int64  `json:"t"` // unix µs
	M string `json:"m"`
	S string `json:"s"`           // stage
	C string `json:"c,omitempty"` // channel
}

// answer is a satisfaction answer.
type answer struct {
	T    int64  `json:"t"`
	M    string `json:"m"`
	NPS  *int   `json:"n,omitempty"`
	CSAT *int   `json:"c,omitempty"`
}

// state is a set of hits and answers, each sorted by canonical key and
// unique by message id: a union, so it does not depend on arrival order or
// on which way round two profiles merge. Only the latest MaxHits are kept,
// which is also a function of the set.
type state struct {
	Hits    []hit    `json:"h,omitempty"`
	Answers []answer `json:"a,omitempty"`
}

func keyCmp(t1 int64, m1 string, t2 int64, m2 string) int {
	if c := cmp.Compare(t1, t2); c != 0 {
		return c
	}
	return cmp.Compare(m1, m2)
}

func (s *state) addHit(h hit, max int) bool {
	i, found := slices.BinarySearchFunc(s.Hits, h, func(a, b hit) int { return keyCmp(a.T, a.M, b.T, b.M) })
	if found {
		return false
	}
	s.Hits = slices.Insert(s.Hits, i, h)
	if len(s.Hits) > max {
		s.Hits = slices.Delete(s.Hits, 0, len(s.Hits)-max)
	}
	return true
}

func (s *state) addAnswer(a answer, max int) bool {
	i, found := slices.BinarySearchFunc(s.Answers, a, func(x, y answer) int { return keyCmp(x.T, x.M, y.T, y.M) })
	if found {
		return false
	}
	s.Answers = slices.Insert(s.Answers, i, a)
	if len(s.Answers) > max {
		s.Answers = slices.Delete(s.Answers, 0, len(s.Answers)-max)
	}
	return true
}

// Enricher derives the service path; it implements profile.Enricher.
type Enricher struct {
	cfg     Config
	surveys map[string]bool

	// cache holds decoded states of the profiles of the batch being
	// processed, so that a profile's events decode and encode its state
	// once.
	cache batchcache.Cache[portrait.Profile, state]
	// written remembers, by profile object, what Finish last wrote from
	// which state: a profile the processor still holds whose events this
	// batch matched no stage (most of them) then needs neither a decode
	// nor a derive, only its current stage's days brought up to now.
	// Re-deriving and re-putting every journey trait of every finished
	// profile each batch made its history and reached lists new objects
	// the segment index rewrote each time (issue 12 §5).
	written batchcache.Cache[portrait.Profile, written]
}

// written is what Finish wrote to a profile object.
type written struct {
	raw   []byte   // the state encoding the traits were derived from
	names []string // the journey traits written
	// daysName is the current stage's days trait, the only one that
	// moves with the clock alone; its value is base plus the days since
	// start (see Path.openBase), as derive computes it.
	daysName string
	base     float64
	start    int64
}

var _ profile.Enricher = (*Enricher)(nil)

// New returns an enricher for cfg.
func New(cfg Config) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, surveys: map[string]bool{}}
	for _, s := range cfg.SurveyEvents {
		e.surveys[s] = true
	}
	return e, nil
}

// Config returns the service path.
func (e *Enricher) Config() Config { return e.cfg }

func (e *Enricher) state(p *portrait.Profile) *state {
	return e.cache.Get(p, decodeState)
}

func decodeState(p *portrait.Profile) *state { return decode(p.State[StateKey]) }

func decode(raw json.RawMessage) *state {
	st := &state{}
	if len(raw) > 0 && json.Unmarshal(raw, st) != nil {
		return &state{} // written only by Finish: an unreadable one starts over
	}
	return st
}

// stageOf is the first stage (in path order) one of whose patterns ev
// matches, "" for none.
func (e *Enricher) stageOf(ev *portrait.Event, props map[string]any) (string, string) {
	var ch string
	chanOnce := false
	channel := func() string {
		if !chanOnce {
			ch, chanOnce = traits.Channel(ev, props), true
		}
		return ch
	}
	for i := range e.cfg.Stages {
		s := &e.cfg.Stages[i]
		for j := range s.Patterns {
			if s.Patterns[j].match(ev, props, channel) {
				return s.Name, channel()
			}
		}
	}
	return "", ""
}

// Event keeps ev if it matches a stage or answers a survey.
func (e *Enricher) Event(p *portrait.Profile, ev *portrait.Event, props map[string]any) {
	t := ev.Timestamp.UnixMicro()
	if stage, ch := e.stageOf(ev, props); stage != "" {
		e.state(p).addHit(hit{T: t, M: ev.MessageID, S: stage, C: ch}, e.cfg.MaxHits)
	}
	if ev.Type == portrait.EventTrack && e.surveys[ev.Name] {
		a := answer{T: t, M: ev.MessageID, NPS: score(props["nps"], 0, 10), CSAT: score(props["csat"], 1, 5)}
		if a.NPS != nil || a.CSAT != nil {
			e.state(p).addAnswer(a, e.cfg.MaxHits)
		}
	}
}

// score reads an integer answer in [lo, hi]; anything else is no answer.
func score(v any, lo, hi int) *int {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return nil
	}
	n := int(f)
	return &n
}

// Merge folds gone's hits and answers into keep's.
func (e *Enricher) Merge(keep, gone *portrait.Profile) {
	k, g := e.state(keep), e.cache.Take(gone)
	if g == nil {
		g = decodeState(gone)
	}
	for _, h := range g.Hits {
		k.addHit(h, e.cfg.MaxHits)
	}
	for _, a := range g.Answers {
		k.addAnswer(a, e.cfg.MaxHits)
	}
}

// Transition is one entry of the stage history.
type Transition struct {
	Stage     string    `json:"stage"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id"`
	Channel   string    `json:"channel,omitempty"`
}

// Path is a profile's service path as of a time.
type Path struct {
	Stage   string       // current ("" before any stage)
	History []Transition // stage changes by event time
	Reached []string     // in path order
	// First is each reached stage's first hit.
	First map[string]Transition
	// Days spent in each stage, all visits together, up to now.
	Days map[string]float64
	// DaysTo[i]: days from first reaching stage i to first reaching stage
	// i+1 at or after it (absent: not reached after it).
	DaysTo map[int]float64
	// NPS and CSAT: the latest answer given while in each stage.
	NPS, CSAT map[string]answer
	lastHit   map[string]hit
	// openBase is the current stage's days before its last visit, which
	// began at openStart (unix µs) and is still open: the current stage's
	// days are openBase plus the time since openStart, summed as here.
	openBase  float64
	openStart int64
}

// Derive computes the path from the state as of now. It depends only on
// the set of kept events and now.
func (e *Enricher) derive(st *state, now time.Time) *Path {
	p := &Path{First: map[string]Transition{}, Days: map[string]float64{}, DaysTo: map[int]float64{},
		NPS: map[string]answer{}, CSAT: map[string]answer{}, lastHit: map[string]hit{}}
	nowUS := now.UnixMicro()
	runStart := -1
	closeRun := func(i int, end int64) {
		if runStart < 0 {
			return
		}
		h := st.Hits[runStart]
		if end > h.T {
			p.Days[h.S] += float64(end-h.T) / float64(24*time.Hour/time.Microsecond)
		}
	}
	for i, h := range st.Hits {
		if _, ok := p.First[h.S]; !ok {
			p.First[h.S] = Transition{Stage: h.S, At: time.UnixMicro(h.T).UTC(), MessageID: h.M, Channel: h.C}
		}
		p.lastHit[h.S] = h
		if runStart >= 0 && st.Hits[runStart].S == h.S {
			continue
		}
		closeRun(i, h.T)
		runStart = i
		p.History = append(p.History, Transition{Stage: h.S, At: time.UnixMicro(h.T).UTC(), MessageID: h.M, Channel: h.C})
	}
	if runStart >= 0 {
		p.openBase, p.openStart = p.Days[st.Hits[runStart].S], st.Hits[runStart].T
	}
	closeRun(len(st.Hits), nowUS)
	if n := len(p.History); n > 0 {
		p.Stage = p.History[n-1].Stage
	}
	for i, s := range e.cfg.Stages {
		f, ok := p.First[s.Name]
		if !ok {
			continue
		}
		p.Reached = append(p.Reached, s.Name)
		if i+1 < len(e.cfg.Stages) {
			next := e.cfg.Stages[i+1].Name
			for _, h := range st.Hits {
				if h.S == next && keyCmp(h.T, h.M, f.At.UnixMicro(), f.MessageID) >= 0 {
					p.DaysTo[i] = float64(h.T-f.At.UnixMicro()) / float64(24*time.Hour/time.Microsecond)
					break
				}
			}
		}
	}
	// Each answer belongs to the stage of the latest hit at or before it.
	for _, a := range st.Answers {
		j, _ := slices.BinarySearchFunc(st.Hits, a, func(h hit, a answer) int { return keyCmp(h.T, h.M, a.T, a.M) })
		if j == 0 {
			continue // answered before any stage
		}
		stage := st.Hits[j-1].S
		if a.NPS != nil {
			p.NPS[stage] = a
		}
		if a.CSAT != nil {
			p.CSAT[stage] = a
		}
	}
	return p
}

// PathOf returns a profile's service path as of now, from its kept state.
func (e *Enricher) PathOf(pr *portrait.Profile, now time.Time) *Path {
	return e.derive(decode(pr.State[StateKey]), now)
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// openDays is the current stage's days as of nowUS, computed as derive
// computes it.
func openDays(base float64, start, nowUS int64) float64 {
	if nowUS > start {
		base += float64(nowUS-start) / float64(24*time.Hour/time.Microsecond)
	}
	return round2(base)
}

// current brings pr's journey traits up to now when Finish wrote them from
// the state pr holds and nothing changed them since, and reports whether
// it did.
func (e *Enricher) current(pr *portrait.Profile, now time.Time) bool {
	w := e.written.Take(pr)
	if w == nil || !sameBytes(w.raw, pr.State[StateKey]) {
		return false
	}
	for _, name := range w.names {
		if tr, ok := pr.Traits[name]; !ok || tr.Source != Source {
			return false // changed by someone else since: write them all
		}
	}
	if w.daysName != "" {
		tr := pr.Traits[w.daysName]
		if d := openDays(w.base, w.start, now.UnixMicro()); tr.Value != d {
			tr.Value = d
			pr.Traits[w.daysName] = tr
		}
	}
	e.written.Put(pr, w)
	return true
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Finish writes the journey traits and the state.
func (e *Enricher) Finish(pr *portrait.Profile, now time.Time) {
	st := e.cache.Take(pr)
	fresh := st != nil
	if st == nil {
		if len(pr.State[StateKey]) == 0 {
			e.written.Take(pr)
			return // nothing matched ever: no journey traits to keep current
		}
		if e.current(pr, now) {
			return
		}
		st = decode(pr.State[StateKey])
	}
	path := e.derive(st, now)
	// Remove the journey traits first: a stage dropped from the
	// configuration (or a trimmed hit) must not leave a stale one.
	for name, tr := range pr.Traits {
		if tr.Source == Source {
			delete(pr.Traits, name)
		}
	}
	if pr.Traits == nil {
		pr.Traits = map[string]portrait.Trait{}
	}
	var names []string
	put := func(name string, v any, at time.Time, msg string) {
		pr.Traits[name] = portrait.Trait{Value: v, Source: Source, Time: at, MessageID: msg}
		names = append(names, name)
	}
	if n := len(path.History); n > 0 {
		cur := path.History[n-1]
		put(TraitStage, cur.Stage, cur.At, cur.MessageID)
		put(TraitSince, cur.At.Format(time.RFC3339Nano), cur.At, cur.MessageID)
		hist := make([]any, n)
		for i, t := range path.History {
			m := map[string]any{"stage": t.Stage, "at": t.At.Format(time.RFC3339Nano), "message_id": t.MessageID}
			if t.Channel != "" {
				m["channel"] = t.Channel
			}
			hist[i] = m
		}
		put(TraitHistory, hist, cur.At, cur.MessageID)
		// reached: dated by the latest first arrival, which made the set
		var latest Transition
		reached := make([]any, len(path.Reached))
		for i, s := range path.Reached {
			reached[i] = s
			if f := path.First[s]; latest.At.IsZero() || keyCmp(latest.At.UnixMicro(), latest.MessageID, f.At.UnixMicro(), f.MessageID) < 0 {
				latest = f
			}
		}
		put(TraitReached, reached, latest.At, latest.MessageID)
	}
	for i, s := range e.cfg.Stages {
		f, ok := path.First[s.Name]
		if !ok {
			continue
		}
		last := path.lastHit[s.Name]
		put(DaysIn(s.Name), round2(path.Days[s.Name]), time.UnixMicro(last.T).UTC(), last.M)
		if f.Channel != "" {
			put(ChannelOf(s.Name), f.Channel, f.At, f.MessageID)
		}
		if d, ok := path.DaysTo[i]; ok {
			next := path.First[e.cfg.Stages[i+1].Name]
			put(DaysTo(s.Name, e.cfg.Stages[i+1].Name), round2(d), next.At, next.MessageID)
		}
		if a, ok := path.NPS[s.Name]; ok {
			put(NPSAt(s.Name), float64(*a.NPS), time.UnixMicro(a.T).UTC(), a.M)
		}
		if a, ok := path.CSAT[s.Name]; ok {
			put(CSATAt(s.Name), float64(*a.CSAT), time.UnixMicro(a.T).UTC(), a.M)
		}
	}
	if fresh {
		raw, err := json.Marshal(st)
		if err != nil {
			e.written.Take(pr)
			return
		}
		if pr.State == nil {
			pr.State = map[string]json.RawMessage{}
		}
		pr.State[StateKey] = raw
	}
	w := &written{raw: pr.State[StateKey], names: names}
	if n := len(path.History); n > 0 {
		w.daysName, w.base, w.start = DaysIn(path.Stage), path.openBase, path.openStart
	}
	e.written.Put(pr, w)
}
