package profile

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

// CheckpointName is the processor's position in the log.
const CheckpointName = "profiles"

// Processor applies the event log to profiles. It is the only writer of the
// derived state; Run owns its goroutine.
type Processor struct {
	Store Store
	Rules *identity.Rules
	Now   portrait.Clock
	Log   *slog.Logger
	// BatchSize is how many events one transaction applies. While the
	// processor is behind (a batch came back full), each next batch is
	// twice as large, up to MaxBatchSize: catching up, fewer and larger
	// transactions rewrite each active profile fewer times; live, batches
	// stay small and fresh. MaxBatchSize 0 means BatchSize.
	BatchSize    int
	MaxBatchSize int
	batch        int // the size of the next batch
	// Linger is how long Run lets new events gather before applying a
	// batch that would not be full.
	Linger time.Duration
	// BusyLinger replaces Linger after a busy batch (see Run).
	BusyLinger time.Duration
	// OnceTraits are traits whose first value wins ($set_once), by name.
	OnceTraits map[string]bool
	// SourcePriority ranks sources for traits set at the same instant.
	SourcePriority func(source string) int
	// Notify returns a channel closed when new events are appended.
	Notify func() <-chan struct{}
	// OnChange, when set, is told after each commit which profiles changed,
	// which ids no longer exist (merged away), and, for each changed
	// profile whose new events are all known, the events applied to it in
	// this batch in canonical order (a profile merged or re-ordered in the
	// batch is absent: its history must be read again). It runs on the
	// processor's goroutine and must not keep or modify the profiles.
	OnChange func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event)
	// OnBatch, when set, is told after each committed batch.
	OnBatch func(applied int, lastSeq int64, lastEventTime time.Time)
	// Standardize cleans a trait value before it is set (phones to E.164,
	// names NFKC...); an error leaves the trait unset and is recorded as a
	// trait issue. Nil: values are kept as sent.
	Standardize func(name string, v any) (any, error)
	// Enrichers derive computed traits and tags; called in order.
	Enrichers []Enricher
	// MaxProfiles bounds the profile cache.
	MaxProfiles int
	// MaxIdentities bounds the identity cache. While the whole graph fits,
	// it is held in memory and lookups never read storage.
	MaxIdentities int

	mu sync.Mutex // serialises batches (Run and direct callers)
	// applied is the last event applied; committed the last one whose
	// state is known to be in storage (commits finish in the background).
	applied   atomic.Int64
	committed atomic.Int64
	// graph caches the identity graph (see graph.go).
	graph     *graph
	profiles  map[string]*portrait.Profile
	retracted map[string]bool
	// splits are the identity merges people undid (see split.go), by the
	// split event's message id, and indexed by the identifiers they name.
	splits   map[string]*Split
	splitIdx map[portrait.Identifier][]*Split
	loaded   bool
}

// NewProcessor returns a processor with defaults.
func NewProcessor(store Store, rules *identity.Rules) *Processor {
	return &Processor{
		Store: store, Rules: rules, Now: time.Now, Log: slog.Default(),
		BatchSize: 50_000, MaxBatchSize: 200_000, Linger: 100 * time.Millisecond, BusyLinger: time.Second, OnceTraits: map[string]bool{}, MaxProfiles: 250_000, MaxIdentities: 2_000_000,
		SourcePriority: func(string) int { return 0 },
	}
}

// Checkpoint is the sequence number of the last applied event.
// Checkpoint is the sequence number of the last event whose effects are
// committed: what readers of the store see.
func (p *Processor) Checkpoint() int64 { return p.committed.Load() }

func (p *Processor) resetCaches() {
	p.graph = newGraph()
	p.profiles = make(map[string]*portrait.Profile)
	p.loaded = false
}

func (p *Processor) load(ctx context.Context) error {
	if p.loaded {
		return nil
	}
	p.resetCaches()
	// A commit still in the background would move the checkpoint after it
	// was read. Its failure needs no report: everything is read again here.
	p.Store.WaitState(ctx)
	cp, err := p.Store.Checkpoint(ctx, CheckpointName)
	if err != nil {
		return err
	}
	p.applied.Store(cp)
	p.committed.Store(cp)
	refs, err := p.Store.LoadRefused(ctx)
	if err != nil {
		return err
	}
	rs, err := p.Store.LoadRetracted(ctx)
	if err != nil {
		return err
	}
	p.retracted = make(map[string]bool, len(rs))
	for _, m := range rs {
		p.retracted[m] = true
	}
	if err := p.loadSplits(ctx); err != nil {
		return err
	}
	ids, attached, complete, err := p.Store.LoadIdentities(ctx, p.MaxIdentities)
	if err != nil {
		return err
	}
	p.graph.load(refs, ids, attached, complete)
	p.loaded = true
	return nil
}

// Run applies the log until ctx ends, sleeping when caught up.
func (p *Processor) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		var wake <-chan struct{}
		if p.Notify != nil {
			wake = p.Notify() // taken before reading, so no commit is missed
		}
		n, err := p.step(ctx)
		if err == nil && n < p.BatchSize {
			// Caught up (or nearly): what was applied becomes visible
			// before the pause.
			err = p.Sync(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.Log.Error("profile processor failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n >= p.BatchSize {
			continue // behind: no pause
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-time.After(time.Second):
			}
		}
		// Let events gather before the next batch: a commit rewrites every
		// profile it touches, so under load fewer, larger batches apply far
		// more events per second, at the cost of Linger in freshness. A
		// busy stream (the batch was an eighth full or more) waits
		// BusyLinger: the processor then takes less of the CPU that
		// acknowledging events needs, and still keeps up.
		linger := p.Linger
		if p.BusyLinger > linger && n >= p.BatchSize/8 {
			linger = p.BusyLinger
		}
		if linger > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(linger):
			}
		}
	}
}

// Step applies the next batch of the log and returns how many events it
// applied (0 when caught up). The batch is committed when it returns.
func (p *Processor) Step(ctx context.Context) (int, error) {
	n, err := p.step(ctx)
	if err != nil {
		return n, err
	}
	return n, p.Sync(ctx)
}

