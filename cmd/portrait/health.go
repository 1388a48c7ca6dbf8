package main

import (
	"context"
	"fmt"

	"github.com/portrait-cdp/portrait"
)

// reportRecoveries says loudly what the store repaired when it opened:
// derived state moved aside is a rebuild the operator must know about,
// and a log that lost its tail means acknowledged events are gone.
func (a *App) reportRecoveries() {
	for _, r := range a.DB.Recoveries() {
		a.Log.Error("store recovered at start: "+r.Problem, "action", r.Action, "moved_to", r.MovedTo)
	}
}

// incapable lists what the server cannot do now: the store's failing or
// impossible writes, and a processor ahead of the log (which would leave
// new events unapplied while reporting no lag).
func (a *App) incapable(ctx context.Context) []portrait.Incapacity {
	out := a.DB.Incapacities()
	// The checkpoint first: read after the log's end, it could count
	// events appended and applied in between.
	cp, cpErr := a.checkpoint(ctx)
	if last, err := a.DB.LastSeq(ctx); err == nil && cpErr == nil {
		if cp > last {
			out = append(out, portrait.Incapacity{Cannot: "update profiles",
				Reason: fmt.Sprintf("the profiles were built from events up to %d, but the log ends at %d: restart to rebuild them from the log", cp, last)})
		}
	}
	return out
}
