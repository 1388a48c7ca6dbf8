package segment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
)

// Definition is a saved segment.
type Definition struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Expression or Condition (one of them) defines membership.
	Expression string     `json:"expression,omitempty"`
	Condition  *Condition `json:"condition,omitempty"`
	// Union, Intersect or Difference (one of them, instead of an
	// expression) define the segment from saved segments: the members of
	// any, of all, or of the first and none of the others (setops.go).
	Union      []string `json:"union,omitempty"`
	Intersect  []string `json:"intersect,omitempty"`
	Difference []string `json:"difference,omitempty"`
	// Profiles, instead of an expression, is a fixed list of profile ids
	// (an uploaded list of identifiers, resolved); Upload reports how the
	// list matched.
	Profiles []string      `json:"profiles,omitempty"`
	Upload   *UploadReport `json:"upload,omitempty"`
	// Purpose, when set (e.g. "marketing"), excludes profiles that have not
	// consented to it.
	Purpose   string    `json:"purpose,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Compile checks a definition and returns its plan.
func (d *Definition) Compile() (Node, error) {
	d.Name = strings.TrimSpace(d.Name)
	if d.Name == "" || len([]rune(d.Name)) > 128 || strings.IndexFunc(d.Name, unicode.IsControl) >= 0 {
		return nil, invalid("a segment needs a name of 1 to 128 characters without control characters")
	}
	if len(d.Purpose) > 64 {
		return nil, invalid("purpose is longer than 64 characters")
	}
	op, _, err := d.setOp()
	if err != nil {
		return nil, err
	}
	kinds := 0
	for _, has := range []bool{d.Expression != "", d.Condition != nil, op != "", d.Profiles != nil} {
		if has {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return nil, invalid("give one of expression, condition, union, intersect, difference and profiles")
	case op != "":
		return nil, errSetOp // compiled by the service, which knows the operands
	case d.Profiles != nil:
		return listPlan(d.Profiles)
	case d.Condition != nil:
		return CompileCondition(d.Condition)
	case d.Expression != "":
		return CompileExpr(d.Expression)
	}
	return nil, invalid("a segment needs an expression (e.g. \"vip\" in tags && traits.age >= 30), a condition tree, or a set operation (union, intersect, difference) on saved segments")
}

// Event is one membership change.
type Event struct {
	ID      int64     `json:"id"`
	Segment string    `json:"segment_id"`
	Profile string    `json:"profile_id"`
	Kind    string    `json:"kind"` // enter | exit
	At      time.Time `json:"at"`
}

// Kinds of Event.
const (
	Enter = "enter"
	Exit  = "exit"
)

// Store keeps definitions, history, webhooks and dead letters.
type Store interface {
	SaveSegment(ctx context.Context, d *Definition) error
	DeleteSegment(ctx context.Context, id string) error
	Segments(ctx context.Context) ([]*Definition, error)
	// AppendSegmentEvents records the events that change the recorded
	// membership and sets their ids; the others (the same change already
	// recorded, by another node evaluating it too) are skipped, their id
	// left 0. Each recorded change of a (segment, profile) is numbered
	// from the last one recorded (its version) and unique by (segment,
	// profile, version): an event whose kind is the last recorded one's
	// changes nothing, and two nodes recording the same change from the
	// same version write it once (ON CONFLICT DO NOTHING / INSERT OR
	// IGNORE). So the history lists each change once however many api
	// nodes evaluate it.
	AppendSegmentEvents(ctx context.Context, evs []*Event) error
	SegmentEvents(ctx context.Context, segmentID string, after int64, limit int) ([]*Event, error)
	// RecordedMembers are the profiles whose last recorded event in the
	// segment is an enter: its membership as the history knows it.
	RecordedMembers(ctx context.Context, segmentID string) ([]string, error)
	WebhookStore
}

// Status is a segment with its freshness.
type Status struct {
	*Definition
	Size        int       `json:"size"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// LagSeconds is how far membership may be behind the clock: for a
	// time-based segment, the time since its last full evaluation (a window
	// may have passed since); a segment without time conditions is kept
	// current with every profile change and has no lag (always 0).
	LagSeconds float64 `json:"lag_seconds"`
	// EvalMillis is how long the last full evaluation took.
	EvalMillis float64  `json:"eval_ms"`
	TimeBased  bool     `json:"time_based"`
	Plan       string   `json:"plan"`
	Warnings   []string `json:"warnings,omitempty"`
	// Purposes are the consent purposes a member needs: the segment's own
	// and those of the segments a set operation is built on. Exports,
	// webhooks and deliveries honour them all.
	Purposes []string `json:"purposes,omitempty"`
}

