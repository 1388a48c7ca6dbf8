package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/erasure"
	porthttp "github.com/portrait-cdp/portrait/http"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/profile"
)

// Several nodes (issue 17, docs/scaling.md). A node runs some of three
// roles over one shared store and one bus:
//
//   - ingest: the tracking API and imports; an event is acknowledged once
//     the bus has it (rejected records go to the store's quarantine);
//   - process: consumes the partitions it holds a lease on and appends each
//     batch to the store's log, acknowledging after the commit; and, on the
//     one node holding the "applier" lease, applies the log to profiles;
//   - api: the admin API and the console, reading the store, with the
//     in-memory indexes kept current from the store's change feed.
//
// "all" is the three together: on the embedded store, today's single node.

// roles is the set --role names.
type roles struct{ ingest, process, api bool }

func (r roles) all() bool { return r.ingest && r.process && r.api }

func (r roles) String() string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.ingest, "ingest"}, {r.process, "process"}, {r.api, "api"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, ",")
}

func parseRoles(s string) (roles, error) {
	var r roles
	if strings.TrimSpace(s) == "" {
		s = "all"
	}
	for _, x := range strings.Split(s, ",") {
		switch strings.TrimSpace(x) {
		case "all":
			r = roles{true, true, true}
		case "ingest":
			r.ingest = true
		case "process":
			r.process = true
		case "api":
			r.api = true
		default:
			return r, portrait.Errorf(portrait.EINVALID, "role %q: use all, or ingest, process and api, comma-separated", x)
		}
	}
	return r, nil
}

// nodeConfig is the part of Config that places a node among others.
type nodeConfig struct {
	BusStream     string
	BusPartitions int
	BusAckWait    time.Duration
	// BusBatch is the most events a partition's consumer hands over at
	// once (0: the bus's default).
	BusBatch int
	Role     string
	Node     string
	LeaseTTL time.Duration
	// ChangeFeedRetention: how long the change feed keeps a change.
	ChangeFeedRetention time.Duration
	// Apply is how process nodes apply the log: "leased" (one applier at
	// a time) or "partitioned" (each node its partitions, partitioned.go).
	Apply string
	// ApplyConcurrency bounds how many of its partitions a node applies
	// at once under partitioned application (0: applyConcurrency's
	// default for the machine).
	ApplyConcurrency int
}