// Sync waits until everything applied so far is committed to storage.
func (p *Processor) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false // storage is behind what was applied: read it again
		return err
	}
	p.committed.Store(p.applied.Load())
	return nil
}

// step applies the next batch; its commit may still be running when it
// returns, while the next batch is computed.
func (p *Processor) step(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return 0, err
	}
	size := max(p.batch, p.BatchSize)
	events, err := p.Store.ReadLog(ctx, p.applied.Load(), size)
	if len(events) == size {
		p.batch = min(2*size, max(p.MaxBatchSize, p.BatchSize))
	} else {
		p.batch = p.BatchSize
	}
	if err != nil || len(events) == 0 {
		return 0, err
	}
	if err := p.apply(ctx, events); err != nil {
		p.resetCaches() // the transaction rolled back; caches may be ahead of it
		return 0, err
	}
	last := events[len(events)-1]
	p.applied.Store(last.Seq)
	if p.OnBatch != nil {
		p.OnBatch(len(events), last.Seq, last.Timestamp)
	}
	return len(events), nil
}

// CatchUp applies the log until the processor has reached seq.
func (p *Processor) CatchUp(ctx context.Context, seq int64) error {
	for {
		// After a failed commit the position goes back to what storage
		// holds: load reads it again.
		p.mu.Lock()
		err := p.load(ctx)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if p.applied.Load() >= seq {
			return p.Sync(ctx)
		}
		n, err := p.step(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := p.Sync(ctx); err != nil {
				return err
			}
			if p.applied.Load() < seq {
				return portrait.Errorf(portrait.EINTERNAL, "log ends at %d, before %d", p.applied.Load(), seq)
			}
		}
	}
}

func (p *Processor) apply(ctx context.Context, events []*portrait.Event) (err error) {
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	b := &batch{p: p, ctx: ctx, tx: tx, dirty: map[string]*touched{}, now: p.Now()}
	// Decoding payloads and extracting identifiers depend on nothing but
	// the event: done on all cores before the sequential part.
	pre := make([]prepared, len(events))
	parallel.For(len(events), func(i int) { pre[i] = p.prepareIDs(events[i]) })
	// The enrichers' decoded properties are needed only at the end of the
	// batch: they are decoded on the side while the sequential part below
	// leaves a core idle.
	if len(p.Enrichers) > 0 {
		props := make([]map[string]any, len(events))
		for i := range pre {
			pre[i].ps.propsAt = &props[i]
		}
		b.propsDone = make(chan struct{})
		go func() {
			defer close(b.propsDone)
			for i, e := range events {
				props[i] = decodeProps(e)
			}
		}()
		defer func() { <-b.propsDone }() // an early return waits for it too
	}
	// Profiles are defined by canonical order, so a batch may be applied in
	// that order: concurrent requests commit out of time order, and sorting
	// here saves most late events the replay of their profiles.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, c int) bool { return events[order[a]].Key().Less(events[order[c]].Key()) })
	for _, i := range order {
		e := events[i]
		if err := b.event(e, pre[i]); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.Seq, e.MessageID, err)
		}
	}
	if err := b.replayLate(); err != nil {
		return err
	}
	dirty := make([]*touched, 0, len(b.dirty))
	for _, c := range b.dirty {
		c.pr.UpdatedAt = b.now
		dirty = append(dirty, c)
	}
	slices.SortFunc(dirty, func(x, y *touched) int { return strings.Compare(x.pr.ID, y.pr.ID) })
	// Nothing below reads: storage starts on the batch's identities and
	// event lists now, and on its profiles as they are finished, while
	// the enrichers work on the rest.
	if err := tx.Flush(); err != nil {
		return err
	}
	if err := b.finish(dirty); err != nil {
		return err
	}
	for _, is := range b.issues {
		if err := tx.AddTraitIssue(is); err != nil {
			return err
		}
	}
	if err := tx.SetCheckpoint(CheckpointName, events[len(events)-1].Seq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if p.OnChange != nil {
		var gone []string
		for id := range b.deleted {
			if _, ok := b.dirty[id]; !ok {
				gone = append(gone, id)
			}
		}
		sort.Strings(gone)
		applied := make(map[string][]*portrait.Event, len(b.applied))
		for id, evs := range b.applied {
			if _, ok := b.dirty[id]; ok && !b.stale[id] {
				applied[id] = evs
			}
		}
		prs := make([]*portrait.Profile, len(dirty))
		for i, c := range dirty {
			prs[i] = c.pr
		}
		p.OnChange(prs, gone, applied)
	}
	if len(p.profiles) > p.MaxProfiles {
		// Evict a quarter, at random (map order), keeping this batch's
		// profiles: dropping the whole cache would make the next batch
		// read back every profile it touches, the costliest way to go
		// when the active customers outnumber the cache.
		for id := range p.profiles {
			if len(p.profiles) <= p.MaxProfiles*3/4 {
				break
			}
			if _, ok := b.dirty[id]; !ok {
				delete(p.profiles, id)
			}
		}
	}
	// When the graph no longer fits, a miss means "ask storage" (which
	// waits for the commit in flight).
	p.graph.trim(p.MaxIdentities)
	return nil
}

// touched is a profile the batch changed, with its events the enrichers
// have yet to see: one map entry for both, as each event touches both.
type touched struct {
	pr *portrait.Profile
	q  []enrichEvent
}

// enrichEvent is an event waiting for the enrichers.
type enrichEvent struct {
	e     *portrait.Event
	props map[string]any
	at    *map[string]any // where the properties are decoded instead, when set
}

// finish hands each changed profile's new events to the enrichers,
// finishes it and writes it. Profiles are independent of one another
// here, so this runs on all cores: it is most of what computed traits and
// tags cost. Each profile is encoded right after its enrichers are done
// with it, while it is still in the core's cache.
func (b *batch) finish(dirty []*touched) error {
	ens := b.p.Enrichers
	if b.propsDone != nil {
		<-b.propsDone
	}
	errs := make([]error, len(dirty))
	parallel.For(len(dirty), func(i int) {
		pr, q := dirty[i].pr, dirty[i].q
		if len(ens) > 0 {
			for _, en := range ens {
				for _, x := range q {
					props := x.props
					if x.at != nil {
						props = *x.at
					}
					en.Event(pr, x.e, props)
				}
			}
			for _, en := range ens {
				en.Finish(pr, b.now)
			}
		}
		errs[i] = b.tx.PutProfile(pr)
	})
	return errors.Join(errs...)
}

