package main

import (
	"context"
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
	// boundaries change (traits.Service.RecomputeRFM). A partitioned
	// applier's processors are elsewhere: there is nothing here to wait on.
	if !a.partitioned() {
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
func (a *App) backlog() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return 0
	}
	return max(0, last-a.checkpoint(ctx))
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
