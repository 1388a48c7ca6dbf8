package main

import (
	"context"
	"runtime"
	"strconv"
	"sync"

	"github.com/portrait-cdp/portrait"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/profile"
)

// Partitioned application (serve --apply partitioned, docs/scaling.md):
// every process node applies the partitions it consumes, in the consumer's
// handler (append, apply in one locked state transaction, acknowledge),
// instead of one node applying the whole log under the applier lease. The
// applier lease remains for what is not a partition: the events appended
// without the bus (system events, undo requests) and the profile rewrites
// (tag backfills, re-evaluation, forwarded erasures), which lock the
// profiles they rewrite.

const (
	applyLeased      = "leased"
	applyPartitioned = "partitioned"
)

// partitionedStore is what partitioned application needs of the store
// beyond profile.Partitioned: appending a partition's events with it, and
// how far every partition is applied.
type partitionedStore interface {
	profile.Partitioned
	profile.Fenced
	AppendPartition(ctx context.Context, p int, events []*portrait.Event) (portrait.AppendResult, error)
	AppliedThrough(ctx context.Context, partitions int) (int64, error)
}

// checkApply refuses an --apply this deployment cannot run.
func (a *App) checkApply() error {
	switch a.Config.Apply {
	case "", applyLeased:
		return nil
	case applyPartitioned:
	default:
		return portrait.Errorf(portrait.EINVALID, "--apply %q: use leased (one applier at a time) or partitioned", a.Config.Apply)
	}
	if _, ok := a.DB.(partitionedStore); !ok || !a.shared {
		return portrait.Errorf(portrait.EINVALID, "--apply partitioned needs a store that locks rows (--store postgres://…)")
	}
	if a.bus == nil {
		return portrait.Errorf(portrait.EINVALID, "--apply partitioned needs a bus (--bus nats://…): nodes apply the partitions they consume")
	}
	return nil
}

func (a *App) partitioned() bool { return a.Config.Apply == applyPartitioned }

// partitionTerms are the terms this node applies its partitions in, and
// the processors it applies them with.
type partitionTerms struct {
	mu sync.Mutex
	m  map[int]profile.Term
	// procs holds a processor per partition (Processor.Fork): one
	// processor for them all applied the node's partitions one at a time,
	// each batch waiting on PostgreSQL round trips while the others' sat
	// on the bus (issue 17: 1 node 3,640 events/s against 10,074 leased).
	// Each fork is to the others what another node's processor is: the
	// store's locks keep their batches apart.
	procs map[int]*profile.Processor
	// slots bounds how many batches the node applies at once.
	slots chan struct{}
}

// applyConcurrency is how many partitions a node applies at once: a
// batch mostly waits on the store, so more than the CPUs, and at least a
// few on a small machine whose store runs elsewhere.
func applyConcurrency(configured int) int {
	if configured > 0 {
		return configured
	}
	return max(4, 2*runtime.GOMAXPROCS(0))
}

// partitionProc returns partition part's processor, forked from the
// app's on first use (after the wiring has set its hooks and enrichers).
func (a *App) partitionProc(part int) *profile.Processor {
	a.terms.mu.Lock()
	defer a.terms.mu.Unlock()
	p := a.terms.procs[part]
	if p == nil {
		if a.terms.procs == nil {
			a.terms.procs = map[int]*profile.Processor{}
		}
		p = a.Proc.Fork()
		a.terms.procs[part] = p
	}
	return p
}