// batch is the work of one transaction.
type batch struct {
	late []*portrait.Event // events whose place is inside a profile's history
	// propsDone is closed when the batch's properties are decoded.
	propsDone chan struct{}
	applied   map[string][]*portrait.Event // per profile, in this batch
	stale     map[string]bool              // merged or re-ordered in this batch
	deleted   map[string]bool
	issues    []*portrait.TraitIssue
	p         *Processor
	ctx       context.Context
	tx        StateTx
	dirty     map[string]*touched // by id
	now       time.Time
	// replay, while a replay runs, says why (for the merges it journals).
	replay string
}

func (b *batch) identity(id portrait.Identifier) (string, error) {
	return b.p.graph.ownerOf(b.tx, id)
}

func (b *batch) profile(id string) (*portrait.Profile, error) {
	if pr, ok := b.p.profiles[id]; ok {
		return pr, nil
	}
	pr, err := b.tx.Profile(id)
	if err != nil {
		return nil, err
	}
	if pr == nil {
		return nil, portrait.Errorf(portrait.EINTERNAL, "identity graph points at missing profile %s", id)
	}
	b.p.profiles[id] = pr
	return pr, nil
}

// touch marks pr changed and returns its entry.
func (b *batch) touch(pr *portrait.Profile) *touched {
	b.p.profiles[pr.ID] = pr
	c := b.dirty[pr.ID]
	if c == nil || c.pr != pr {
		c = &touched{pr: pr}
		b.dirty[pr.ID] = c
	}
	return c
}

func (b *batch) journal(m *portrait.MergeEntry) error {
	m.At = b.now
	return b.tx.AppendMerge(m)
}

// parsed is what the processor reads from an event's payload.
type parsed struct {
	bad     map[string]string // traits whose values could not be read, raw
	props   map[string]any    // decoded only when enrichers need them
	propsAt *map[string]any   // or decoded there, later (see apply)
	imputed map[string]string // trait → fill rule, for values an import imputed
	traits  map[string]any    // identify traits and context.traits
	once    map[string]any    // traits.$set_once
	extIDs  []portrait.Identifier
}

func parse(e *portrait.Event) parsed {
	var ps parsed
	// Malformed payloads cannot reach the log (the ingest checks they are
	// objects), but a store written by hand could hold one: ignore it
	// rather than stop the processor.
	if len(e.Context) > 0 {
		var c struct {
			Traits      json.RawMessage `json:"traits"`
			ExternalIDs []struct {
				ID   any    `json:"id"`
				Type string `json:"type"`
			} `json:"externalIds"`
			// An import marks the values its fill rules supplied.
			Import struct {
				Imputed []struct {
					Field string `json:"field"`
					Rule  string `json:"rule"`
				} `json:"imputed"`
			} `json:"import"`
		}
		if json.Unmarshal(e.Context, &c) == nil {
			if len(c.Traits) > 0 {
				ps.traits = decodeObject(c.Traits, &ps.bad)
			}
			for _, im := range c.Import.Imputed {
				if ps.imputed == nil {
					ps.imputed = map[string]string{}
				}
				ps.imputed[im.Field] = im.Rule
			}
			for _, x := range c.ExternalIDs {
				if x.Type != "" && x.ID != nil {
					ps.extIDs = append(ps.extIDs, portrait.Identifier{Type: x.Type, Value: fmt.Sprint(x.ID)})
				}
			}
		}
	}
	// Group traits describe the account, not the person.
	if len(e.Traits) > 0 && e.Type != portrait.EventGroup {
		if t := decodeObject(e.Traits, &ps.bad); ps.traits == nil {
			ps.traits = t
		} else {
			for k, v := range t {
				ps.traits[k] = v // the event's own traits win over context.traits
			}
		}
	}
	if so, ok := ps.traits["$set_once"].(map[string]any); ok {
		ps.once = so
		delete(ps.traits, "$set_once")
	}
	return ps
}

// decodeObject decodes a JSON object. JSON that is well formed can still
// hold a value Go cannot represent (a number such as 1e309): then each key
// is decoded on its own, so one bad value costs only that key, and the bad
// ones are reported in *bad (name → the raw value) instead of silently
// losing the whole object.
func decodeObject(raw json.RawMessage, bad *map[string]string) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		return m
	}
	var parts map[string]json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return nil
	}
	m = make(map[string]any, len(parts))
	for k, v := range parts {
		var x any
		if json.Unmarshal(v, &x) != nil {
			if *bad == nil {
				*bad = map[string]string{}
			}
			(*bad)[k] = string(v)
			continue
		}
		m[k] = x
	}
	return m
}

// allTraits returns the traits to look for identifiers in.
func (ps parsed) allTraits() map[string]any {
	if len(ps.once) == 0 {
		return ps.traits
	}
	m := make(map[string]any, len(ps.traits)+len(ps.once))
	for k, v := range ps.once {
		m[k] = v
	}
	for k, v := range ps.traits {
		m[k] = v
	}
	return m
}

// prepared is an event's payload, decoded, and its identifiers.
type prepared struct {
	ps  parsed
	ids []portrait.Identifier
}

func (p *Processor) prepare(e *portrait.Event) prepared {
	pre := p.prepareIDs(e)
	if len(p.Enrichers) > 0 {
		pre.ps.props = decodeProps(e)
	}
	return pre
}

// prepareIDs is prepare without the properties.
func (p *Processor) prepareIDs(e *portrait.Event) prepared {
	ps := parse(e)
	ids, _ := p.Rules.Identifiers(e, ps.allTraits(), ps.extIDs)
	return prepared{ps, ids}
}

