package main

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/search"
)

// wireSearch builds the customer search index from the stored profiles and
// follows the processor's changes (chained after any hook already set). It
// runs before the processor starts, so no change falls between the two.
func (a *App) wireSearch(ctx context.Context) error {
	ix := search.NewIndex(a.Rules.Normalize)
	start := time.Now()
	err := a.DB.AllProfiles(ctx, func(p *portrait.Profile) error {
		ix.Upsert(p)
		return nil
	})
	if err != nil {
		return err
	}
	a.Log.Info("search index built", "profiles", ix.Len(), "took", time.Since(start).Round(time.Millisecond))
	prev := a.Proc.OnChange
	a.Proc.OnChange = func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) {
		if prev != nil {
			prev(changed, deleted, applied)
		}
		ix.OnChange(changed, deleted, applied)
	}
	a.HTTP.Search = ix
	return nil
}
