package profile

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
)

// The run loop: how often the processor takes a batch from the log, how
// large, and when what it applied counts as committed (the checkpoint).

// Run applies the log until ctx ends, sleeping when caught up.
func (p *Processor) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		var wake <-chan struct{}
		if p.Notify != nil {
			wake = p.Notify() // taken before reading, so no commit is missed
		}
		n, err := p.step(ctx)
		if err == nil && n < p.BatchSize {
			// Caught up (or nearly): what was applied becomes visible
			// before the pause.
			err = p.Sync(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.Log.Error("profile processor failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n >= p.BatchSize {
			continue // behind: no pause
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-time.After(time.Second):
			}
		}
		// Let events gather before the next batch: a commit rewrites every
		// profile it touches, so under load fewer, larger batches apply far
		// more events per second, at the cost of Linger in freshness. A
		// busy stream (the batch was an eighth full or more) waits
		// BusyLinger: the processor then takes less of the CPU that
		// acknowledging events needs, and still keeps up.
		linger := p.Linger
		if p.BusyLinger > linger && n >= p.BatchSize/8 {
			linger = p.BusyLinger
		}
		if linger > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(linger):
			}
		}
	}
}

// Step applies the next batch of the log and returns how many events it
// applied (0 when caught up). The batch is committed when it returns.
func (p *Processor) Step(ctx context.Context) (int, error) {
	n, err := p.step(ctx)
	if err != nil {
		return n, err
	}
	return n, p.Sync(ctx)
}

// Sync waits until everything applied so far is committed to storage.
func (p *Processor) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false // storage is behind what was applied: read it again
		return err
	}
	p.committed.Store(p.applied.Load())
	return nil
}

// step applies the next batch; its commit may still be running when it
// returns, while the next batch is computed.
func (p *Processor) step(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return 0, err
	}
	size := max(p.batch, p.BatchSize)
	events, err := p.Store.ReadLog(ctx, p.applied.Load(), size)
	if len(events) == size {
		p.batch = min(2*size, max(p.MaxBatchSize, p.BatchSize))
	} else {
		p.batch = p.BatchSize
	}
	if err != nil || len(events) == 0 {
		return 0, err
	}
	if err := p.apply(ctx, events); err != nil {
		p.forgetCaches() // the transaction rolled back; caches may be ahead of it
		return 0, err
	}
	last := events[len(events)-1]
	p.applied.Store(last.Seq)
	if p.OnBatch != nil {
		p.OnBatch(len(events), last.Seq, last.Timestamp)
	}
	return len(events), nil
}

// CatchUp applies the log until the processor has reached seq.
func (p *Processor) CatchUp(ctx context.Context, seq int64) error {
	for {
		// After a failed commit the position goes back to what storage
		// holds: load reads it again.
		p.mu.Lock()
		err := p.load(ctx)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if p.applied.Load() >= seq {
			return p.Sync(ctx)
		}
		n, err := p.step(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := p.Sync(ctx); err != nil {
				return err
			}
			if p.applied.Load() < seq {
				return portrait.Errorf(portrait.EINTERNAL, "log ends at %d, before %d", p.applied.Load(), seq)
			}
		}
	}
}
