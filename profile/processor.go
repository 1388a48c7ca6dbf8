package profile

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
)

// The processor: its configuration, the state it caches between batches
// (identity graph, profiles, retractions, splits) and how that state is
// read back from storage. The processor is split by concern:
//
//   - run.go: the run loop, batch sizes and the checkpoint;
//   - batch.go: one batch, one transaction, from reading to committing;
//   - parse.go: reading an event's payload and identifiers;
//   - resolve.go: which profile an event belongs to (attaches, merges,
//     refusals) through the identity graph (graph.go);
//   - apply.go: what one event does to its profile (traits, counts) and
//     the enrichers;
//   - replay.go: late events and retractions, by replaying histories;
//   - split.go: undoing merges; refresh.go: re-evaluation without events.

// CheckpointName is the processor's position in the log.
const CheckpointName = "profiles"

// Processor applies the event log to profiles. It is the only writer of the
// derived state; Run owns its goroutine.
type Processor struct {
	Store Store
	Rules *identity.Rules
	Now   portrait.Clock
	Log   *slog.Logger
	// Accounts derives what expired events make of the accounts, which a
	// retention pass carries forward beside the profiles (nil: no
	// accounts are kept).
	Accounts AccountCarrier
	// BatchSize is how many events one transaction applies. While the
	// processor is behind (a batch came back full), each next batch is
	// twice as large, up to MaxBatchSize: catching up, fewer and larger
	// transactions rewrite each active profile fewer times; live, batches
	// stay small and fresh. MaxBatchSize 0 means BatchSize.
	BatchSize    int
	MaxBatchSize int
	batch        int // the size of the next batch
	// Linger is how long Run lets new events gather before applying a
	// batch that would not be full.
	Linger time.Duration
	// BusyLinger replaces Linger after a busy batch (see Run).
	BusyLinger time.Duration
	// OnceTraits are traits whose first value wins ($set_once), by name.
	OnceTraits map[string]bool
	// SourcePriority ranks sources for traits set at the same instant.
	SourcePriority func(source string) int
	// Notify returns a channel closed when new events are appended.
	Notify func() <-chan struct{}
	// OnChange, when set, is told after each commit which profiles changed,
	// which ids no longer exist (merged away), and, for each changed
	// profile whose new events are all known, the events applied to it in
	// this batch in canonical order (a profile merged or re-ordered in the
	// batch is absent: its history must be read again). It runs on the
	// processor's goroutine and must not keep or modify the profiles.
	OnChange func(changed []*portrait.Profile, deleted []string, applied map[string][]*portrait.Event)
	// OnBatch, when set, is told after each committed batch.
	OnBatch func(applied int, lastSeq int64, lastEventTime time.Time)
	// Standardize cleans a trait value before it is set (phones to E.164,
	// names NFKC...); an error leaves the trait unset and is recorded as a
	// trait issue. Nil: values are kept as sent.
	Standardize func(name string, v any) (any, error)
	// Enrichers derive computed traits and tags; called in order.
	Enrichers []Enricher
	// MaxProfiles bounds the profile cache.
	MaxProfiles int
	// MaxIdentities bounds the identity cache. While the whole graph fits,
	// it is held in memory and lookups never read storage.
	MaxIdentities int
	// Partitioned: several processors (on several nodes, one per partition
	// a node holds: Fork) apply the log at once, each its partition
	// (ApplyPartition), over a Partitioned store. Nothing of the graph or
	// the profiles is cached across batches, and each batch locks the
	// identity rows and profiles it can touch before reading them
	// (partition.go).
	Partitioned bool
	// Locked, when set, is called by a batch of partitioned application
	// once it holds its locks (its transaction is then in progress in the
	// store), before it applies anything: a node reads there what another
	// node may have changed that its enrichers score against (the RFM
	// boundaries, cmd/portrait). Being inside the transaction is what lets
	// a node that changed them wait for every batch that may have read the
	// old ones (traits.Service.Settle over WaitWriters).
	Locked func(ctx context.Context) error

	mu sync.Mutex // serialises batches (Run and direct callers)
	// applied is the last event applied; committed the last one whose
	// state is known to be in storage (commits finish in the background).
	applied   atomic.Int64
	committed atomic.Int64
	// graph caches the identity graph (see graph.go).
	graph     *graph
	profiles  map[string]*portrait.Profile
	retracted map[string]bool
	// splits are the identity merges people undid (see split.go), by the
	// split event's message id, and indexed by the identifiers they name.
	splits   map[string]*Split
	splitIdx map[portrait.Identifier][]*Split
	// compacted are carried-forward events (retain.go) the state already
	// holds: written by a compaction, skipped when the log reaches them.
	compacted map[string]bool
	loaded    bool
	// decisions is the store's version of the retractions and splits
	// the processor holds, when decisionsHeld (partitioned application
	// over a DecisionsVersioned store, loadShared).
	decisions     int64
	decisionsHeld bool
}

