package main

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/traits"
)

// wireSegments builds the segment index from the stored profiles, loads the
// definitions and webhooks, and follows the processor's changes (chained
// after any hook already set).
func (a *App) wireSegments(ctx context.Context) error {
	ix := segment.NewIndex()
	// NPS overall, by tag and by segment reads the answers kept here
	// rather than every profile document (http/nps.go).
	ix.SetKeep(traits.KeepSurveys)
	// The lifecycle over time (overview, analytics) is kept as the stage
	// histories change, exact after every commit the index follows.
	lifecycle := traits.NewStageCounts()
	ix.Follow("lifecycle_history", lifecycle)
	start := time.Now()
	sums, err := a.DB.AllSegmentBehaviour(ctx)
	if err != nil {
		return err
	}
	err = a.DB.AllProfiles(ctx, func(p *portrait.Profile) error {
		ix.Upsert(p, sums[p.ID])
		if a.HTTP.Search != nil {
			a.HTTP.Search.Upsert(p) // wireSearch: same pass, one read of each document
		}
		delete(sums, p.ID)
		return nil
	})
	if err != nil {
		return err
	}
	a.Log.Info("segment index built", "profiles", ix.Len(), "bytes", ix.Bytes(), "took", time.Since(start).Round(time.Millisecond))
	svc := segment.NewService(ix, notifyingSegments{a.DB, a})
	svc.Log, svc.Behaviour = a.Log, a.DB.SegmentBehaviour
	svc.Webhooks = segment.NewDispatcher(notifyingSegments{a.DB, a})
	svc.Webhooks.Log = a.Log
	// Every POST asks first whether this node still runs the jobs; over a
	// shared store every api node emits the same events, and only the
	// jobs owner's dispatcher takes them (runJobs).
	svc.Webhooks.Fence, svc.Webhooks.OnlyWhileRunning = a.fenceJobs, a.shared
	// The dispatcher sends the recorded history from its stored cursor
	// (an outbox): a change any node recorded reaches the webhooks once,
	// from the jobs owner, and a new owner resumes where the last stopped.
	if ob, ok := a.DB.(segment.Outbox); ok {
		svc.Webhooks.Outbox = ob
	}
	if e := a.Enrich; e != nil && e.Traits != nil && e.Tags != nil {
		// "did you mean" knows the schema's traits and the defined tags,
		// not only those profiles already hold.
		svc.KnownTraits = func() []string {
			var out []string
			for _, f := range e.Traits.Enricher.Schema.Fields() {
				out = append(out, f.Name)
			}
			return out
		}
		svc.KnownTags = func() []string {
			var out []string
			for _, d := range e.Tags.List() {
				out = append(out, d.Name)
			}
			return out
		}
	}
	if err := svc.Webhooks.Load(ctx); err != nil {
		return err
	}
	if err := svc.Load(ctx); err != nil {
		return err
	}
	prev := a.Proc.OnChange
	a.Proc.OnChange = func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event) {
		if prev != nil {
			prev(changed, deleted, applied)
		}
		svc.OnChange(changed, deleted, applied)
	}
	a.HTTP.Segments = svc
	a.HTTP.Lifecycle = lifecycle
	return a.wireDeliveries() // scheduled deliveries (deliveries.go)
}

// startSegments applies profile changes to segments and re-evaluates the
// time-based ones every minute. Webhooks and scheduled deliveries go out
// from one node only (runJobs).
func (a *App) startSegments(ctx context.Context) {
	svc := a.HTTP.Segments
	if svc == nil {
		return
	}
	a.goRun(func() { svc.Run(ctx, time.Minute) })
}
