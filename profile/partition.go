package profile

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Partitioned application (docs/scaling.md): several processors, one per
// partition a node holds (Fork), apply the log at once, each its bus
// partition. The store, not the processor, is then the one place the
// identity graph and the profiles live: each batch locks, in its own
// transaction and before reading, the identity rows its events resolve
// through and the profiles they name, so two processors never resolve or
// write one profile at once; a batch that meets another in a deadlock is
// rolled back and applied again. Nothing of the graph or the profiles is
// cached between batches (see Processor.Partitioned); the retractions and
// splits are, while their version stays (loadShared).

// maxAttempts bounds how often ApplyPartition retries a batch that met
// another (ECONFLICT) before it reports the failure to its caller, whose
// bus delivers the batch again.
const maxAttempts = 8

// loadShared prepares a batch of partitioned application: empty caches,
// and the retractions and splits as other nodes may have left them, read
// again only when their version moved (a store that numbers them), as of
// before the batch's transaction, as reading them was.
func (p *Processor) loadShared(ctx context.Context) error {
	p.resetCaches()
	dv, ok := p.Store.(DecisionsVersioned)
	if !ok {
		return p.loadDecisions(ctx)
	}
	v, err := dv.DecisionsVersion(ctx)
	if portrait.ErrorCode(err) == portrait.EINVALID {
		// A wrapper (cmd/portrait's applierStore) over a store that
		// does not number them.
		return p.loadDecisions(ctx)
	}
	if err != nil {
		return err
	}
	if p.decisionsHeld && v == p.decisions {
		return nil
	}
	p.decisionsHeld = false
	if err := p.loadDecisions(ctx); err != nil {
		return err
	}
	p.decisions, p.decisionsHeld = v, true
	return nil
}

// beginState starts a state transaction, fenced by term when it is set.
func (p *Processor) beginState(ctx context.Context, term Term) (StateTx, error) {
	if term.N == 0 {
		return p.Store.BeginState(ctx)
	}
	f, ok := p.Store.(Fenced)
	if !ok {
		return nil, portrait.Errorf(portrait.EINVALID, "this store does not fence appliers")
	}
	return f.BeginStateTerm(ctx, term)
}

// lock locks the identity rows of every identifier of the batch and the
// profiles they name (owners, and the profiles an identifier is kept apart
// from, which a late event's replay reaches), in one fixed order, and
// fills the batch's graph and profiles from what it locked.
func (b *batch) lock(pre []prepared) error {
	lk, ok := b.tx.(Locker)
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "partitioned application needs a store whose transactions lock (PostgreSQL)")
	}
	seen := map[portrait.Identifier]bool{}
	var ids []portrait.Identifier
	for _, x := range pre {
		for _, id := range x.ids {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := lk.LockIdentities(ids)
	if err != nil {
		return err
	}
	b.p.graph.lock(rows)
	var pids []string
	for _, r := range rows {
		if r.ProfileID != "" {
			pids = append(pids, r.ProfileID)
		}
		pids = append(pids, r.Refused...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	if len(pids) == 0 {
		return nil
	}
	prs, err := lk.LockProfiles(pids)
	if err != nil {
		return err
	}
	for _, pr := range prs {
		b.p.profiles[pr.ID] = pr
	}
	return nil
}

// lockProfiles locks and reads ids for a rewrite outside the log's
// application (Refresh, Reapply), replacing what the processor held.
func (b *batch) lockProfiles(ids []string) error {
	lk, ok := b.tx.(Locker)
	if !ok {
		return portrait.Errorf(portrait.EINVALID, "partitioned application needs a store whose transactions lock (PostgreSQL)")
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	prs, err := lk.LockProfiles(slices.Compact(sorted))
	if err != nil {
		return err
	}
	b.p.profiles = make(map[string]*portrait.Profile, len(prs))
	for _, pr := range prs {
		b.p.profiles[pr.ID] = pr
	}
	return nil
}

// ApplyPartition applies the events of partition part (Direct: those
// appended without the bus) that are in the log after the partition's
// checkpoint, batch by batch, each in a transaction of term (zero:
// unfenced), until none is left; it returns how many it applied. The
// caller holds the partition, so no one else applies it; other partitions
// are applied at the same time by other nodes, and a batch that meets one
// of them is applied again, up to maxAttempts times.
func (p *Processor) ApplyPartition(ctx context.Context, term Term, part int) (int, error) {
	ps, ok := p.Store.(Partitioned)
	if !ok || !p.Partitioned {
		return 0, portrait.Errorf(portrait.EINVALID, "partitioned application needs a partitioned processor over a store that records partitions (PostgreSQL)")
	}
	total := 0
	for {
		n, full, err := p.applyPartitionBatch(ctx, ps, term, part)
		total += n
		if err != nil || !full {
			return total, err
		}
	}
}

// applyPartitionBatch applies the next batch of part; full says that more
// may follow.
func (p *Processor) applyPartitionBatch(ctx context.Context, ps Partitioned, term Term, part int) (n int, full bool, err error) {
	size := max(p.BatchSize, 1)
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := p.tryPartitionBatch(ctx, ps, term, part, size)
		if err == nil {
			return n, n == size, nil
		}
		if portrait.ErrorCode(err) != portrait.ECONFLICT || attempt >= maxAttempts || ctx.Err() != nil || strings.Contains(err.Error(), "applier term") {
			return 0, false, err
		}
		// The batch met another node's: wait a little (more each time,
		// with jitter, so the two do not meet again) and read it again.
		select {
		case <-ctx.Done():
			return 0, false, err
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (p *Processor) tryPartitionBatch(ctx context.Context, ps Partitioned, term Term, part, size int) (int, error) {
	// Only the holder of part applies it, so its position and events are
	// read before taking the processor (a node runs one per partition,
	// Fork; the one that applies the events without the bus also serves
	// the rewrites).
	cp, err := ps.PartitionCheckpoint(ctx, part)
	if err != nil {
		return 0, err
	}
	events, err := ps.ReadPartition(ctx, part, cp, size)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.loadShared(ctx); err != nil {
		return 0, err
	}
	if err := p.applyTo(ctx, events, term, PartitionCheckpointName(part)); err != nil {
		p.forgetCaches()
		return 0, err
	}
	last := events[len(events)-1]
	if p.OnBatch != nil {
		p.OnBatch(len(events), last.Seq, last.Timestamp)
	}
	return len(events), nil
}

// RunPartition applies partition part as ApplyPartition does, as events
// arrive, until ctx ends: for the events appended without the bus
// (Direct), which no consumer hands over.
func (p *Processor) RunPartition(ctx context.Context, term Term, part int) {
	backoff := 100 * time.Millisecond
	for {
		var wake <-chan struct{}
		if p.Notify != nil {
			wake = p.Notify()
		}
		_, err := p.ApplyPartition(ctx, term, part)
		if ctx.Err() != nil {
			return
		}
		wait := time.Second
		if err != nil {
			p.Log.Error("profile processor failed; retrying", "partition", part, "err", err, "backoff", backoff)
			wait, wake = backoff, nil
			backoff = min(backoff*2, 10*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
			// Every commit of every node wakes it: let events gather.
			select {
			case <-ctx.Done():
				return
			case <-time.After(p.Linger):
			}
		case <-time.After(wait):
		}
	}
}
