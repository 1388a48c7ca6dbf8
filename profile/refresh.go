package profile

import (
	"context"
	"sort"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// Re-evaluation without new events: Refresh and RefreshProfiles run the
// enrichers' Finish as of now (time-dependent traits), Reapply derives
// something new over every profile's whole history. Each works in chunks
// between batches.

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
				p.forgetCaches()
				return changed, err
			}
			return changed, nil
		}
		after = ids[len(ids)-1]
		n, err := p.refresh(ctx, ids, false)
		if err != nil {
			p.forgetCaches()
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
		p.forgetCaches()
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
	if p.Partitioned {
		// Other nodes apply events meanwhile: the profiles are locked and
		// read as committed, and one merged away since it was listed is
		// skipped.
		if err := b.lockProfiles(ids); err != nil {
			tx.Rollback()
			return 0, err
		}
		skipGone = true
	}
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
			p.forgetCaches()
		}
	}()
	b := &batch{p: p, ctx: ctx, tx: tx, dirty: map[string]*touched{}, now: p.Now()}
	if p.Partitioned {
		if err := b.lockProfiles(ids); err != nil {
			return err
		}
	}
	var changed []*portrait.Profile
	for _, id := range ids {
		if _, ok := p.profiles[id]; p.Partitioned && !ok {
			continue // merged away since it was listed
		}
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