// decodeProps decodes the properties the enrichers see; one that cannot
// be read is left out.
func decodeProps(e *portrait.Event) map[string]any {
	if len(e.Properties) == 0 || e.System() {
		return nil
	}
	var bad map[string]string
	return decodeObject(e.Properties, &bad)
}

// event applies one event from the log.
func (b *batch) event(e *portrait.Event, pre prepared) error {
	if e.Type == portrait.EventRetract {
		return b.retract(e)
	}
	if b.p.retracted[e.MessageID] {
		return nil // undone before it arrived
	}
	if e.Type == portrait.EventSplit {
		return b.split(e)
	}
	ps, ids := pre.ps, pre.ids
	key := e.Key()

	// Which existing profiles does this event touch? (An event carries a
	// handful of identifiers: a small list beats maps here, on the path
	// every event takes.)
	var buf [4]string
	involved := buf[:0]
	addInvolved := func(pid string) {
		for _, x := range involved {
			if x == pid {
				return
			}
		}
		involved = append(involved, pid)
	}
	owners := 0
	allOwnedByOne := true
	var only string
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return err
		}
		if pid == "" {
			allOwnedByOne = false
		} else {
			addInvolved(pid)
			if only != "" && only != pid {
				allOwnedByOne = false
				owners++
			}
			if only == "" {
				owners = 1
			}
			only = pid
		}
		for rp := range b.p.graph.refusedBy(id) {
			addInvolved(rp)
			if rp != pid {
				allOwnedByOne = false
			}
		}
	}
	inOrder := true
	for _, pid := range involved {
		pr, err := b.profile(pid)
		if err != nil {
			return err
		}
		if !pr.LastKey.Less(key) {
			inOrder = false
		}
	}
	if !inOrder {
		// A late event. If all its ids sit on one profile whose identity
		// was settled before the event's time, it changes no identity
		// decision, and applying it now gives what applying it in order
		// would: traits, counts and seen-times combine in any order.
		simple := allOwnedByOne && owners == 1 && len(involved) == 1
		if simple {
			pr, _ := b.profile(only)
			simple = pr.IdentityKey.Less(key)
			if !simple {
				// Every identifier attached before this event: in
				// canonical order the event lands on their owner of the
				// time, which is part of pr now — the one owner, when
				// there is one identifier or no merge made pr after the
				// event — and an event that brings no new identifier and
				// joins nothing changes no identity decision (nor first
				// keys: the owner began before the attaching events).
				// Most late events are of this kind — page views,
				// purchases, identifies sent by a client that buffered
				// them — and replaying a long history for each would be
				// the slow way to the same profile.
				simple = len(ids) == 1 || (len(pr.MergedFrom) == 0 && pr.MergeKey == portrait.EventKey{}) ||
					(pr.MergeKey != portrait.EventKey{} && pr.MergeKey.Less(key))
				for _, id := range ids {
					at, ok := b.p.graph.attachedAt(id)
					simple = simple && ok && at.Less(key)
				}
			}
		}
		if !simple {
			// Re-ordering is deferred to the end of the batch, where all
			// the batch's late events replay their profiles once: a
			// backfill of N old events would otherwise replay the same
			// history N times.
			b.late = append(b.late, e)
			return nil
		}
	}
	return b.inOrder(e, ps, ids)
}

// inOrder applies an event whose place in canonical order is after every
// event of the profiles it touches.
//
// Identifiers are taken strongest first. The profiles owning them join one
// by one unless a limit forbids it; identifiers nobody owns yet go with the
// group, within the limits. A strong identifier nobody owns yet counts from
// the start, so a second user_id on a shared device makes the device's
// profile refuse to join rather than hijacking the event.
func (b *batch) inOrder(e *portrait.Event, ps parsed, ids []portrait.Identifier) error {
	rules := b.p.Rules
	var target *portrait.Profile
	var pending []portrait.Identifier // unowned ids stronger than any owned one so far
	var strays []portrait.Identifier  // unowned ids a limit kept off
	type refusal struct {
		from   string
		via    portrait.Identifier
		reason string
	}
	var refusals []refusal
	fits := func(pr *portrait.Profile, add []portrait.Identifier) string {
		for i, id := range add {
			l := rules.Limit(id.Type)
			if l <= 0 {
				continue
			}
			n := 0
			if pr != nil {
				n = countType(pr, id.Type)
			}
			for _, a := range add[:i+1] {
				if a.Type == id.Type {
					n++
				}
			}
			if n > l {
				return fmt.Sprintf("would give one profile %d %s values (limit %d)", n, id.Type, l)
			}
		}
		return b.splitConflict(pr, add)
	}
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return err
		}
		if target != nil && pid == target.ID {
			continue
		}
		if pid == "" {
			switch {
			case target == nil:
				pending = append(pending, id)
			case fits(target, []portrait.Identifier{id}) == "":
				if err := b.attach(target, id, e); err != nil {
					return err
				}
			default:
				strays = append(strays, id)
			}
			continue
		}
		q, err := b.profile(pid)
		if err != nil {
			return err
		}
		if target == nil {
			if reason := fits(q, pending); reason != "" {
				refusals = append(refusals, refusal{q.ID, id, "merging " + reason})
				continue
			}
			target = q
			for _, pd := range pending {
				if err := b.attach(target, pd, e); err != nil {
					return err
				}
			}
			pending = nil
			continue
		}
		if reason := mergeRefusal(rules, target, q); reason != "" {
			refusals = append(refusals, refusal{q.ID, id, reason})
			continue
		}
		if reason, err := b.keptApart(e, id, target, q); err != nil || reason != "" {
			if err != nil {
				return err
			}
			refusals = append(refusals, refusal{q.ID, id, reason})
			continue
		}
		if target, err = b.merge(target, q, id, e); err != nil {
			return err
		}
	}
	if target == nil {
		target = b.newProfile(e)
		for _, id := range pending {
			if fits(target, []portrait.Identifier{id}) != "" {
				strays = append(strays, id)
				continue
			}
			if err := b.attach(target, id, e); err != nil {
				return err
			}
		}
	}
	for _, r := range refusals {
		if err := b.journal(&portrait.MergeEntry{Kind: portrait.MergeRefused, Into: target.ID, From: r.from, Identifier: r.via, MessageID: e.MessageID, EventSeq: e.Seq, Reason: r.reason}); err != nil {
			return err
		}
	}
	for _, id := range strays {
		reason := b.splitConflict(target, []portrait.Identifier{id})
		if reason == "" {
			reason = fmt.Sprintf("profile already holds %d %s (limit %d)", countType(target, id.Type), id.Type, rules.Limit(id.Type))
		}
		if err := b.journal(&portrait.MergeEntry{Kind: portrait.MergeRefused, Into: target.ID, Identifier: id, MessageID: e.MessageID, EventSeq: e.Seq, Reason: reason}); err != nil {
			return err
		}
	}
	// Identifiers this event carries that stay elsewhere (or nowhere) tie
	// this profile's history to them for any later re-ordering.
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return err
		}
		if pid != target.ID {
			if err := b.p.graph.refuse(b.tx, id, target.ID); err != nil {
				return err
			}
		}
	}

	b.applyEvent(target, e, ps)
	c := b.touch(target)
	if !e.System() && len(b.p.Enrichers) > 0 {
		// The enrichers see the event at the end of the batch, where
		// profiles are enriched in parallel (see finish).
		c.q = append(c.q, enrichEvent{e, ps.props, ps.propsAt})
	}
	if b.p.OnChange != nil {
		if b.applied == nil {
			b.applied = map[string][]*portrait.Event{}
		}
		b.applied[target.ID] = append(b.applied[target.ID], e)
	}
	return b.tx.AddProfileEvent(target.ID, e)
}