type live struct {
	def         *Definition
	plan        Node
	deps        map[string]bool
	timed       bool
	members     *roaring.Bitmap
	evaluatedAt time.Time
	evalDur     time.Duration
	// purposes are the consent purposes a member needs: the segment's
	// own and its operands' (planPurposes), sorted.
	purposes []string
}

// Service keeps segment membership current and tells subscribers.
type Service struct {
	Index *Index
	Store Store
	Now   portrait.Clock
	Log   *slog.Logger
	// Behaviour loads a profile's behaviour summary from its events; it is
	// called only when the profile's track counts changed.
	Behaviour func(ctx context.Context, p *portrait.Profile) (Summary, error)
	// Consent reports whether a profile consented to a purpose. Nil:
	// everyone consents (until the privacy work provides consent).
	Consent func(purpose, profileID string) bool
	// Webhooks delivers events to subscribed URLs (nil: none). With an
	// Outbox it reads them from the recorded history, which emit only
	// wakes; without, emit hands it what was evaluated.
	Webhooks *Dispatcher
	// KnownTraits and KnownTags list the names the schema and the tag
	// taxonomy define, beyond those the index has seen on profiles: a
	// definition naming neither, but close to one, is refused with "did
	// you mean" (optional).
	KnownTraits func() []string
	KnownTags   func() []string

	mu   sync.RWMutex // guards segs
	segs map[string]*live

	subMu sync.Mutex
	subs  map[chan *Event]string // subscriber → segment filter ("" all)

	queue chan batch
	// stopped is closed when Run returns: the processor's hook then stops
	// queueing instead of blocking shutdown.
	stopped  chan struct{}
	stopOnce sync.Once
}

type batch struct {
	changed []*portrait.Profile // copies without traits (snapshot)
	values  []map[string]any    // changed[i]'s trait values
	deleted []string
	applied map[string][]*portrait.Event
	kept    map[string]any // Index.Keep of each changed profile (nil: none kept)
}

// NewService returns a service over an index and a store.
func NewService(ix *Index, store Store) *Service {
	return &Service{Index: ix, Store: store, Now: time.Now, Log: slog.Default(), segs: map[string]*live{},
		subs: map[chan *Event]string{}, queue: make(chan batch, 64), stopped: make(chan struct{})}
}

// Load reads the stored definitions and evaluates them (no events: this is
// the baseline membership).
func (s *Service) Load(ctx context.Context) error {
	defs, err := s.Store.Segments(ctx)
	if err != nil {
		return err
	}
	// Set operations compile from their operands' plans: load the other
	// segments first, then set operations as their operands become known.
	pending := defs
	for len(pending) > 0 {
		var later []*Definition
		for _, d := range pending {
			plan, err := d.Compile()
			if err == errSetOp {
				ready := true
				s.mu.RLock()
				for _, o := range d.operands() {
					if _, ok := s.segs[o]; !ok {
						ready = false
					}
				}
				s.mu.RUnlock()
				if !ready {
					later = append(later, d)
					continue
				}
				plan, err = s.compileAs(d, d.ID)
			}
			if err != nil {
				s.Log.Warn("stored segment no longer compiles; skipped", "segment", d.ID, "err", err)
				continue
			}
			if err := s.load(ctx, d, plan); err != nil {
				return err
			}
		}
		if len(later) == len(pending) {
			for _, d := range later {
				s.Log.Warn("stored set operation names a segment that is gone; skipped", "segment", d.ID, "operands", d.operands())
			}
			break
		}
		pending = later
	}
	return nil
}

