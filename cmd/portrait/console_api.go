package main

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/search"
)

// wireConsoleAPI wires what the console's own endpoints read beyond the
// segment index: the search index and the overview's store, whose running
// totals read the log once now rather than on the first visit.
func (a *App) wireConsoleAPI(ctx context.Context) error {
	a.wireSearch()
	a.HTTP.Overview = a.DB
	start := time.Now()
	if _, err := a.DB.SourceActivity(ctx); err != nil {
		return err
	}
	a.Log.Info("overview totals read", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// wireSearch makes the customer search index and has it follow the
// processor's changes (chained after any hook already set). wireSegments
// fills it from the stored profiles in the same pass that builds the
// segment index (one read of every document, not two), before the
// processor starts, so no change falls between the two.
func (a *App) wireSearch() {
	ix := search.NewIndex(a.Rules.Normalize)
	prev := a.Proc.OnChange
	a.Proc.OnChange = func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) {
		if prev != nil {
			prev(changed, deleted, applied)
		}
		ix.OnChange(changed, deleted, applied)
	}
	a.HTTP.Search = ix
}