// NewProcessor returns a processor with defaults.
func NewProcessor(store Store, rules *identity.Rules) *Processor {
	return &Processor{
		Store: store, Rules: rules, Now: time.Now, Log: slog.Default(),
		BatchSize: 50_000, MaxBatchSize: 200_000, Linger: 100 * time.Millisecond, BusyLinger: time.Second, OnceTraits: map[string]bool{}, MaxProfiles: 250_000, MaxIdentities: 2_000_000,
		SourcePriority: func(string) int { return 0 },
	}
}

// Fork returns a processor configured like p (store, rules, cleaning,
// enrichers, hooks) with caches and a lock of its own, for partitioned
// application: a node runs one per partition it holds, so that its
// partitions are applied at once, each as if by a node of its own (the
// store's locks keep them apart as they keep nodes apart). The hooks and
// enrichers are then called from several goroutines at once.
func (p *Processor) Fork() *Processor {
	return &Processor{
		Store: p.Store, Rules: p.Rules, Now: p.Now, Log: p.Log,
		BatchSize: p.BatchSize, MaxBatchSize: p.MaxBatchSize, Linger: p.Linger, BusyLinger: p.BusyLinger,
		OnceTraits: p.OnceTraits, SourcePriority: p.SourcePriority, Notify: p.Notify,
		OnChange: p.OnChange, OnBatch: p.OnBatch, Standardize: p.Standardize, Enrichers: p.Enrichers,
		MaxProfiles: p.MaxProfiles, MaxIdentities: p.MaxIdentities, Partitioned: p.Partitioned,
		Accounts: p.Accounts, Locked: p.Locked,
	}
}

// Checkpoint is the sequence number of the last event whose effects are
// committed: what readers of the store see.
func (p *Processor) Checkpoint() int64 { return p.committed.Load() }

// forgetCaches drops every cache after a transaction that failed: a
// batch may have changed the retractions or splits held (replay.go,
// split.go) and not committed them, so those are read again too.
func (p *Processor) forgetCaches() {
	p.resetCaches()
	p.decisionsHeld = false
}

func (p *Processor) resetCaches() {
	p.graph = newGraph()
	if p.Partitioned {
		p.graph = newLazyGraph()
	}
	p.profiles = make(map[string]*portrait.Profile)
	p.loaded = false
}

func (p *Processor) load(ctx context.Context) error {
	if p.Partitioned {
		return p.loadShared(ctx)
	}
	if p.loaded {
		return nil
	}
	p.resetCaches()
	// A commit still in the background would move the checkpoint after it
	// was read. Its failure needs no report: everything is read again here.
	p.Store.WaitState(ctx)
	cp, err := p.Store.Checkpoint(ctx, CheckpointName)
	if err != nil {
		return err
	}
	p.applied.Store(cp)
	p.committed.Store(cp)
	refs, err := p.Store.LoadRefused(ctx)
	if err != nil {
		return err
	}
	if err := p.loadDecisions(ctx); err != nil {
		return err
	}
	if err := p.loadCompacted(ctx); err != nil {
		return err
	}
	ids, attached, complete, err := p.Store.LoadIdentities(ctx, p.MaxIdentities)
	if err != nil {
		return err
	}
	p.graph.load(refs, ids, attached, complete)
	p.loaded = true
	return nil
}

// loadDecisions reads the retractions and splits (the undone events and
// merges), which every batch consults.
func (p *Processor) loadDecisions(ctx context.Context) error {
	rs, err := p.Store.LoadRetracted(ctx)
	if err != nil {
		return err
	}
	p.retracted = make(map[string]bool, len(rs))
	for _, m := range rs {
		p.retracted[m] = true
	}
	return p.loadSplits(ctx)
}