func (b *batch) markStale(ids ...string) {
	if b.stale == nil {
		b.stale = map[string]bool{}
	}
	for _, id := range ids {
		b.stale[id] = true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ProfileID derives a profile's id from the message id of its first event,
// so that the same history always yields the same id.
func ProfileID(messageID string) string {
	h := sha256.Sum256([]byte(messageID))
	return "p_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:10]))
}

func (b *batch) newProfile(e *portrait.Event) *portrait.Profile {
	pr := &portrait.Profile{
		ID: ProfileID(e.MessageID), Traits: map[string]portrait.Trait{},
		EventCounts: map[string]int{}, FirstKey: e.Key(), LastKey: e.Key(), IdentityKey: e.Key(),
	}
	b.touch(pr)
	b.p.graph.unalias(b.tx, pr.ID) // buffered; an error surfaces at the next write
	return pr
}

func (b *batch) attach(pr *portrait.Profile, id portrait.Identifier, e *portrait.Event) error {
	if k := e.Key(); pr.IdentityKey.Less(k) {
		pr.IdentityKey = k
	}
	pr.Identifiers = append(pr.Identifiers, id)
	sort.Slice(pr.Identifiers, func(i, j int) bool { return b.p.Rules.Less(pr.Identifiers[i], pr.Identifiers[j]) })
	b.touch(pr)
	return b.p.graph.attach(b.tx, id, pr.ID, e.Key())
}

func countType(pr *portrait.Profile, typ string) int {
	n := 0
	for _, id := range pr.Identifiers {
		if id.Type == typ {
			n++
		}
	}
	return n
}

// mergeRefusal says why a and c may not become one profile ("" if they may).
func mergeRefusal(rules *identity.Rules, a, c *portrait.Profile) string {
	counts := map[string]int{}
	for _, pr := range []*portrait.Profile{a, c} {
		for _, id := range pr.Identifiers {
			counts[id.Type]++
		}
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if l := rules.Limit(t); l > 0 && counts[t] > l {
			return fmt.Sprintf("merging would give one profile %d %s values (limit %d)", counts[t], t, l)
		}
	}
	return ""
}

// merge joins two profiles; the one that began earlier survives, so ids are
// stable whichever way round the merge happens.
func (b *batch) merge(a, c *portrait.Profile, via portrait.Identifier, e *portrait.Event) (*portrait.Profile, error) {
	keep, gone := a, c
	if c.FirstKey.Less(a.FirstKey) {
		keep, gone = c, a
	}
	for name, t := range gone.Traits {
		if cur, ok := keep.Traits[name]; !ok || Wins(t, cur) {
			keep.Traits[name] = t
		}
	}
	keep.Identifiers = append(keep.Identifiers, gone.Identifiers...)
	sort.Slice(keep.Identifiers, func(i, j int) bool { return b.p.Rules.Less(keep.Identifiers[i], keep.Identifiers[j]) })
	keep.MergedFrom = append(append(keep.MergedFrom, gone.ID), gone.MergedFrom...)
	sort.Strings(keep.MergedFrom)
	keep.EventCount += gone.EventCount
	for k, v := range gone.EventCounts {
		keep.EventCounts[k] += v
	}
	for k, v := range gone.TrackCounts {
		if keep.TrackCounts == nil {
			keep.TrackCounts = map[string]int{}
		}
		keep.TrackCounts[k] += v
	}
	if !gone.FirstSeen.IsZero() && (keep.FirstSeen.IsZero() || gone.FirstSeen.Before(keep.FirstSeen)) {
		keep.FirstSeen = gone.FirstSeen
	}
	if gone.LastSeen.After(keep.LastSeen) {
		keep.LastSeen = gone.LastSeen
	}
	if keep.LastKey.Less(gone.LastKey) {
		keep.LastKey = gone.LastKey
	}
	if k := e.Key(); keep.IdentityKey.Less(k) {
		keep.IdentityKey = k
	}
	if keep.MergeKey.Less(gone.MergeKey) {
		keep.MergeKey = gone.MergeKey
	}
	if k := e.Key(); keep.MergeKey.Less(k) {
		keep.MergeKey = k
	}
	for _, en := range b.p.Enrichers {
		en.Merge(keep, gone)
	}
	// gone's events of this batch that the enrichers have not seen yet go
	// with it: their accumulators combine in any order.
	if g := b.dirty[gone.ID]; g != nil && len(g.q) > 0 {
		k := b.touch(keep)
		k.q = append(k.q, g.q...)
		g.q = nil
	}
	b.markStale(keep.ID, gone.ID)
	if err := b.p.graph.reassign(b.tx, gone.ID, keep.ID, gone.Identifiers); err != nil {
		return nil, err
	}
	if err := b.tx.MoveProfileEvents(gone.ID, keep.ID); err != nil {
		return nil, err
	}
	if err := b.deleteProfile(gone.ID); err != nil {
		return nil, err
	}
	if err := b.p.graph.alias(b.tx, gone.ID, keep.ID); err != nil {
		return nil, err
	}
	b.touch(keep)
	m := &portrait.MergeEntry{Kind: portrait.MergeMerged, Into: keep.ID, From: gone.ID, Identifier: via, MessageID: e.MessageID, EventSeq: e.Seq}
	if b.replay != "" {
		m.Reason = "made in the " + b.replay
	}
	return keep, b.journal(m)
}

func (b *batch) deleteProfile(id string) error {
	if b.deleted == nil {
		b.deleted = map[string]bool{}
	}
	b.deleted[id] = true
	delete(b.dirty, id) // and its queue: a replay that re-creates it applies its events again
	delete(b.p.profiles, id)
	return b.tx.DeleteProfile(id)
}

// Wins reports whether candidate c replaces the current value cur of a
// trait. Observed values always beat imputed ones. Ordinary values: the latest event wins (ties: higher source
// priority, then greater messageId). "First value wins" values lose to any
// ordinary value and otherwise the earliest wins. The rule is commutative,
// which is what makes profiles independent of arrival order.
func Wins(c, cur portrait.Trait) bool {
	if (c.Imputed == "") != (cur.Imputed == "") {
		return c.Imputed == "" // what was observed beats what was assumed
	}
	if c.Once != cur.Once {
		return !c.Once
	}
	if !c.Time.Equal(cur.Time) {
		if c.Once {
			return c.Time.Before(cur.Time)
		}
		return c.Time.After(cur.Time)
	}
	if c.Priority != cur.Priority {
		return c.Priority > cur.Priority
	}
	if c.Once {
		return c.MessageID < cur.MessageID
	}
	return c.MessageID > cur.MessageID
}

func (b *batch) applyEvent(pr *portrait.Profile, e *portrait.Event, ps parsed) {
	if pr.EventCounts == nil {
		pr.EventCounts = map[string]int{}
	}
	// What Portrait writes back itself is not the customer's activity.
	if !e.System() {
		pr.EventCount++
		pr.EventCounts[e.Type]++
		if e.Type == portrait.EventTrack {
			if pr.TrackCounts == nil {
				pr.TrackCounts = map[string]int{}
			}
			pr.TrackCounts[e.Name]++
		}
		if pr.FirstSeen.IsZero() || e.Timestamp.Before(pr.FirstSeen) {
			pr.FirstSeen = e.Timestamp
		}
		if e.Timestamp.After(pr.LastSeen) {
			pr.LastSeen = e.Timestamp
		}
	}
	k := e.Key()
	if k.Less(pr.FirstKey) {
		pr.FirstKey = k
	}
	if pr.LastKey.Less(k) {
		pr.LastKey = k
	}
	if pr.Traits == nil {
		pr.Traits = map[string]portrait.Trait{}
	}
	prio := b.p.SourcePriority(e.Source)
	set := func(name string, v any, once bool) {
		if name == "" {
			return
		}
		if b.p.Standardize != nil {
			sv, err := b.p.Standardize(name, v)
			if err != nil {
				b.issues = append(b.issues, &portrait.TraitIssue{MessageID: e.MessageID, Trait: name, Source: e.Source, ProfileID: pr.ID,
					Value: truncate(fmt.Sprint(v), 200), Reason: portrait.ErrorMessage(err), Time: e.Timestamp})
				return
			}
			v = sv
		} else {
			v = b.standardize(name, v)
		}
		c := portrait.Trait{Value: v, Source: e.Source, Time: e.Timestamp, MessageID: e.MessageID, Priority: prio, Once: once || b.p.OnceTraits[name], Imputed: ps.imputed[name]}
		if cur, ok := pr.Traits[name]; !ok || Wins(c, cur) {
			pr.Traits[name] = c
		}
	}
	for name, raw := range ps.bad {
		b.issues = append(b.issues, &portrait.TraitIssue{MessageID: e.MessageID, Trait: name, Source: e.Source, ProfileID: pr.ID,
			Value: truncate(raw, 200), Reason: "the value cannot be read (a number out of range?)", Time: e.Timestamp})
	}
	for name, v := range ps.once {
		set(name, v, true)
	}
	for name, v := range ps.traits {
		set(name, v, false)
	}
}

// standardize stores identifier traits (email, phone, ...) in the same
// standard form as the identity graph holds them.
func (b *batch) standardize(name string, v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	for _, t := range b.p.Rules.TraitIdentifiers {
		if t == name {
			var n string
			var valid bool
			if b.p.Rules.Normalize != nil {
				n, valid = b.p.Rules.Normalize(name, s)
			} else {
				n, valid = identity.DefaultNormalize(name, s)
			}
			if valid {
				return n
			}
			return s
		}
	}
	return v
}

// rebuild replays, in canonical order, the histories of every profile the
// late event e is tied to (through identifiers, transitively), with e in
// its place.
// replayLate puts the batch's late events in their places: the profiles
// they touch (as the batch left them) are replayed once, with them.
func (b *batch) replayLate() error {
	if len(b.late) == 0 {
		return nil
	}
	late := b.late
	b.late = nil
	involved := map[string]bool{}
	pres := make(map[*portrait.Event]prepared, len(late))
	for _, e := range late {
		pre := b.p.prepare(e)
		pres[e] = pre
		if err := b.involve(pre.ids, involved); err != nil {
			return err
		}
	}
	b.replay = fmt.Sprintf("replay for %d late event(s) from %s on", len(late), late[0].Timestamp.UTC().Format(time.RFC3339))
	return b.rebuild(late, pres, involved)
}

func (b *batch) rebuild(extra []*portrait.Event, extraPre map[*portrait.Event]prepared, involved map[string]bool) error {
	// The closure: profiles whose events share identifiers with these.
	queue := make([]string, 0, len(involved))
	for pid := range involved {
		queue = append(queue, pid)
	}
	sort.Strings(queue)
	closure := map[string]*portrait.Profile{}
	// The closure's events are read and decoded once: the same decoding
	// finds the identifiers that extend the closure and then replays.
	var events []*portrait.Event
	pres := make(map[*portrait.Event]prepared, len(extraPre))
	for e, pre := range extraPre {
		pres[e] = pre
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, ok := closure[pid]; ok {
			continue
		}
		pr, err := b.profile(pid)
		if err != nil {
			return err
		}
		closure[pid] = pr
		s, err := b.tx.ProfileEventSeqs(pid)
		if err != nil {
			return err
		}
		evs, err := b.p.Store.EventsBySeq(b.ctx, s)
		if err != nil {
			return err
		}
		pre := make([]prepared, len(evs))
		parallel.For(len(evs), func(i int) { pre[i] = b.p.prepare(evs[i]) })
		events = append(events, evs...)
		for i, ev := range evs {
			pres[ev] = pre[i]
			for _, id := range pre[i].ids {
				owner, err := b.identity(id)
				if err != nil {
					return err
				}
				if owner != "" {
					if _, ok := closure[owner]; !ok {
						queue = append(queue, owner)
					}
				}
				for rp := range b.p.graph.refusedBy(id) {
					if _, ok := closure[rp]; !ok {
						queue = append(queue, rp)
					}
				}
			}
		}
	}
	events = append(events, extra...)
	kept := events[:0]
	for _, ev := range events {
		if !b.p.retracted[ev.MessageID] {
			kept = append(kept, ev)
		}
	}
	events = kept
	sort.Slice(events, func(i, j int) bool { return events[i].Key().Less(events[j].Key()) })

	// Forget the closure's derived state...
	firstMsg := map[string]string{}
	for pid, pr := range closure {
		firstMsg[pid] = pr.FirstKey.MessageID
		if err := b.p.graph.forget(b.tx, pid, pr.Identifiers); err != nil {
			return err
		}
		if err := b.tx.DeleteProfileEvents(pid); err != nil {
			return err
		}
		if err := b.deleteProfile(pid); err != nil {
			return err
		}
	}
	// ...and derive it again, in order.
	if b.replay == "" {
		b.replay = fmt.Sprintf("replay of %d profile(s)", len(closure))
	}
	defer func() { b.replay = "" }()
	landed := map[string]string{}
	for _, ev := range events {
		pre, ok := pres[ev]
		if !ok {
			pre = b.p.prepare(ev)
		}
		if err := b.inOrder(ev, pre.ps, pre.ids); err != nil {
			return err
		}
		pid, err := b.landing(ev, pre.ids)
		if err != nil {
			return err
		}
		landed[ev.MessageID] = pid
	}
	for pid := range closure {
		b.markStale(pid)
	}
	for _, pid := range landed {
		b.markStale(pid)
	}
	// Old ids keep answering: each points at where its first event is now.
	for old, msg := range firstMsg {
		now, err := b.current(landed[msg])
		if err != nil {
			return err
		}
		if now != "" && now != old {
			if err := b.p.graph.alias(b.tx, old, now); err != nil {
				return err
			}
		}
	}
	if len(extra) == 0 {
		return nil
	}
	e := extra[0]
	into, err := b.current(landed[e.MessageID])
	if err != nil {
		return err
	}
	return b.journal(&portrait.MergeEntry{Kind: portrait.MergeRebuilt, Into: into, MessageID: e.MessageID, EventSeq: e.Seq,
		Reason: fmt.Sprintf("%d late event(s) from %s on re-ordered the history of %d profile(s), %d events", len(extra), e.Timestamp.Format(time.RFC3339), len(closure), len(events))})
}

// retract undoes an earlier event: it is marked retracted (so it is skipped
// wherever it turns up, even if it has not arrived yet), and the profiles its
// identifiers touch are replayed without it.
func (b *batch) retract(e *portrait.Event) error {
	var props struct {
		MessageID string `json:"message_id"`
		By        string `json:"by"` // who decided the undo, when a person did
	}
	json.Unmarshal(e.Properties, &props)
	target := props.MessageID
	if target == "" || b.p.retracted[target] {
		return nil
	}
	b.p.retracted[target] = true
	if err := b.tx.PutRetracted(target); err != nil {
		return err
	}
	x, err := b.p.Store.EventByMessageID(b.ctx, target)
	if err != nil || x == nil {
		return err
	}
	if x.Type == portrait.EventSplit {
		return b.unsplit(e, x, props.By)
	}
	pre := b.p.prepare(x)
	involved := map[string]bool{}
	if err := b.involve(pre.ids, involved); err != nil {
		return err
	}
	if len(involved) == 0 {
		return nil
	}
	b.replay = "replay without event " + target
	if err := b.rebuild(nil, nil, involved); err != nil {
		return err
	}
	into := ""
	for _, id := range pre.ids {
		if into, err = b.identity(id); err != nil || into != "" {
			break
		}
	}
	return b.journal(&portrait.MergeEntry{Kind: portrait.MergeRetracted, Into: into, MessageID: target, EventSeq: x.Seq,
		Reason: fmt.Sprintf("event %s undone by %s (%s%s); %d profile(s) replayed without it", target, e.MessageID, e.Source, decidedBy(props.By), len(involved))})
}

func decidedBy(by string) string {
	if by == "" {
		return ""
	}
	return ", decided by " + by
}

// involve adds to into the profiles that own ids or are tied to them
// (refused), the ones whose histories an event with ids belongs to.
func (b *batch) involve(ids []portrait.Identifier, into map[string]bool) error {
	for _, id := range ids {
		pid, err := b.identity(id)
		if err != nil {
			return err
		}
		if pid != "" {
			into[pid] = true
		}
		for rp := range b.p.graph.refusedBy(id) {
			into[rp] = true
		}
	}
	return nil
}

// landing finds the profile an event was just applied to.
func (b *batch) landing(e *portrait.Event, ids []portrait.Identifier) (string, error) {
	pid := ProfileID(e.MessageID)
	if _, ok := b.dirty[pid]; ok {
		return pid, nil
	}
	for _, id := range ids {
		owner, err := b.identity(id)
		if err != nil || owner != "" {
			return owner, err
		}
	}
	return "", nil
}

// current follows the merges of this batch: a profile merged away since
// maps to its survivor.
func (b *batch) current(pid string) (string, error) {
	for range 64 {
		if pid == "" {
			return "", nil
		}
		if _, ok := b.dirty[pid]; ok {
			return pid, nil
		}
		found := ""
		for id, c := range b.dirty {
			for _, m := range c.pr.MergedFrom {
				if m == pid {
					found = id
				}
			}
		}
		if found == "" {
			return pid, nil
		}
		pid = found
	}
	return pid, nil
}

// Refresh re-evaluates every profile as of now (Enricher.Finish) and writes
// those that changed: what depends on time alone — a sliding window that
// expires, a customer who becomes "at risk" by not buying — changes without
// any event. It runs between batches, never beside one.
func (p *Processor) Refresh(ctx context.Context) (changed int, err error) {
	if len(p.Enrichers) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return 0, err
	}
	after := ""
	for {
		ids, err := p.Store.ProfileIDs(ctx, after, 2000)
		if err != nil {
			return changed, err
		}
		if len(ids) == 0 {
			if err := p.Store.WaitState(ctx); err != nil {
				p.resetCaches()
				return changed, err
			}
			return changed, nil
		}
		after = ids[len(ids)-1]
		n, err := p.refresh(ctx, ids, false)
		if err != nil {
			p.resetCaches()
			return changed, err
		}
		changed += n
	}
}

// RefreshProfiles is Refresh for the given profiles only (an id merged
// away or erased since it was listed is skipped). It takes the processor
// between batches for each chunk of ids, not for all of them, so that a
// long list does not hold up live processing.
func (p *Processor) RefreshProfiles(ctx context.Context, ids []string) (changed int, err error) {
	if len(p.Enrichers) == 0 {
		return 0, nil
	}
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		n, err := p.refreshChunk(ctx, ids[i:min(i+chunk, len(ids))])
		changed += n
		if err != nil {
			return changed, err
		}
	}
	return changed, p.Store.WaitState(ctx)
}