// defaultNodeName is unique among the processes of a machine: a lease
// held by a process that died must not be taken for this one's.
func defaultNodeName() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, h)
	if h == "" {
		h = "node"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// openBus reads --bus: empty or inproc is none (the tracking API appends
// to the store), nats://host:port the JetStream bus.
// partitionedBusBatch is the consumers' batch cap under partitioned
// application: a batch there locks, reads and writes every profile it
// touches, so under backlog a larger one applies each profile once for
// more of its events (issue 17, 1 node, same run: 500 → 2,000 took CPU per
// 30k events from 5.9–6.2 s to 4.9–5.5 s). An idle partition's batches
// stay small: the consumer takes what is buffered, up to the cap.
const partitionedBusBatch = 2000

// busBatch is the consumers' batch cap: --bus-batch, else the mode's.
func busBatch(cfg Config) int {
	if cfg.BusBatch > 0 {
		return cfg.BusBatch
	}
	if cfg.Apply == applyPartitioned {
		return partitionedBusBatch
	}
	return 0 // the bus's default
}

func (a *App) openBus(ctx context.Context) error {
	cfg := a.Config
	switch {
	case cfg.Bus == "" || cfg.Bus == "inproc":
		return nil
	case strings.HasPrefix(cfg.Bus, "nats://"), strings.HasPrefix(cfg.Bus, "tls://"):
	default:
		return portrait.Errorf(portrait.EINVALID, "bus %q: use nats://host:port (or nothing: in-process)", cfg.Bus)
	}
	b, err := natsbus.Open(ctx, natsbus.Config{
		URL: cfg.Bus, Stream: cfg.BusStream, Partitions: cfg.BusPartitions, AckWait: cfg.BusAckWait, Batch: busBatch(cfg),
		Log: a.Log.With("bus", cfg.BusStream),
	})
	if err != nil {
		return err
	}
	a.bus = b
	return nil
}

// checkRoles refuses what cannot work: on the embedded store there is one
// node, so it has every role; an ingest or process node needs the bus to
// reach the others. Without a bus, "all" and "api" nodes over a shared
// store hold their applier and jobs leases in the store (leases).
func (a *App) checkRoles() error {
	r := a.roles
	if a.storeReadOnly() && (r.ingest || r.process) {
		return portrait.Errorf(portrait.EINVALID, "--role %s needs a store that accepts writes, and this one accepts none (a standby, or read-only by default): a read-only store serves --role api only", r)
	}
	if !a.shared && !r.all() {
		return portrait.Errorf(portrait.EINVALID, "--role %s needs a shared store (--store postgres://…): the embedded store serves one node, which has every role", r)
	}
	if a.bus == nil && (r.ingest || r.process) && !r.all() {
		return portrait.Errorf(portrait.EINVALID, "--role %s needs a bus (--bus nats://…): ingest and process nodes reach each other through it", r)
	}
	return nil
}

// busLog is the tracking API's event log on an ingest node: accepted events
// go to the bus, and are acknowledged once it has them; rejected records
// are kept in the store's quarantine, as on a single node. Reads are the
// store's.
type busLog struct {
	Store
	bus portrait.Bus
}

func (l *busLog) Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error) {
	var res portrait.AppendResult
	if len(rejected) > 0 {
		if _, err := l.Store.Append(ctx, nil, rejected); err != nil {
			return res, err
		}
	}
	if len(events) == 0 {
		return res, nil
	}
	// JetStream says which events it already had within its duplicate
	// window (a client's retry); a retry after the window is dropped by the
	// store's message ids later, unseen here, and counts as accepted.
	if c, ok := l.bus.(interface {
		PublishCounted(ctx context.Context, events []*portrait.Event) (int, error)
	}); ok {
		dups, err := c.PublishCounted(ctx, events)
		if err != nil {
			return res, err
		}
		res.Accepted, res.Duplicates = len(events)-dups, dups
		return res, nil
	}
	if err := l.bus.Publish(ctx, events); err != nil {
		return res, err
	}
	res.Accepted = len(events)
	return res, nil
}

// ingestLog is where the tracking API and imports write: the bus when
// there is one, the store otherwise.
func (a *App) ingestLog() portrait.EventLog {
	if a.bus != nil {
		return &busLog{Store: a.DB, bus: a.bus}
	}
	return a.DB
}

// applierStore is the processor's view of the store. At the start of each
// applier term (the lease taken), forget makes the next WaitState fail
// once, which is the processor's own signal that storage may differ from
// its caches: it reads the identity graph and the checkpoint again, so a
// node that applies after another did starts from what the store holds.
//
// On a store that fences appliers (profile.Fenced), every state
// transaction carries the term this node applies in, so that a batch in
// flight when the lease was lost is refused once another node's term has
// begun.
type applierStore struct {
	Store
	forget atomic.Bool
	term   atomic.Pointer[profile.Term] // nil: unfenced (one node)
}

func (s *applierStore) BeginState(ctx context.Context) (profile.StateTx, error) {
	if t := s.term.Load(); t != nil {
		if f, ok := s.Store.(profile.Fenced); ok {
			return f.BeginStateTerm(ctx, *t)
		}
	}
	return s.Store.BeginState(ctx)
}

func (s *applierStore) WaitState(ctx context.Context) error {
	if s.forget.CompareAndSwap(true, false) {
		return portrait.Errorf(portrait.ECONFLICT, "a new applier term: the caches are read again from the store")
	}
	return s.Store.WaitState(ctx)
}

// freshTerm empties the processor's caches before a term.
func (a *App) freshTerm(ctx context.Context) {
	a.procStore.forget.Store(true)
	a.Proc.Sync(ctx) // fails, as asked: the caches are marked stale
}

// suppressionEvery is how often an ingest node on a shared store reads the
// suppression list again.
const suppressionEvery = 5 * time.Second

