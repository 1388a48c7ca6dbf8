package profile

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Erasure asks a store to remove one profile and everything derived from it.
type Erasure struct {
	ID        string // the receipt's id
	ProfileID string // any id of the profile (merged-away ids resolve)
	By        string
	Reason    string
	At        time.Time
	// IdentifiersOf extracts an event's identifiers as the processor does,
	// so that the store suppresses every identifier the person's events
	// carried, in the form later events will carry it.
	IdentifiersOf func(*portrait.Event) []portrait.Identifier
}

// EraseStore removes a profile from the log and the derived state: its
// events become tombstones that every reader of the log skips, so a rebuild
// derives exactly what the live state holds afterwards.
type EraseStore interface {
	EraseProfile(ctx context.Context, e Erasure) (*portrait.ErasureReceipt, error)
}

// Identifiers returns the identifiers the processor would extract from e.
func (p *Processor) Identifiers(e *portrait.Event) []portrait.Identifier {
	return p.prepareIDs(e).ids
}

// Erase removes a profile through st while no batch runs: the processor's
// commits are drained first, its caches are dropped afterwards (they hold
// the erased identities), and OnChange hears that the profile and the ids
// merged into it are gone, so indexes and segments let go of them.
func (p *Processor) Erase(ctx context.Context, st EraseStore, e Erasure) (*portrait.ErasureReceipt, error) {
	if e.IdentifiersOf == nil {
		e.IdentifiersOf = p.Identifiers
	}
	if e.At.IsZero() {
		e.At = p.Now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false
		return nil, err
	}
	p.committed.Store(p.applied.Load())
	rc, err := st.EraseProfile(ctx, e)
	// Whatever happened, the caches may now disagree with storage.
	p.loaded = false
	if err != nil {
		return nil, err
	}
	if p.OnChange != nil {
		deleted := append([]string{rc.ProfileID}, rc.MergedIDs...)
		p.OnChange(nil, deleted, nil)
	}
	return rc, nil
}