func (p *Processor) refreshChunk(ctx context.Context, ids []string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return 0, err
	}
	n, err := p.refresh(ctx, ids, true)
	if err != nil {
		p.resetCaches()
	}
	return n, err
}

// refresh re-evaluates ids; skipGone skips ids without a profile instead
// of failing.
func (p *Processor) refresh(ctx context.Context, ids []string, skipGone bool) (int, error) {
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		return 0, err
	}
	b := &batch{p: p, ctx: ctx, tx: tx, dirty: map[string]*touched{}, now: p.Now()}
	var changed []*portrait.Profile
	for _, id := range ids {
		if _, cached := p.profiles[id]; skipGone && !cached {
			pr, err := tx.Profile(id)
			if err != nil {
				tx.Rollback()
				return 0, err
			}
			if pr == nil {
				continue
			}
			p.profiles[id] = pr
		}
		pr, err := b.profile(id)
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		before, _ := json.Marshal(struct {
			T map[string]portrait.Trait
			G []portrait.ProfileTag
			S map[string]json.RawMessage
		}{pr.Traits, pr.Tags, pr.State})
		for _, en := range p.Enrichers {
			en.Finish(pr, b.now)
		}
		after, _ := json.Marshal(struct {
			T map[string]portrait.Trait
			G []portrait.ProfileTag
			S map[string]json.RawMessage
		}{pr.Traits, pr.Tags, pr.State})
		if string(before) != string(after) {
			pr.UpdatedAt = b.now
			changed = append(changed, pr)
		}
	}
	if err := tx.PutProfiles(changed); err != nil {
		tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if p.OnChange != nil && len(changed) > 0 {
		p.OnChange(changed, nil, nil)
	}
	return len(changed), nil
}

