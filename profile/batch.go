package profile

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

// One batch: the events of one state transaction, from decoding to
// commit, and the bookkeeping the batch keeps on the profiles it changes
// (which are dirty, merged away, or stale for listeners).

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

// touched is a profile the batch changed, with its events the enrichers
// have yet to see: one map entry for both, as each event touches both.
type touched struct {
	pr *portrait.Profile
	q  []enrichEvent
}

// apply applies events in one transaction: decoded on all cores, applied
// in canonical order, the late ones put in their places by one replay,
// the changed profiles finished by the enrichers and written; listeners
// hear of it after the commit.
func (p *Processor) apply(ctx context.Context, events []*portrait.Event) error {
	return p.applyTo(ctx, events, Term{}, CheckpointName)
}

// applyTo is apply in a transaction of term, recording the position under
// checkpoint. Under partitioned application the batch first locks what it
// can touch (lock, partition.go).
func (p *Processor) applyTo(ctx context.Context, events []*portrait.Event, term Term, checkpoint string) (err error) {
	tx, err := p.beginState(ctx, term)
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
	if p.Partitioned {
		if err := b.lock(pre); err != nil {
			return err
		}
		if p.Locked != nil {
			if err := p.Locked(ctx); err != nil {
				return err
			}
		}
	}
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
	if err := tx.SetCheckpoint(checkpoint, events[len(events)-1].Seq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if p.OnChange != nil {
		b.notify(dirty)
	}
	p.trimCaches(b.dirty)
	return nil
}

// notify tells OnChange what the committed batch changed.
func (b *batch) notify(dirty []*touched) {
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
	b.p.OnChange(prs, gone, applied)
}

// trimCaches bounds the profile and identity caches after a batch.
func (p *Processor) trimCaches(dirty map[string]*touched) {
	if p.Partitioned {
		p.resetCaches() // other nodes write between batches: nothing is kept
		return
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
			if _, ok := dirty[id]; !ok {
				delete(p.profiles, id)
			}
		}
	}
	// When the graph no longer fits, a miss means "ask storage" (which
	// waits for the commit in flight).
	p.graph.trim(p.MaxIdentities)
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

func (b *batch) markStale(ids ...string) {
	if b.stale == nil {
		b.stale = map[string]bool{}
	}
	for _, id := range ids {
		b.stale[id] = true
	}
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
