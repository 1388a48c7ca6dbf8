package erasure

import (
	"context"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait"
)

// EventRetention deletes, on schedule, the events older than Age (by event
// time). Expire is profile.Processor.Compact bound to the store: what the
// events made of profiles is carried forward in the log, so profiles keep
// it and a rebuild derives them again (docs/erasure.md, "Retention"). It
// must run where events are applied (the applier): it holds the
// processor's lock while it works.
type EventRetention struct {
	Age    time.Duration // 0: events are kept
	Every  time.Duration
	Expire func(ctx context.Context, before time.Time) (*portrait.RetentionRun, error)
	Audit  portrait.Auditor // nil: not recorded
	Now    portrait.Clock
	Log    *slog.Logger
}

// Sweep expires what is due now; a run that deleted nothing is not
// recorded anywhere.
func (r *EventRetention) Sweep(ctx context.Context) (*portrait.RetentionRun, error) {
	if r.Age <= 0 {
		return nil, nil
	}
	run, err := r.Expire(ctx, r.Now().Add(-r.Age))
	if err != nil || run == nil || run.Deleted == 0 {
		return run, err
	}
	return run, auditRun(ctx, r.Audit, run)
}

// Run sweeps every Every until ctx ends.
func (r *EventRetention) Run(ctx context.Context) {
	if r.Age <= 0 || r.Every <= 0 {
		return
	}
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		run, err := r.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Error("event retention failed", "err", err)
		} else if run != nil && run.Deleted > 0 {
			r.Log.Info("retention: expired events deleted", "events", run.Deleted, "profiles", run.Profiles, "carried", run.Carried,
				"oldest", run.Oldest, "newest", run.Newest, "older_than", r.Age)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// auditRun records a retention run that deleted something: counts and the
// time range, no value.
func auditRun(ctx context.Context, a portrait.Auditor, run *portrait.RetentionRun) error {
	if a == nil {
		return nil
	}
	d := map[string]any{"deleted": run.Deleted, "before": run.Before, "run": run.ID}
	if !run.Oldest.IsZero() {
		d["oldest"], d["newest"] = run.Oldest, run.Newest
	}
	if run.Kind == "events" {
		d["profiles"], d["carried"] = run.Profiles, run.Carried
	}
	return a.Record(ctx, portrait.AuditRecord{At: run.At, Actor: "system", Action: "retention." + run.Kind, Target: run.Kind, Detail: d})
}
