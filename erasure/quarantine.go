package erasure

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
)

// QuarantineStore is what the quarantine cap and retention need.
type QuarantineStore interface {
	QuarantineBytes(ctx context.Context) (map[string]int64, error)
	PurgeQuarantine(ctx context.Context, before time.Time) (int64, error)
}

// QuarantineCap wraps the event log: each rejected body is kept up to
// MaxRecordBytes (the rest cut, and the reason says so), and each source
// may fill the quarantine up to MaxBytesPerSource; beyond it records are
// dropped and counted. A client sending a flood of oversize garbage can
// then neither fill the disk nor push other sources' records out.
type QuarantineCap struct {
	portrait.EventLog
	Store             QuarantineStore
	MaxBytesPerSource int64
	MaxRecordBytes    int

	mu      sync.Mutex
	used    map[string]int64
	dropped atomic.Int64
}

// Load reads how much each source holds.
func (q *QuarantineCap) Load(ctx context.Context) error {
	m, err := q.Store.QuarantineBytes(ctx)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.used = m
	q.mu.Unlock()
	return nil
}

// Dropped is how many records were dropped over the cap since start.
func (q *QuarantineCap) Dropped() int64 { return q.dropped.Load() }

// Append applies the cap to rejected, then appends.
func (q *QuarantineCap) Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error) {
	if len(rejected) == 0 {
		return q.EventLog.Append(ctx, events, rejected)
	}
	kept := make([]*portrait.Rejected, 0, len(rejected))
	q.mu.Lock()
	if q.used == nil {
		q.used = map[string]int64{}
	}
	for _, r := range rejected {
		if q.MaxRecordBytes > 0 && len(r.Raw) > q.MaxRecordBytes {
			c := *r
			c.Raw = r.Raw[:q.MaxRecordBytes]
			c.Reason = fmt.Sprintf("%s (body of %d bytes kept in its first %d)", r.Reason, len(r.Raw), q.MaxRecordBytes)
			r = &c
		}
		n := int64(len(r.Raw))
		if q.MaxBytesPerSource > 0 && q.used[r.Source]+n > q.MaxBytesPerSource {
			q.dropped.Add(1)
			continue
		}
		q.used[r.Source] += n
		kept = append(kept, r)
	}
	q.mu.Unlock()
	return q.EventLog.Append(ctx, events, kept)
}

// Retention deletes, on schedule, what is older than its configured age.
// This one sweeps the quarantine; EventRetention expires events.
type Retention struct {
	Store         QuarantineStore
	Cap           *QuarantineCap // reloaded after a purge (optional)
	QuarantineAge time.Duration  // 0: kept
	Every         time.Duration
	Audit         portrait.Auditor // nil: purges are not recorded
	Runs          portrait.RetentionLog
	Now           portrait.Clock
	Log           *slog.Logger
	// Fence, when set, is asked right before each scheduled sweep (Run):
	// over a shared store, whether this node still holds the jobs lease.
	// Refused, the sweep waits for the next tick.
	Fence func(ctx context.Context) error
}

// Sweep deletes what is due now and returns how many records went.
func (r *Retention) Sweep(ctx context.Context) (int64, error) {
	if r.QuarantineAge <= 0 {
		return 0, nil
	}
	n, err := r.Store.PurgeQuarantine(ctx, r.Now().Add(-r.QuarantineAge))
	if err != nil {
		return 0, err
	}
	if n > 0 && r.Cap != nil {
		err = r.Cap.Load(ctx)
	}
	if n > 0 && err == nil && r.Audit != nil && r.Runs != nil {
		// The store recorded the purge (counts and time range) with it.
		runs, rerr := r.Runs.RetentionRuns(ctx, 10)
		if rerr != nil {
			return n, rerr
		}
		for _, run := range runs {
			if run.Kind == "quarantine" {
				err = auditRun(ctx, r.Audit, &run)
				break
			}
		}
	}
	return n, err
}

// Run sweeps every Every until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	if r.QuarantineAge <= 0 || r.Every <= 0 {
		return
	}
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		var n int64
		var err error
		if r.Fence != nil {
			err = r.Fence(ctx)
		}
		if err == nil {
			n, err = r.Sweep(ctx)
		}
		if err != nil && ctx.Err() == nil {
			r.Log.Error("retention sweep failed", "err", err)
		} else if n > 0 {
			r.Log.Info("retention: quarantined records deleted", "records", n, "older_than", r.QuarantineAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