// applySlot waits for one of the node's slots to apply a batch in; done
// gives it back.
func (a *App) applySlot(ctx context.Context) (done func(), err error) {
	a.terms.mu.Lock()
	if a.terms.slots == nil {
		a.terms.slots = make(chan struct{}, applyConcurrency(a.Config.ApplyConcurrency))
	}
	slots := a.terms.slots
	a.terms.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// partitionTerm is partition p's term for a consumer holding it under
// lease revision rev: the fence names the lease bucket's incarnation and
// the partition (each partition is fenced on its own).
func (a *App) partitionTerm(ctx context.Context, part int, rev uint64) (profile.Term, error) {
	a.terms.mu.Lock()
	t, ok := a.terms.m[part]
	a.terms.mu.Unlock()
	if ok && t.N == rev {
		return t, nil
	}
	if rev == 0 {
		return profile.Term{}, portrait.Errorf(portrait.EINTERNAL, "partition %d consumed without a lease revision", part)
	}
	fence, err := a.bus.LeaseFence(ctx)
	if err != nil {
		return profile.Term{}, err
	}
	return profile.Term{Fence: fence + "/p." + strconv.Itoa(part), N: rev}, nil
}

// takePartition begins this node's term for partition p (the claim waits
// for a commit of the node before still in flight, and refuses its later
// ones), then applies what the partition's previous holder appended to the
// log and did not apply (it died between the two), before the consumer
// starts.
func (a *App) takePartition(ctx context.Context, part int) error {
	term, err := a.partitionTerm(ctx, part, natsbus.PartitionTerm(ctx))
	if err != nil {
		return err
	}
	if err := a.DB.(partitionedStore).ClaimTerm(ctx, term); err != nil {
		return err
	}
	a.terms.mu.Lock()
	if a.terms.m == nil {
		a.terms.m = map[int]profile.Term{}
	}
	a.terms.m[part] = term
	a.terms.mu.Unlock()
	done, err := a.applySlot(ctx)
	if err != nil {
		return err
	}
	defer done()
	n, err := a.partitionProc(part).ApplyPartition(ctx, term, part)
	if n > 0 {
		a.Log.Info("applied what the partition's previous holder left", "partition", part, "events", n)
	}
	return err
}

// handlePartition appends a consumed batch to the log with its partition
// and applies the partition up to it; the bus acknowledges the batch after
// both committed. A batch delivered again is absorbed by the log's message
// ids, and what it appended before is applied from the partition's
// checkpoint whatever the batch holds.
func (a *App) handlePartition(ctx context.Context, part int, events []*portrait.Event) error {
	done, err := a.applySlot(ctx)
	if err != nil {
		return err
	}
	defer done()
	st := a.DB.(partitionedStore)
	if _, err := st.AppendPartition(ctx, part, events); err != nil {
		return err
	}
	term, err := a.partitionTerm(ctx, part, natsbus.PartitionTerm(ctx))
	if err != nil {
		return err
	}
	_, err = a.partitionProc(part).ApplyPartition(ctx, term, part)
	return err
}

// holdRewriter, under partitioned application, runs on the process node
// holding the applier lease what belongs to no partition: the events
// appended without the bus, and the profile rewrites.
func (a *App) holdRewriter(ctx context.Context) {
	err := a.bus.HoldLease(ctx, "applier", a.Config.Node, a.Config.LeaseTTL, func(ctx context.Context, rev uint64) {
		a.Log.Info("applying the events appended without the bus, and rewriting profiles", "node", a.Config.Node, "term", rev)
		fence, err := a.bus.LeaseFence(ctx)
		if err != nil {
			a.Log.Error("applier lease: no fence", "err", err)
			return
		}
		term := profile.Term{Fence: fence + "/direct", N: rev}
		if err := a.DB.(partitionedStore).ClaimTerm(ctx, term); err != nil {
			a.Log.Error("applier term not begun", "err", err)
			return
		}
		a.applying.Store(true)
		defer a.applying.Store(false)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		for _, f := range []func(){
			func() { a.runEnrichment(ctx) },
			func() { a.serveRewrites(ctx) },
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f()
			}()
		}
		a.Proc.RunPartition(ctx, term, profile.Direct)
		cancel()
		wg.Wait()
	})
	if err != nil {
		a.Log.Error("applier lease stopped", "err", err)
	}
}

// ReadPartition, PartitionCheckpoint, ClaimTerm and BeginStateTerm pass
// the store's through, so that the processor applies partitions over it.
func (s *applierStore) ReadPartition(ctx context.Context, p int, after int64, limit int) ([]*portrait.Event, error) {
	ps, ok := s.Store.(profile.Partitioned)
	if !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "this store does not record partitions")
	}
	return ps.ReadPartition(ctx, p, after, limit)
}

func (s *applierStore) PartitionCheckpoint(ctx context.Context, p int) (int64, error) {
	ps, ok := s.Store.(profile.Partitioned)
	if !ok {
		return 0, portrait.Errorf(portrait.EINVALID, "this store does not record partitions")
	}
	return ps.PartitionCheckpoint(ctx, p)
}

func (s *applierStore) ClaimTerm(ctx context.Context, term profile.Term) error {
	f, ok := s.Store.(profile.Fenced)
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "this store does not fence appliers")
	}
	return f.ClaimTerm(ctx, term)
}

func (s *applierStore) BeginStateTerm(ctx context.Context, term profile.Term) (profile.StateTx, error) {
	f, ok := s.Store.(profile.Fenced)
	if !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "this store does not fence appliers")
	}
	return f.BeginStateTerm(ctx, term)
}

// DecisionsVersion passes the store's through (profile.DecisionsVersioned);
// a store without one has its retractions and splits read every batch.
func (s *applierStore) DecisionsVersion(ctx context.Context) (int64, error) {
	dv, ok := s.Store.(profile.DecisionsVersioned)
	if !ok {
		return 0, portrait.Errorf(portrait.EINVALID, "this store does not number its retractions and splits")
	}
	return dv.DecisionsVersion(ctx)
}
