package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait"
)

// changeFeed is a shared store's record of which profiles changed, in
// commit order: the ids changed and deleted after position after, and the
// position to ask from next time.
type changeFeed interface {
	ProfileChanges(ctx context.Context, after int64, limit int) (changed, deleted []string, next int64, err error)
}

// follower keeps an api node's in-memory indexes (segments, search,
// consent, everything hooked on the processor's OnChange on a single node)
// current when another node applies events: it reads the store's change
// feed and hands the changed profiles, as the store now has them, to the
// same hooks. The applied events are not known here, so the hooks are told
// none (as for a merged profile on a single node: they read what they need).
type follower struct {
	Feed     changeFeed
	Profiles interface {
		Profile(ctx context.Context, id string) (*portrait.Profile, error)
	}
	OnChange func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event)
	// Notify, when set, wakes the follower early (the store's Appended);
	// otherwise, and in any case, it polls every Every.
	Notify func() <-chan struct{}
	Every  time.Duration
	Limit  int
	Log    *slog.Logger

	pos int64
}

func (f *follower) defaults() {
	if f.Every <= 0 {
		f.Every = 500 * time.Millisecond
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
}

// Skim moves to the feed's end without loading anything: called before
// the indexes are built from every stored profile, so that a change
// committed during the build is read again afterwards, never missed.
func (f *follower) Skim(ctx context.Context) error {
	f.defaults()
	for {
		changed, deleted, next, err := f.Feed.ProfileChanges(ctx, f.pos, f.Limit*10)
		if err != nil {
			return err
		}
		if len(changed)+len(deleted) == 0 || next <= f.pos {
			return nil
		}
		f.pos = next
	}
}

// Step hands the next page of changes to OnChange and returns how many ids
// it read (0: caught up).
func (f *follower) Step(ctx context.Context) (int, error) {
	f.defaults()
	changedIDs, deletedIDs, next, err := f.Feed.ProfileChanges(ctx, f.pos, f.Limit)
	if err != nil {
		return 0, err
	}
	n := len(changedIDs) + len(deletedIDs)
	if n == 0 {
		return 0, nil
	}
	// An id may be listed more than once, and as changed then deleted (or
	// the reverse) within one page: the store's present decides. A profile
	// merged away is found at the one it merged into (a different id): it
	// is gone, and the survivor changed.
	seen := make(map[string]bool, n)
	var changed []*portrait.Profile
	var deleted []string
	for _, id := range append(append([]string(nil), changedIDs...), deletedIDs...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		p, err := f.Profiles.Profile(ctx, id)
		switch {
		case err == nil:
			if p.ID != id {
				deleted = append(deleted, id)
				if seen[p.ID] {
					continue
				}
				seen[p.ID] = true
			}
			changed = append(changed, p)
		case portrait.ErrorCode(err) == portrait.ENOTFOUND:
			deleted = append(deleted, id)
		default:
			return 0, err
		}
	}
	if f.OnChange != nil && len(changed)+len(deleted) > 0 {
		f.OnChange(changed, deleted, nil)
	}
	if next > f.pos {
		f.pos = next
	}
	return n, nil
}

// Run follows the feed until ctx ends.
func (f *follower) Run(ctx context.Context) {
	f.defaults()
	backoff := f.Every
	for ctx.Err() == nil {
		var wake <-chan struct{}
		if f.Notify != nil {
			wake = f.Notify() // taken before reading, so no commit is missed
		}
		n, err := f.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.Log.Warn("change feed not read; retrying", "err", err, "backoff", backoff)
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = f.Every
		if n >= f.Limit {
			continue
		}
		t := time.NewTimer(f.Every)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