// Sync reads the definitions again because another node changed them
// (several nodes over a shared store): a segment new or changed (its
// UpdatedAt differs) is compiled and evaluated, one no longer stored is
// dropped, and set operations built on a changed one follow it. The node
// that made the change recorded the entries and exits (its own and those
// of the set operations built on it), so nothing is recorded here, and the
// webhooks' Outbox sends them from that record. Without an Outbox they
// are handed to the dispatcher here, because the node that made the
// change may not be the one that sends (OnlyWhileRunning); the set
// operations' are not. It reports whether anything changed.
func (s *Service) Sync(ctx context.Context) (bool, error) {
	defs, err := s.Store.Segments(ctx)
	if err != nil {
		return false, err
	}
	stored := map[string]bool{}
	var pending []*Definition
	s.mu.RLock()
	for _, d := range defs {
		stored[d.ID] = true
		if l, ok := s.segs[d.ID]; !ok || !l.def.UpdatedAt.Equal(d.UpdatedAt) {
			pending = append(pending, d)
		}
	}
	var gone []string
	for id := range s.segs {
		if !stored[id] {
			gone = append(gone, id)
		}
	}
	s.mu.RUnlock()
	changed := len(pending) > 0 || len(gone) > 0
	var send []*Event
	defer func() {
		if len(send) > 0 {
			s.Webhooks.Enqueue(send) // deferred first, so run after s.mu is released
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range gone {
		delete(s.segs, id)
	}
	// As in Load: set operations once their operands are known.
	for len(pending) > 0 {
		var later []*Definition
		for _, d := range pending {
			plan, err := d.Compile()
			if err == errSetOp {
				ready := true
				for _, o := range d.operands() {
					if _, ok := s.segs[o]; !ok {
						ready = false
					}
				}
				if !ready {
					later = append(later, d)
					continue
				}
				op, ids, _ := d.setOp()
				plan, err = s.compileSetOp(op, ids, d.ID) // s.mu held: not compileAs
			}
			if err != nil {
				s.Log.Warn("stored segment no longer compiles; skipped", "segment", d.ID, "err", err)
				continue
			}
			l := s.newLive(d, plan)
			if old, ok := s.segs[d.ID]; ok {
				l.members = old.members
			}
			s.segs[d.ID] = l
			before := s.evaluate(l)
			if s.Webhooks != nil && s.Webhooks.Outbox == nil {
				send = append(send, diff(d.ID, before, l.members, s.Index, s.Now().UTC())...)
			}
			s.recompileDependents(d.ID) // their entries and exits were recorded where the change was made
		}
		if len(later) == len(pending) {
			for _, d := range later {
				s.Log.Warn("stored set operation names a segment that is gone; skipped", "segment", d.ID, "operands", d.operands())
			}
			break
		}
		pending = later
	}
	return changed, nil
}

// load evaluates a stored segment and records what changed since its
// history.
func (s *Service) load(ctx context.Context, d *Definition, plan Node) error {
	l := s.newLive(d, plan)
	s.evaluate(l)
	s.mu.Lock()
	s.segs[d.ID] = l
	s.mu.Unlock()
	// Membership changes while the server was stopped (a window
	// passed, profiles processed at start) are enter/exit events too:
	// what is evaluated now is compared with what the history recorded.
	recorded, err := s.Store.RecordedMembers(ctx, d.ID)
	if err != nil {
		return err
	}
	s.emit(ctx, s.sinceRecorded(d.ID, recorded, l.members))
	return nil
}

// sinceRecorded lists the enter/exit events that take a segment from its
// recorded membership to the current one. A recorded member the index no
// longer knows (merged away) exits.
func (s *Service) sinceRecorded(seg string, recorded []string, cur *roaring.Bitmap) []*Event {
	now := s.Now().UTC()
	was := make(map[string]bool, len(recorded))
	for _, id := range recorded {
		was[id] = true
	}
	var evs []*Event
	for _, id := range s.Index.IDs(cur, 0, int(cur.GetCardinality())) {
		if !was[id] {
			evs = append(evs, &Event{Segment: seg, Profile: id, Kind: Enter, At: now})
		}
		delete(was, id)
	}
	gone := make([]string, 0, len(was))
	for id := range was {
		gone = append(gone, id)
	}
	sort.Strings(gone)
	for _, id := range gone {
		evs = append(evs, &Event{Segment: seg, Profile: id, Kind: Exit, At: now})
	}
	return evs
}

func (s *Service) newLive(d *Definition, plan Node) *live {
	l := &live{def: d, plan: plan, deps: map[string]bool{}, timed: Timed(plan), members: roaring.New()}
	for _, k := range Deps(plan) {
		l.deps[k] = true
	}
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			l.purposes = append(l.purposes, p)
		}
	}
	add(d.Purpose)
	planPurposes(plan, add)
	sort.Strings(l.purposes)
	for _, p := range l.purposes {
		// Consent is kept as traits (erasure.ConsentTrait): a change of
		// it re-evaluates the profile, as a change of the plan's traits
		// does. automated_decision is the PIPL art. 24 opt-out.
		l.deps["trait:consent_"+strings.ToLower(p)] = true
		l.deps["trait:consent_automated_decision"] = true
	}
	return l
}

