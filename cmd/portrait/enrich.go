package main

import (
	"context"
	"math"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// Enrichment is the computed-trait and tag machinery of an App.
type Enrichment struct {
	Traits *traits.Service
	Tags   *tag.Service
}

// wireEnrichment builds the traits and tag enrichers, loads their stored
// definitions and hands them to the processor (traits first: tags read
// them) and to the HTTP server.
func (a *App) wireEnrichment(ctx context.Context) error {
	ten, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		return err
	}
	// The analyses' outputs are known before a run writes them: tags and
	// segments can name churn_probability on a store no churn run has
	// scored (the demo's churn_risk, when the model was no better than
	// chance and wrote nothing).
	ten.Schema.Declare(analysisOutputs()...)
	ts := traits.NewService(notifyingTraits{a.DB, a}, ten)
	// Rewrites of profiles go through the applier (nodes.go: guarded).
	refresh := func(ctx context.Context) (int, error) {
		if err := a.mayRewrite(); err != nil {
			return 0, err
		}
		return a.Proc.Refresh(ctx)
	}
	ts.Each, ts.Refresh, ts.Log = a.DB.AllProfiles, refresh, a.Log
	// A trait defined today covers the past.
	ts.Reapply = func(ctx context.Context, fn func(*portrait.Profile, []*portrait.Event), progress func(int)) error {
		if err := a.mayRewrite(); err != nil {
			return err
		}
		return a.Proc.Reapply(ctx, fn, progress)
	}
	// New RFM boundaries rewrite only the customers whose scores move, and
	// the early refresh waits for a burst to be processed.
	ts.Rescore = func(ctx context.Context, ids []string) (int, error) {
		if err := a.mayRewrite(); err != nil {
			var n int // the applier re-scores them (rewrites.go)
			err := a.forward(ctx, rewriteRescore, rescoreRequest{IDs: ids}, &n)
			return n, err
		}
		return a.Proc.RefreshProfiles(ctx, ids)
	}
	// New boundaries are computed while events are applied: the applier's
	// writes under way settle before the population is read and after the
	// boundaries change (traits.Service.RecomputeRFM). Under partitioned
	// application the writers are every node's partition processors.
	if a.partitioned() {
		if err := a.wirePartitionedRFM(ts); err != nil {
			return err
		}
	} else {
		ts.Settle = a.Proc.Sync
	}
	ts.Backlog = a.backlog
	if err := ts.Load(ctx); err != nil {
		return err
	}
	gen := tag.NewEnricher()
	gs := tag.NewService(notifyingTags{a.DB, a}, gen, ten.Schema)
	gs.Refresh, gs.Count, gs.Log = refresh, a.DB.CountProfiles, a.Log
	if err := gs.Load(ctx); err != nil {
		return err
	}
	ts.Changed = gs.Reactivate
	mapEns, err := a.mapEnrichers() // service path and needs (issue 14)
	if err != nil {
		return err
	}
	a.Proc.Enrichers = append(append(append(a.Proc.Enrichers, ten), mapEns...), gen)
	a.HTTP.Traits, a.HTTP.Tags = ts, gs
	a.Enrich = &Enrichment{Traits: ts, Tags: gs}
	return nil
}

// runEnrichment runs the tag backfills and the scheduled jobs until ctx
// ends: profiles re-evaluated hourly (windows expire, stages lapse), RFM
// boundaries daily. They rewrite profiles, so they run beside the applier.
func (a *App) runEnrichment(ctx context.Context) {
	if a.Enrich == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Enrich.Tags.Run(ctx)
	}()
	a.Enrich.Traits.Run(ctx, time.Hour, 24*time.Hour)
	<-done
}

// backlog is how many logged events the processor has not applied yet.
// When that cannot be read it is taken as large: the early RFM refresh
// waits (up to its limit) rather than scan a store too loaded to answer.
func (a *App) backlog() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return math.MaxInt64
	}
	cp, err := a.checkpoint(ctx)
	if err != nil {
		return math.MaxInt64
	}
	return max(0, last-cp)
}

// wirePartitionedRFM closes, under partitioned application, the window in
// which a customer written while new RFM boundaries are computed keeps
// scores from the boundaries they replace. The node recomputing them (the
// applier-lease holder) does not apply the partitions of other nodes, and
// those score against their own copy of the boundaries, so:
//   - Settle waits for every state transaction in flight in the store, on
//     any node (postgres.DB.WaitWriters), not for this node's processor;
//   - Written collects, from the store's change feed, every profile
//     written by any node between the population's read and the end of
//     the second settle, and those are re-scored too (the enricher's own
//     watch sees only this node's processors);
//   - every batch of every node, once it holds its locks, reads the
//     boundaries again if their version moved (Processor.Locked): a batch
//     that began before the new ones were saved is still in flight when
//     the second settle starts, and is waited for and re-scored; one
//     that began after scores against the new ones.
func (a *App) wirePartitionedRFM(ts *traits.Service) error {
	ww, ok := a.DB.(interface{ WaitWriters(context.Context) error })
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "--apply partitioned needs a store that can wait for its writers (PostgreSQL)")
	}
	feed, ok := a.DB.(changeFeed)
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "--apply partitioned needs a store with a change feed (PostgreSQL)")
	}
	ts.Settle = ww.WaitWriters
	ts.Written = func(ctx context.Context) (func(context.Context) ([]string, error), error) {
		_, _, from, err := feed.ProfileChanges(ctx, -1, 0)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) ([]string, error) {
			var ids []string
			for pos := from; ; {
				changed, _, next, err := feed.ProfileChanges(ctx, pos, 10_000)
				if err != nil {
					return nil, err
				}
				ids = append(ids, changed...)
				if next == pos {
					return ids, nil
				}
				pos = next
			}
		}, nil
	}
	a.Proc.Locked = func(ctx context.Context) error { return a.followBoundaries(ctx, ts) }
	return nil
}

// followBoundaries reads the computed-trait definitions and boundaries
// again when their version in the store moved since this node last did
// (see wirePartitionedRFM): one small query per batch.
func (a *App) followBoundaries(ctx context.Context, ts *traits.Service) error {
	if a.defs == nil {
		return nil
	}
	v, err := a.defs.Feed.ConfigVersions(ctx)
	if err != nil {
		return err
	}
	a.boundaries.mu.Lock()
	defer a.boundaries.mu.Unlock()
	if a.boundaries.seen && v[defTraits] == a.boundaries.version {
		return nil
	}
	if _, err := ts.Reload(ctx); err != nil {
		return err
	}
	a.boundaries.version, a.boundaries.seen = v[defTraits], true
	return nil
}

// analysisOutputs are the traits the analyses write (jobs.Outputs) as
// schema fields.
func analysisOutputs() []traits.Field {
	out := make([]traits.Field, len(jobs.Outputs))
	for i, o := range jobs.Outputs {
		out[i] = traits.Field{Name: o.Name, Type: o.Type, Description: o.Description + " (written by the " + o.Kind + " analysis)"}
	}
	return out
}