// startNodes starts what the roles run, beside the HTTP server.
func (a *App) startNodes(ctx context.Context) {
	r := a.roles
	if r.process && a.bus != nil && a.partitioned() {
		a.goRun(func() {
			if err := a.bus.ServeTaking(ctx, a.Config.Node, a.Config.LeaseTTL, a.takePartition, a.handlePartition); err != nil {
				a.Log.Error("bus consumers stopped", "err", err)
			}
		})
	} else if r.process && a.bus != nil {
		a.goRun(func() {
			err := a.bus.Serve(ctx, a.Config.Node, a.Config.LeaseTTL, func(ctx context.Context, _ int, events []*portrait.Event) error {
				// Acknowledged (by Serve) only after this commit; a batch
				// delivered again is absorbed by the log's message ids.
				_, err := a.DB.Append(ctx, events, nil)
				return err
			})
			if err != nil {
				a.Log.Error("bus consumers stopped", "err", err)
			}
		})
	}
	if (r.ingest || r.api) && a.shared && a.suppressor != nil {
		// An erasure made through another node reaches this node's
		// suppression list within suppressionEvery: ingest drops the
		// person's events, the accounts (api) forget the person.
		a.goRun(func() {
			t := time.NewTicker(suppressionEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := a.suppressor.Load(ctx); err != nil && ctx.Err() == nil {
					a.Log.Warn("suppression list not reloaded", "err", err)
				}
			}
		})
	}
	if a.defs != nil {
		a.goRun(func() { a.defs.Run(ctx) })
	}
	if r.process && a.reseal != nil && !a.shared {
		// One node: it seals beside its processor. Over a shared store the
		// pass is a job of the jobs owner (runJobs), fenced like the others.
		a.goRun(func() { a.reseal.Run(ctx) })
	}
	if r.process {
		if a.partitioned() {
			a.goRun(func() { a.holdRewriter(ctx) })
		} else if a.shared && a.leases() != nil {
			a.goRun(func() { a.holdApplier(ctx) })
		} else {
			a.applying.Store(true)
			a.goRun(func() { a.runApplier(ctx) })
		}
	}
	if r.api {
		a.startSegments(ctx)
		a.startAccounts(ctx)
		if !a.storeReadOnly() && !a.shared { // retention writes: over a shared store it is a job (runJobs)
			a.startErasure(ctx) // privacy-erasure
		}
		if a.follow != nil {
			a.goRun(func() { a.follow.Run(ctx) })
		}
		switch _, leased := a.DB.(storeLeases); {
		case a.storeReadOnly():
		case a.shared && (a.bus != nil || leased):
			// The api nodes elect the jobs owner in the bus or, without
			// one, in the store; each scheduled job asks its term right
			// before its point of no return (fenceJobs).
			a.goRun(func() { a.holdJobs(ctx) })
		default:
			a.goRun(func() { a.runJobs(ctx) })
		}
	}
}

// holdJobs runs the scheduled jobs while this node holds the "jobs"
// lease. Each term is begun in the store first (claimJobsTerm), so that
// the store itself refuses a delivery slot claimed or sent by an earlier
// term (delivery.Claims).
func (a *App) holdJobs(ctx context.Context) {
	err := a.leases().HoldLease(ctx, "jobs", a.Config.Node, a.Config.LeaseTTL, func(ctx context.Context, term uint64) {
		if !a.claimJobsTerm(ctx, term) {
			return
		}
		a.jobsTerm.Store(term)
		defer a.jobsTerm.Store(0)
		a.Log.Info("running the scheduled jobs", "node", a.Config.Node, "term", term)
		a.runJobs(ctx)
	})
	if err != nil {
		a.Log.Error("jobs lease stopped", "err", err)
	}
}

// jobsFencePrefix sets the jobs lease's terms apart from the applier's in
// the store's table of terms (applier_terms): the same lease bucket or
// leases table counts both.
const jobsFencePrefix = "jobs:"