// missingConsent returns the first purpose of l the profile has not
// consented to ("" when none).
func (s *Service) missingConsent(l *live, profileID string) string {
	if s.Consent == nil {
		return ""
	}
	for _, p := range l.purposes {
		if !s.Consent(p, profileID) {
			return p
		}
	}
	return ""
}

// evaluate computes membership in full and returns the old members.
func (s *Service) evaluate(l *live) *roaring.Bitmap {
	start := time.Now()
	now := s.Now()
	m := s.Index.Evaluate(l.plan, now)
	if len(l.purposes) > 0 && s.Consent != nil {
		for _, id := range s.Index.IDs(m, 0, int(m.GetCardinality())) {
			if s.missingConsent(l, id) != "" {
				m.AndNot(s.Index.Numbers([]string{id}))
			}
		}
	}
	old := l.members
	l.members, l.evaluatedAt, l.evalDur = m, now, time.Since(start)
	return old
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "seg_" + hex.EncodeToString(b)
}

// Preview evaluates a definition that is not saved: count and a sample.
func (s *Service) Preview(d *Definition, sample int) (count int, ids []string, warnings []string, err error) {
	if d.Name == "" {
		d.Name = "preview"
	}
	plan, err := s.compile(d)
	if err != nil {
		return 0, nil, nil, err
	}
	m := s.Index.Evaluate(plan, s.Now())
	return int(m.GetCardinality()), s.Index.IDs(m, 0, sample), s.Index.Warnings(plan), nil
}

// Create saves and evaluates a new segment.
func (s *Service) Create(ctx context.Context, d *Definition) (*Status, error) {
	plan, err := s.compile(d)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	d.ID, d.CreatedAt, d.UpdatedAt = newID(), now, now
	if err := s.Store.SaveSegment(ctx, d); err != nil {
		return nil, err
	}
	l := s.newLive(d, plan)
	s.mu.Lock()
	s.segs[d.ID] = l
	old := s.evaluate(l)
	evs := diff(d.ID, old, l.members, s.Index, now)
	s.mu.Unlock()
	s.emit(ctx, evs)
	return s.Get(d.ID)
}