// Reapply derives something new over the past: fn sees every profile with
// its whole history (events in canonical order, retracted ones left out),
// then the profile is finished by the enrichers and written. It works in
// chunks between batches, so processing goes on meanwhile; progress, when
// set, is told how many profiles are done.
func (p *Processor) Reapply(ctx context.Context, fn func(pr *portrait.Profile, events []*portrait.Event), progress func(done int)) error {
	after, done := "", 0
	for {
		ids, err := p.Store.ProfileIDs(ctx, after, 500)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return p.Sync(ctx)
		}
		after = ids[len(ids)-1]
		if err := p.reapply(ctx, ids, fn); err != nil {
			return err
		}
		done += len(ids)
		if progress != nil {
			progress(done)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (p *Processor) reapply(ctx context.Context, ids []string, fn func(*portrait.Profile, []*portrait.Event)) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return err
	}
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			p.resetCaches()
		}
	}()
	b := &batch{p: p, ctx: ctx, tx: tx, dirty: map[string]*touched{}, now: p.Now()}
	var changed []*portrait.Profile
	for _, id := range ids {
		pr, err := b.profile(id)
		if err != nil {
			return err
		}
		seqs, err := tx.ProfileEventSeqs(id)
		if err != nil {
			return err
		}
		evs, err := p.Store.EventsBySeq(ctx, seqs)
		if err != nil {
			return err
		}
		kept := evs[:0]
		for _, e := range evs {
			if !p.retracted[e.MessageID] {
				kept = append(kept, e)
			}
		}
		sort.Slice(kept, func(i, j int) bool { return kept[i].Key().Less(kept[j].Key()) })
		fn(pr, kept)
		for _, en := range p.Enrichers {
			en.Finish(pr, b.now)
		}
		pr.UpdatedAt = b.now
		changed = append(changed, pr)
	}
	if err := tx.PutProfiles(changed); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if p.OnChange != nil {
		p.OnChange(changed, nil, nil)
	}
	return nil
}