// claimJobsTerm begins jobs term term in a store that fences terms
// (profile.Fenced), retrying until ctx ends (false), as claimTerm does for
// the applier: from then on no claim of an earlier jobs term can reach
// its send.
func (a *App) claimJobsTerm(ctx context.Context, term uint64) bool {
	f, ok := a.DB.(profile.Fenced)
	if !ok {
		return true
	}
	backoff := 100 * time.Millisecond
	for {
		fence, err := a.leaseFence(ctx)
		if err == nil {
			fence = jobsFencePrefix + fence
			a.jobsFence.Store(&fence)
			if err = f.ClaimTerm(ctx, profile.Term{Fence: fence, N: term}); err == nil {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		a.Log.Warn("jobs term not begun; retrying", "node", a.Config.Node, "term", term, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, a.Config.LeaseTTL/3)
	}
}

// jobsTermNow names this node's jobs term for delivery claims
// (delivery.Service.Term): term 0 while it holds none.
func (a *App) jobsTermNow() (holder, fence string, term uint64) {
	if f := a.jobsFence.Load(); f != nil {
		fence = *f
	}
	return a.Config.Node, fence, a.jobsTerm.Load()
}

// holdApplier applies events to profiles while this node holds the
// "applier" lease (in the bus, or without one in the store), until ctx
// ends: one applier among the process nodes, because the processor caches
// the identity graph and must be the only writer. Each term starts from
// what the store holds.
func (a *App) holdApplier(ctx context.Context) {
	err := a.leases().HoldLease(ctx, "applier", a.Config.Node, a.Config.LeaseTTL, func(ctx context.Context, rev uint64) {
		a.Log.Info("applying events to profiles", "node", a.Config.Node, "term", rev)
		if !a.claimTerm(ctx, rev) {
			return
		}
		a.applying.Store(true)
		defer a.applying.Store(false)
		a.freshTerm(ctx)
		a.runApplier(ctx)
		a.Log.Info("stopped applying events", "node", a.Config.Node, "term", rev)
	})
	if err != nil {
		a.Log.Error("applier lease stopped", "err", err)
	}
}

// claimTerm starts applier term rev in the store, before the processor
// reads the state again: a commit of the term before still in flight lands
// first, and any later one of it is refused (profile.Fenced). From here
// every state transaction of this node carries the term. It retries until
// ctx ends (false); a later term already begun means this node's lease is
// lost, which HoldLease notices within a third of the lease time.
func (a *App) claimTerm(ctx context.Context, rev uint64) bool {
	f, ok := a.DB.(profile.Fenced)
	if !ok {
		return true // one node: nothing to fence
	}
	backoff := 100 * time.Millisecond
	for {
		fence, err := a.leaseFence(ctx)
		if err == nil {
			term := profile.Term{Fence: fence, N: rev}
			a.procStore.term.Store(&term)
			if err = f.ClaimTerm(ctx, term); err == nil {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		a.Log.Warn("applier term not begun; retrying", "node", a.Config.Node, "term", rev, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, a.Config.LeaseTTL/3)
	}
}

// runApplier applies the log to profiles until ctx ends, with the
// scheduled profile rewrites (tag backfills, hourly re-evaluation), which
// write profiles too and so belong to the one applier.
func (a *App) runApplier(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 3)
	go func() {
		defer func() { done <- struct{}{} }()
		a.runEnrichment(ctx)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		a.runEventRetention(ctx) // needs the processor: here, where it applies
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		a.serveRewrites(ctx) // requests forwarded by nodes that do not apply
	}()
	a.Proc.Run(ctx)
	cancel()
	<-done
	<-done
	<-done
}

// leaser holds named leases among the nodes: the bus's lease bucket
// (nats.Bus.HoldLease) or, without a bus, the shared store's leases table.
type leaser interface {
	HoldLease(ctx context.Context, name, node string, ttl time.Duration, fn func(ctx context.Context, term uint64)) error
}

// leases is where this node's applier and jobs leases are held (nil: the
// embedded store, one node, nothing to elect).
func (a *App) leases() leaser {
	if a.bus != nil {
		return a.bus
	}
	if l, ok := a.DB.(storeLeases); ok && a.shared {
		return l
	}
	return nil
}

// storeLeaseFence names the terms of leases held in the store: the
// leases table never resets a term (a lease given back keeps its row).
const storeLeaseFence = "store:leases"

// leaseFence names what the applier lease's terms are counted in.
func (a *App) leaseFence(ctx context.Context) (string, error) {
	if a.bus != nil {
		return a.bus.LeaseFence(ctx)
	}
	return storeLeaseFence, nil
}

// storeLeases is a shared store that holds leases itself
// (postgres/leases.go): the jobs owner's election when there is no bus.
type storeLeases interface {
	HoldLease(ctx context.Context, name, node string, ttl time.Duration, fn func(ctx context.Context, term uint64)) error
	CheckLease(ctx context.Context, name, holder string, term uint64, margin time.Duration) error
}

// fenceJobs says whether this node may run a scheduled job now: every job
// asks it right before its point of no return (a delivery's send, a
// segment webhook's POST, a reseal step's write, a retention sweep, a
// scheduled analysis). On one node it always may. Over a shared store it
// asks where the jobs lease is held — the store (no bus) or the bus's
// bucket — whether this node's term still holds: a node that was paused
// past its lease, and whose renewal has not failed yet, starts nothing,
// as another node may hold the lease already. The store also asks for a
// third of the lease time left (the bus cannot: its expiry is not
// readable, see nats.Bus.CheckLease).
func (a *App) fenceJobs(ctx context.Context) error {
	l, leased := a.DB.(storeLeases)
	if !a.shared || a.bus == nil && !leased {
		return nil
	}
	term := a.jobsTerm.Load()
	if term == 0 {
		return portrait.Errorf(portrait.ECONFLICT, "node %s does not hold the jobs lease", a.Config.Node)
	}
	if a.bus != nil {
		return a.bus.CheckLease(ctx, "jobs", a.Config.Node, term)
	}
	return l.CheckLease(ctx, "jobs", a.Config.Node, term, a.Config.LeaseTTL/3)
}

// runJobs runs what must happen once however many api nodes there are:
// scheduled analyses, segment webhooks, scheduled deliveries and (over a
// shared store) retention. On the embedded store that is the one node; on
// a shared one the api node that holds the "jobs" lease, in the bus or,
// without one, in the store.
func (a *App) runJobs(ctx context.Context) {
	if a.Config.AnalyticsEvery > 0 {
		every := map[string]time.Duration{}
		for _, k := range jobs.Kinds {
			every[k] = a.Config.AnalyticsEvery
		}
		a.Jobs.Schedule(ctx, every, time.Minute)
	}
	var done []chan struct{}
	run := func(f func()) {
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			f()
		}()
	}
	if svc := a.HTTP.Segments; svc != nil && svc.Webhooks != nil {
		run(func() { svc.Webhooks.Run(ctx) })
	}
	if svc := a.HTTP.Deliveries; svc != nil {
		run(func() { a.runDeliveries(ctx) })
	}
	if a.shared && a.retention != nil {
		run(func() { a.retention.Run(ctx) }) // on one node, not on every api node
	}
	if a.shared && a.reseal != nil {
		run(func() { a.reseal.Run(ctx) }) // likewise: one pass, on the jobs owner
	}
	<-ctx.Done()
	for _, ch := range done {
		<-ch
	}
}

func (a *App) goRun(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// checkpoint is how far profiles are applied: the processor's own position
// where it runs here alone, the store's where appliers take turns.
//
// A failed read is returned, not taken for 0: a 0 reads as "nothing
// applied" to some callers and, through a failed log read beside it, as
// "caught up" to others.
func (a *App) checkpoint(ctx context.Context) (int64, error) {
	if !a.shared {
		return a.Proc.Checkpoint(), nil
	}
	if a.partitioned() {
		cp, err := a.DB.(partitionedStore).AppliedThrough(ctx, a.Config.BusPartitions)
		if err != nil {
			return 0, portrait.Wrap(err, "cannot read how far the partitions are applied")
		}
		return cp, nil
	}
	cp, err := a.DB.Checkpoint(ctx, profile.CheckpointName)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read the applier's checkpoint")
	}
	return cp, nil
}

// busPending counts the events the bus holds that no store has committed.
// A bus that does not answer is an error, for the same reason as in
// checkpoint.
func (a *App) busPending(ctx context.Context) (int64, error) {
	if a.bus == nil {
		return 0, nil
	}
	n, err := a.bus.Pending(ctx)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read the events waiting on the bus")
	}
	return int64(n), nil
}

// roleFilter answers only the routes of this node's roles: an ingest-only
// node the tracking API, an api node without ingest everything else; both
// keep health, readiness, metrics and the OpenAPI document.
func roleFilter(r roles) func(http.Handler) http.Handler {
	if r.ingest && r.api {
		return nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch p := req.URL.Path; {
			case p == "/healthz" || p == "/readyz" || p == "/metrics" || p == "/openapi.json":
			case trackingPath(p) != r.ingest:
				what := "the admin API and the console"
				if !r.ingest {
					what = "the tracking API"
				}
				porthttp.Error(w, req, portrait.Errorf(portrait.ENOTFOUND, "this node (role %s) does not serve %s: send it to a node with that role", r, what))
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

var trackingTypes = []string{portrait.EventIdentify, portrait.EventTrack, portrait.EventPage, portrait.EventScreen, portrait.EventGroup, portrait.EventAlias, "batch", "import"}

func trackingPath(p string) bool {
	t, ok := strings.CutPrefix(p, "/v1/")
	return ok && slices.Contains(trackingTypes, t)
}

// errNoPostgres is what --store postgres://… says in a build without it.
var errNoPostgres = errors.New("the PostgreSQL store is not built into this binary yet")

func noPostgres(url string) error {
	return portrait.Errorf(portrait.EINVALID, "store %s: %v (issue 17); use the embedded store (--data DIR)", redactURL(url), errNoPostgres)
}

// redactURL drops a password from a store URL before it is shown.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	if user, _, hasPw := strings.Cut(rest[:at], ":"); hasPw {
		return scheme + "://" + user + ":***@" + rest[at+1:]
	}
	return s
}

// nodeLogger names the node in every line when there are several.
func nodeLogger(l *slog.Logger, node string, r roles) *slog.Logger {
	if r.all() {
		return l
	}
	return l.With("node", node, "role", r.String())
}

// mayRewrite says whether this node may rewrite profiles outside the log's
// application (a computed trait covering the past, tag and RFM refreshes,
// an erasure): on a shared store only the applier may, as the processor
// must be the only writer. Until such requests are forwarded to it, a node
// that does not apply refuses them rather than write beside it.
func (a *App) mayRewrite() error {
	if !a.shared || a.applying.Load() {
		return nil
	}
	return portrait.Errorf(portrait.EUNAVAILABLE, "this node (%s) does not apply events to profiles, and over a shared store only the node that does may rewrite them; send this to the node holding the applier lease (docs/scaling.md)", a.Config.Node)
}

// applierErasure forwards erasures from a node that does not apply.
type applierErasure struct {
	porthttp.ErasureService
	a *App
}

// On a node that does not apply, an erasure is forwarded to the one that
// does (rewrites.go) and its receipt or error returned.
func (e *applierErasure) Erase(ctx context.Context, id, by, reason string) (*portrait.ErasureReceipt, error) {
	if err := e.a.mayRewrite(); err != nil {
		var rc portrait.ErasureReceipt
		if err := e.a.forward(ctx, rewriteErase, eraseRequest{ReceiptID: erasure.NewReceiptID(), ID: id, By: by, Reason: reason}, &rc); err != nil {
			return nil, err
		}
		return &rc, nil
	}
	return e.ErasureService.Erase(ctx, id, by, reason)
}

func (e *applierErasure) EraseByIdentifier(ctx context.Context, id portrait.Identifier, by, reason string) (*portrait.ErasureReceipt, error) {
	if err := e.a.mayRewrite(); err != nil {
		var rc portrait.ErasureReceipt
		if err := e.a.forward(ctx, rewriteEraseIdentifier, eraseRequest{ReceiptID: erasure.NewReceiptID(), Identifier: &id, By: by, Reason: reason}, &rc); err != nil {
			return nil, err
		}
		return &rc, nil
	}
	return e.ErasureService.EraseByIdentifier(ctx, id, by, reason)
}