// Update replaces a segment's definition and re-evaluates it; the members
// that change enter or exit.
func (s *Service) Update(ctx context.Context, id string, d *Definition) (*Status, error) {
	plan, err := s.compileAs(d, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	l, ok := s.segs[id]
	if !ok {
		s.mu.Unlock()
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	d.ID, d.CreatedAt, d.UpdatedAt = id, l.def.CreatedAt, s.Now().UTC()
	if err := s.Store.SaveSegment(ctx, d); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	nl := s.newLive(d, plan)
	nl.members = l.members
	old := s.evaluate(nl)
	s.segs[id] = nl
	evs := diff(id, old, nl.members, s.Index, d.UpdatedAt)
	// the segments built on this one follow its new definition
	evs = append(evs, s.recompileDependents(id)...)
	s.mu.Unlock()
	s.emit(ctx, evs)
	return s.Get(id)
}

// Delete removes a segment (its history stays).
func (s *Service) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.segs[id]; !ok {
		return portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	if used := s.usedBy(id); len(used) > 0 {
		sort.Strings(used)
		return portrait.Errorf(portrait.ECONFLICT, "segment %q is an operand of %s: delete or redefine those first", id, strings.Join(used, ", "))
	}
	if err := s.Store.DeleteSegment(ctx, id); err != nil {
		return err
	}
	delete(s.segs, id)
	return nil
}

// Get returns a segment's status.
func (s *Service) Get(id string) (*Status, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.segs[id]
	if !ok {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	return s.status(l), nil
}

func (s *Service) status(l *live) *Status {
	lag := 0.0
	if l.timed {
		lag = max(0, s.Now().Sub(l.evaluatedAt).Seconds())
	}
	return &Status{Definition: l.def, Size: int(l.members.GetCardinality()), EvaluatedAt: l.evaluatedAt.UTC(),
		LagSeconds: lag, EvalMillis: float64(l.evalDur.Microseconds()) / 1000,
		TimeBased: l.timed, Plan: l.plan.String(), Warnings: s.Index.Warnings(l.plan), Purposes: l.purposes}
}

// List returns every segment, by name.
func (s *Service) List() []*Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Status, 0, len(s.segs))
	for _, l := range s.segs {
		out = append(out, s.status(l))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out
}

// Members pages a segment's member ids in index order; the cursor is the
// offset of the next page.
func (s *Service) Members(id string, offset, limit int) ([]string, int, error) {
	s.mu.RLock()
	l, ok := s.segs[id]
	var m *roaring.Bitmap
	if ok {
		m = l.members.Clone()
	}
	s.mu.RUnlock()
	if !ok {
		return nil, 0, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	return s.Index.IDs(m, offset, limit), int(m.GetCardinality()), nil
}

// Explain says why a profile is or is not in a segment.
func (s *Service) Explain(id, profileID string) (*Explanation, bool, error) {
	s.mu.RLock()
	l, ok := s.segs[id]
	s.mu.RUnlock()
	if !ok {
		return nil, false, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	ex, err := s.Index.Explain(l.plan, profileID, s.Now())
	if err != nil {
		return nil, false, err
	}
	if p := s.missingConsent(l, profileID); ex.Matched && p != "" {
		why := "the profile matches but has not consented to " + p
		if p != l.def.Purpose {
			why += ", which a segment it is built on requires"
		}
		ex = &Explanation{Clause: "consent to " + p, Matched: false, Reason: why, Children: []*Explanation{ex}}
	}
	return ex, ex.Matched, nil
}

// Overlap returns the pairwise intersection sizes of segments.
func (s *Service) Overlap(ids []string) ([][]int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	bms := make([]*roaring.Bitmap, len(ids))
	for i, id := range ids {
		l, ok := s.segs[id]
		if !ok {
			return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
		}
		bms[i] = l.members
	}
	out := make([][]int, len(ids))
	for i := range ids {
		out[i] = make([]int, len(ids))
		for j := range ids {
			out[i][j] = int(roaring.And(bms[i], bms[j]).GetCardinality())
		}
	}
	return out, nil
}

// History pages a segment's enter/exit events.
func (s *Service) History(ctx context.Context, id string, after int64, limit int) ([]*Event, error) {
	return s.Store.SegmentEvents(ctx, id, after, limit)
}

func diff(seg string, old, cur *roaring.Bitmap, ix *Index, at time.Time) []*Event {
	var evs []*Event
	add := func(bm *roaring.Bitmap, kind string) {
		for _, id := range ix.IDs(bm, 0, int(bm.GetCardinality())) {
			evs = append(evs, &Event{Segment: seg, Profile: id, Kind: kind, At: at.UTC()})
		}
	}
	add(roaring.AndNot(cur, old), Enter)
	add(roaring.AndNot(old, cur), Exit)
	return evs
}

// OnChange is the processor hook: it copies what the index needs and
// queues it for Run, so the processor never waits on segment work beyond a
// bounded queue.
func (s *Service) OnChange(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) {
	b := batch{deleted: append([]string(nil), deleted...), applied: make(map[string][]*portrait.Event, len(applied))}
	for id, evs := range applied {
		b.applied[id] = append([]*portrait.Event(nil), evs...) // the log's events are never modified
	}
	keeps := s.Index.Keeps()
	if keeps {
		b.kept = make(map[string]any, len(changed))
	}
	b.changed = make([]*portrait.Profile, 0, len(changed))
	b.values = make([]map[string]any, 0, len(changed))
	for _, p := range changed {
		c, vals := snapshot(p)
		b.changed = append(b.changed, c)
		b.values = append(b.values, vals)
		if keeps {
			// What the index keeps (SetKeep) is read from the state: taken
			// here rather than from a copy of every enricher's state (a few
			// KB per changed profile of every batch).
			b.kept[p.ID] = s.Index.Keep(p)
		}
	}
	select {
	case s.queue <- b:
	case <-s.stopped:
	}
}

// snapshot copies the parts of a profile segments read; the processor
// reuses its profiles. Of the traits it keeps the values alone, in a map
// of their own: a copy of p.Traits (source, time and message id beside
// each value, some 90 bytes a slot) was the largest allocation of live
// processing (issue 12 §5).
func snapshot(p *portrait.Profile) (*portrait.Profile, map[string]any) {
	c := &portrait.Profile{ID: p.ID,
		Identifiers: append([]portrait.Identifier(nil), p.Identifiers...), Tags: append([]portrait.ProfileTag(nil), p.Tags...),
		TrackCounts: make(map[string]int, len(p.TrackCounts))}
	vals := make(map[string]any, len(p.Traits))
	for k, v := range p.Traits {
		vals[k] = v.Value
	}
	for k, v := range p.TrackCounts {
		c.TrackCounts[k] = v
	}
	return c, vals
}

// Run applies queued changes and re-evaluates time-based segments every
// interval, until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	defer s.stopOnce.Do(func() { close(s.stopped) })
	for {
		select {
		case <-ctx.Done():
			// Changes already handed over are applied (and their enter/exit
			// events recorded) before stopping, within a few seconds.
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for drain.Err() == nil {
				select {
				case b := <-s.queue:
					if err := s.apply(drain, b.changed, b.values, b.deleted, b.applied, b.kept); err != nil {
						s.Log.Error("segment update failed at shutdown", "err", err)
					}
				default:
					return
				}
			}
			return
		case b := <-s.queue:
			err := s.apply(ctx, b.changed, b.values, b.deleted, b.applied, b.kept)
			switch {
			case err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled)):
				// Shutdown cancelled it midway (this loop's context, or the
				// store's, which is closing). Not a failure: the next
				// start evaluates every segment afresh and compares it with
				// the recorded enter/exit history (RecordedMembers), which
				// emits what this update did not.
				s.Log.Info("segment update interrupted by shutdown; the next start reconciles membership")
			case err != nil:
				s.Log.Error("segment update failed", "err", err)
			}
		case <-t.C:
			s.Tick(ctx)
		}
	}
}

// Apply brings the index and every affected segment up to date with
// changed and deleted profiles, and emits the enter/exit events.
//
// applied holds, per profile, the events applied since the last change (as
// the processor reports them): the behaviour summary is extended with them,
// and read again from the store only when they do not account for the
// profile's history (nil: always read again when behaviour changed).
func (s *Service) Apply(ctx context.Context, changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) error {
	return s.apply(ctx, changed, nil, deleted, applied, nil)
}

// apply is Apply; values, when not nil, holds the trait values of each
// changed profile (changed[i] has no traits: OnChange's snapshot), and
// kept, when not nil, what the index keeps for each (OnChange took it
// while the profile was whole).
func (s *Service) apply(ctx context.Context, changed []*portrait.Profile, values []map[string]any, deleted []string, applied map[string][]*portrait.Event, kept map[string]any) error {
	now := s.Now()
	type upd struct {
		num  uint32
		keys []string // distinct (Upsert's)
	}
	var ups []upd
	for i, p := range changed {
		var sum Summary
		if s.behaviourChanged(p) {
			ok := false
			if evs, known := applied[p.ID]; known {
				sum, ok = s.Index.extend(p, evs)
			}
			if !ok && s.Behaviour != nil {
				var err error
				if sum, err = s.Behaviour(ctx, p); err != nil {
					return err
				}
			}
		}
		var keys []string
		switch {
		case values != nil:
			var keep any
			if kept != nil {
				keep = kept[p.ID]
			}
			keys = s.Index.upsertValues(p, values[i], sum, keep, kept != nil)
		case kept != nil:
			keys = s.Index.upsertKept(p, sum, kept[p.ID])
		default:
			keys = s.Index.Upsert(p, sum)
		}
		if len(keys) == 0 {
			continue
		}
		// The keys stay a list (a few per profile, read once per
		// segment): a map per changed profile and batch was a tenth of
		// what the service allocated.
		ups = append(ups, upd{num: s.Index.liveNumber(p.ID), keys: keys})
	}
	gone := s.Index.Numbers(deleted)
	for _, id := range deleted {
		s.Index.Remove(id)
	}
	var evs []*Event
	s.mu.Lock()
	for _, l := range s.segs {
		for _, u := range ups {
			if !intersects(u.keys, l.deps) {
				continue
			}
			in, _ := s.Index.MatchOne(l.plan, s.Index.ID(u.num), now)
			if in && len(l.purposes) > 0 {
				in = s.missingConsent(l, s.Index.ID(u.num)) == ""
			}
			was := l.members.Contains(u.num)
			switch {
			case in && !was:
				l.members.Add(u.num)
				evs = append(evs, &Event{Segment: l.def.ID, Profile: s.Index.ID(u.num), Kind: Enter, At: now.UTC()})
			case !in && was:
				l.members.Remove(u.num)
				evs = append(evs, &Event{Segment: l.def.ID, Profile: s.Index.ID(u.num), Kind: Exit, At: now.UTC()})
			}
		}
		if !gone.IsEmpty() {
			left := roaring.And(l.members, gone)
			left.Iterate(func(n uint32) bool {
				evs = append(evs, &Event{Segment: l.def.ID, Profile: s.Index.ID(n), Kind: Exit, At: now.UTC()})
				return true
			})
			l.members.AndNot(gone)
		}
		if len(ups) > 0 || !gone.IsEmpty() {
			l.evaluatedAt = now
		}
	}
	s.mu.Unlock()
	s.emit(ctx, evs)
	return nil
}

// intersects: a profile new to the index, or a key in deps.
func intersects(keys []string, deps map[string]bool) bool {
	for _, k := range keys {
		if k == "profile" || deps[k] {
			return true
		}
	}
	return false
}

// behaviourChanged: the profile's track counts differ from the totals the
// index holds, so its events must be read again.
func (s *Service) behaviourChanged(p *portrait.Profile) bool {
	ix := s.Index
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n, ok := ix.nums[p.ID]
	if !ok || !ix.live.Contains(n) {
		return len(p.TrackCounts) > 0
	}
	held := 0
	for name, ec := range ix.events {
		if ec.did.Contains(n) {
			held++
			if int(ec.lists[n].Total) != p.TrackCounts[name] {
				return true
			}
		}
	}
	return held != len(p.TrackCounts)
}

// Tick re-evaluates the segments whose conditions depend on time: a window
// that passes makes profiles exit without any new event.
func (s *Service) Tick(ctx context.Context) {
	var evs []*Event
	s.mu.Lock()
	for _, l := range s.segs {
		if !l.timed {
			continue
		}
		old := s.evaluate(l)
		evs = append(evs, diff(l.def.ID, old, l.members, s.Index, l.evaluatedAt)...)
	}
	s.mu.Unlock()
	s.emit(ctx, evs)
}

// emit records events, then hands them to the stream and the webhooks.
func (s *Service) emit(ctx context.Context, evs []*Event) {
	if len(evs) == 0 {
		return
	}
	if err := s.Store.AppendSegmentEvents(ctx, evs); err != nil {
		s.Log.Error("cannot record segment events", "err", err, "events", len(evs))
	}
	s.subMu.Lock()
subscribers:
	for ch, filter := range s.subs {
		for _, e := range evs {
			if filter != "" && filter != e.Segment {
				continue
			}
			select {
			case ch <- e:
			default:
				// a subscriber that cannot keep up is cut off rather than
				// allowed to hold back membership updates
				delete(s.subs, ch)
				close(ch)
				continue subscribers
			}
		}
	}
	s.subMu.Unlock()
	switch {
	case s.Webhooks == nil:
	case s.Webhooks.Outbox != nil:
		// The dispatcher sends what the history holds, whichever node
		// recorded it: wake it (on this node, if it runs here).
		s.Webhooks.Wake()
	default:
		s.Webhooks.Enqueue(evs)
	}
}

// Subscribe returns a channel of events (of one segment, or all when
// segment is ""), closed by Unsubscribe or when the subscriber falls behind.
func (s *Service) Subscribe(segment string) chan *Event {
	ch := make(chan *Event, 1024)
	s.subMu.Lock()
	s.subs[ch] = segment
	s.subMu.Unlock()
	return ch
}

// Unsubscribe ends a subscription.
func (s *Service) Unsubscribe(ch chan *Event) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if _, ok := s.subs[ch]; ok {
		delete(s.subs, ch)
		close(ch)
	}
}

// MarshalEvent renders an event for the stream and webhooks.
func MarshalEvent(e *Event) []byte {
	b, _ := json.Marshal(e)
	return b
}
