package traits

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Store keeps definitions, the observed schema and RFM boundaries.
type Store interface {
	SaveTraitDefinition(ctx context.Context, d Definition) error
	DeleteTraitDefinition(ctx context.Context, name string) error
	TraitDefinitions(ctx context.Context) ([]Definition, error)
	SaveSchemaFields(ctx context.Context, fields []Field) error
	SchemaFields(ctx context.Context) ([]Field, error)
	SaveBoundaries(ctx context.Context, b *Boundaries) error
	LatestBoundaries(ctx context.Context) (*Boundaries, error)
}

// Service manages computed-trait definitions and runs the scheduled jobs:
// RFM boundaries, the time-based refresh, saving the observed schema.
type Service struct {
	Store    Store
	Enricher *Enricher
	// Each reads every profile (sqlite.DB.AllProfiles).
	Each func(ctx context.Context, fn func(*portrait.Profile) error) error
	// Refresh re-evaluates every profile as of now (Processor.Refresh).
	Refresh func(ctx context.Context) (int, error)
	// Rescore re-evaluates the given profiles as of now
	// (Processor.RefreshProfiles). With it, new RFM boundaries rewrite only
	// the customers whose scores they change; without it, every profile.
	Rescore func(ctx context.Context, ids []string) (int, error)
	// Settle, when set, returns once every profile write the processor
	// began before the call is durable (Processor.Sync): RecomputeRFM
	// reads the population while events are applied, and must know which
	// profiles were scored against the boundaries it replaces.
	Settle func(ctx context.Context) error
	// Written, when set, starts collecting the profiles written by any
	// processor from the call on, on any node (the store's change feed);
	// the function it returns stops and returns them. The enricher's watch
	// (WatchBuyers) sees only the processors that share it: under
	// partitioned application other nodes write profiles too, scored
	// against their copy of the boundaries (cmd/portrait/enrich.go).
	Written func(ctx context.Context) (stop func(ctx context.Context) ([]string, error), err error)
	// Backlog, when set, is how many logged events the processor has not
	// applied yet. The early RFM refresh (RefreshRFM) waits while it is
	// large (see rfmBacklog).
	Backlog func() int64
	// Changed is told when definitions change (tags recompile).
	Changed func()
	// Reapply, when set, lets a newly defined trait cover the past: it runs
	// a function over every profile with its whole history
	// (Processor.Reapply). Without it a definition counts events from now.
	Reapply func(ctx context.Context, fn func(*portrait.Profile, []*portrait.Event), progress func(done int)) error
	Now     portrait.Clock
	Log     *slog.Logger

	mu       sync.Mutex // serialises definition changes
	pending  chan string
	progress atomic.Pointer[BackfillStatus]
	// buyersAt is Enricher.NewBuyers when the boundaries were last computed.
	buyersAt atomic.Int64
	// staleSince is when RefreshRFM first found the boundaries stale and
	// put the recomputation off (zero: not waiting). Run's goroutine only.
	staleSince time.Time
}

// The early RFM refresh waits while the processor is more than rfmBacklog
// events behind the log, for at most rfmMaxWait. While a burst is being
// processed, boundaries computed now would miss the customers still in
// the backlog, and the population pass would compete with the burst for
// the cores (in `portrait bench ingest` it took about 15 % of the CPU
// while events arrived). The profiles processed meanwhile are scored
// against the boundaries in place, as always.
const (
	rfmBacklog = 5000
	rfmMaxWait = time.Minute
)

// rfmGrowth: the boundaries are recomputed when the buyers have grown by
// this factor since they were computed, so that a young population is not
// scored against the quintiles of its first few customers for a day, while
// the whole-population pass stays amortised (a doubling costs one pass).
const rfmGrowth = 2

// BackfillStatus is the progress of computing a new trait over history.
type BackfillStatus struct {
	Trait    string     `json:"trait"`
	State    string     `json:"state"` // queued, running, done, failed
	Profiles int        `json:"profiles"`
	Error    string     `json:"error,omitempty"`
	Started  time.Time  `json:"started_at"`
	Finished *time.Time `json:"finished_at,omitempty"`
}

// Progress returns the latest backfill's progress (nil: none yet).
func (s *Service) Progress() *BackfillStatus { return s.progress.Load() }

// CoverHistory computes a computed trait over every profile's whole
// history (Run does it for each new definition).
func (s *Service) CoverHistory(ctx context.Context, name string) {
	st := &BackfillStatus{Trait: name, State: "running", Started: s.Now().UTC()}
	s.progress.Store(st)
	names := map[string]bool{name: true}
	err := s.Reapply(ctx, func(p *portrait.Profile, evs []*portrait.Event) {
		s.Enricher.Backfill(p, evs, names)
	}, func(done int) {
		c := *st
		c.Profiles = done
		st = &c
		s.progress.Store(st)
	})
	c := *st
	fin := s.Now().UTC()
	c.Finished, c.State = &fin, "done"
	if err != nil {
		c.State, c.Error = "failed", portrait.ErrorMessage(err)
		if ctx.Err() == nil {
			s.Log.Error("computing a trait over history", "trait", name, "err", err)
		}
	}
	s.progress.Store(&c)
}

// NewService returns a service.
func NewService(store Store, en *Enricher) *Service {
	return &Service{Store: store, Enricher: en, Now: time.Now, Log: slog.Default(), pending: make(chan string, 64)}
}

// Load activates the stored definitions, schema and boundaries.
func (s *Service) Load(ctx context.Context) error {
	fields, err := s.Store.SchemaFields(ctx)
	if err != nil {
		return err
	}
	s.Enricher.Schema.Load(fields)
	// Defaults re-applied by Load are stored now, not at the first flush.
	if err := s.FlushSchema(ctx); err != nil {
		return err
	}
	defs, err := s.Store.TraitDefinitions(ctx)
	if err != nil {
		return err
	}
	if err := s.Enricher.SetDefinitions(defs); err != nil {
		return err
	}
	b, err := s.Store.LatestBoundaries(ctx)
	if err != nil {
		return err
	}
	s.Enricher.SetBoundaries(b)
	return nil
}

// Reload reads the observed schema, the definitions and the RFM
// boundaries again because another node changed them (several nodes over
// a shared store): the applier observes the traits, and an api node needs
// their types to compile a tag over them. A trait
// that is new or changed is queued to be computed over the past, as Define
// queues it: Run performs it where it runs (the node applying events). It
// reports whether the definitions changed.
func (s *Service) Reload(ctx context.Context) (bool, error) {
	fields, err := s.Store.SchemaFields(ctx)
	if err != nil {
		return false, err
	}
	s.Enricher.Schema.Load(fields)
	defs, err := s.Store.TraitDefinitions(ctx)
	if err != nil {
		return false, err
	}
	b, err := s.Store.LatestBoundaries(ctx)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b != nil && !sameJSON(b, s.Enricher.Boundaries()) {
		s.Enricher.SetBoundaries(b)
	}
	held := map[string]Definition{}
	for _, d := range s.Enricher.Definitions() {
		held[d.Name] = d
	}
	var fresh []string
	for _, d := range defs {
		cur, ok := held[d.Name]
		// CreatedAt is the defining node's clock, kept as stored; the
		// rest says what the trait computes.
		cur.CreatedAt = d.CreatedAt
		if !ok || !sameJSON(cur, d) {
			fresh = append(fresh, d.Name)
		}
	}
	if len(fresh) == 0 && len(defs) == len(held) {
		return false, nil
	}
	if err := s.Enricher.SetDefinitions(defs); err != nil {
		return false, err
	}
	if s.Changed != nil {
		s.Changed()
	}
	if s.Reapply != nil {
		for _, name := range fresh {
			select {
			case s.pending <- name:
				s.progress.Store(&BackfillStatus{Trait: name, State: "queued", Started: s.Now().UTC()})
			default:
				s.Log.Warn("too many trait backfills queued; this one counts from now", "trait", name)
			}
		}
	}
	return true, nil
}

// sameJSON compares two values by their JSON encoding.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Define validates and stores a computed trait (replacing one of the same
// name) and activates it. It accumulates from the events processed from
// now on; `portrait rebuild` gives it the history before.
func (s *Service) Define(ctx context.Context, d Definition) (Definition, error) {
	d, err := d.Validate()
	if err != nil {
		return d, err
	}
	d.CreatedAt = s.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	defs := s.Enricher.Definitions()
	replaced := false
	for i := range defs {
		if defs[i].Name == d.Name {
			defs[i], replaced = d, true
		}
	}
	if !replaced {
		defs = append(defs, d)
	}
	// Activate first: SetDefinitions re-checks the whole set.
	if err := s.Enricher.SetDefinitions(defs); err != nil {
		return d, err
	}
	if err := s.Store.SaveTraitDefinition(ctx, d); err != nil {
		return d, err
	}
	if s.Changed != nil {
		s.Changed()
	}
	if s.Reapply != nil {
		select {
		case s.pending <- d.Name: // Run computes it over the past
			s.progress.Store(&BackfillStatus{Trait: d.Name, State: "queued", Started: s.Now().UTC()})
		default:
			s.Log.Warn("too many trait backfills queued; this one counts from now", "trait", d.Name)
		}
	}
	return d, nil
}

// Delete removes a computed trait; Finish drops it from profiles.
func (s *Service) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Store.DeleteTraitDefinition(ctx, name); err != nil {
		return err
	}
	var keep []Definition
	for _, d := range s.Enricher.Definitions() {
		if d.Name != name {
			keep = append(keep, d)
		}
	}
	if err := s.Enricher.SetDefinitions(keep); err != nil {
		return err
	}
	if s.Changed != nil {
		s.Changed()
	}
	return nil
}

// RecomputeRFM computes the population boundaries as of now, stores them,
// and re-scores the customers whose scores they change. Scores depend only
// on a customer's recency, frequency and revenue and on the boundaries, so
// a customer whose stored scores are those the new boundaries give is left
// alone: when the cuts have not moved, nothing is rewritten, and a profile
// that changes is scored against the boundaries in place by the enricher.
//
// Events are applied meanwhile: a profile written after the population was
// read but scored against the boundaries replaced (or none, before the
// first) would keep those scores until the next recomputation. So the
// enricher watches the buyers it scores from before the read (once the
// writes begun earlier have settled) until the new boundaries are in place
// and the writes scored against the old ones have settled, and those are
// re-scored too.
func (s *Service) RecomputeRFM(ctx context.Context) (*Boundaries, error) {
	s.buyersAt.Store(s.Enricher.NewBuyers()) // buyers arriving from here on count towards the next growth
	stop := s.Enricher.WatchBuyers()
	defer stop()
	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	var written func(ctx context.Context) ([]string, error)
	if s.Written != nil {
		w, err := s.Written(ctx)
		if err != nil {
			return nil, err
		}
		written = w
	}
	now := s.Now()
	var pop []scored
	err := s.Each(ctx, func(p *portrait.Profile) error {
		if x, ok := RFMInputOf(p, now); ok {
			pop = append(pop, scored{id: p.ID, in: x, r: storedScore(p, "rfm_r"), f: storedScore(p, "rfm_f"), m: storedScore(p, "rfm_m")})
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	in := make([]RFMInput, len(pop))
	for i, x := range pop {
		in[i] = x.in
	}
	b := NewBoundaries(in, now)
	if b == nil {
		return nil, nil // nobody has bought yet
	}
	if err := s.Store.SaveBoundaries(ctx, b); err != nil {
		return nil, err
	}
	s.Enricher.SetBoundaries(b)
	if err := s.settle(ctx); err != nil {
		return b, err
	}
	touched := stop()
	if written != nil {
		ids, err := written(ctx)
		if err != nil {
			return b, err
		}
		touched = append(touched, ids...)
	}
	if s.Rescore != nil {
		var ids []string
		seen := map[string]bool{}
		for _, x := range pop {
			if r, f, m := b.Score(x.in.Days, x.in.Count, x.in.Revenue); r != x.r || f != x.f || m != x.m {
				ids = append(ids, x.id)
				seen[x.id] = true
			}
		}
		for _, id := range touched {
			if !seen[id] {
				ids = append(ids, id)
				seen[id] = true
			}
		}
		if len(ids) > 0 {
			if _, err := s.Rescore(ctx, ids); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	if s.Refresh != nil {
		if _, err := s.Refresh(ctx); err != nil {
			return b, err
		}
	}
	return b, nil
}

// settle waits for the profile writes under way (see Settle).
func (s *Service) settle(ctx context.Context) error {
	if s.Settle == nil {
		return nil
	}
	return s.Settle(ctx)
}

// scored is a customer's RFM input and the scores its profile holds (0:
// none yet).
type scored struct {
	id      string
	in      RFMInput
	r, f, m int
}

func storedScore(p *portrait.Profile, name string) int {
	t, ok := p.Traits[name]
	if !ok || t.Source != SourceComputed {
		return 0
	}
	v, _ := toFloat(t.Value)
	return int(v)
}

// RFMStale reports whether the boundaries should be recomputed now: there
// are buyers and no boundaries, or the buyers have grown by rfmGrowth since
// the boundaries were computed. It reads two counters.
func (s *Service) RFMStale() bool {
	grown := s.Enricher.NewBuyers() - s.buyersAt.Load()
	b := s.Enricher.Boundaries()
	if b == nil {
		return grown > 0
	}
	return grown > 0 && grown >= int64((rfmGrowth-1)*max(b.Customers, 1))
}

// RefreshRFM recomputes the boundaries when RFMStale says so and the
// processor is not far behind (or has been for rfmMaxWait); it reports
// whether it did.
func (s *Service) RefreshRFM(ctx context.Context) (bool, error) {
	if !s.RFMStale() {
		s.staleSince = time.Time{}
		return false, nil
	}
	if s.Backlog != nil && s.Backlog() > rfmBacklog {
		now := s.Now()
		if s.staleSince.IsZero() {
			s.staleSince = now
		}
		if now.Sub(s.staleSince) < rfmMaxWait {
			return false, nil
		}
	}
	s.staleSince = time.Time{}
	b, err := s.RecomputeRFM(ctx)
	return b != nil, err
}

// FlushSchema saves the traits typed since the last flush.
func (s *Service) FlushSchema(ctx context.Context) error {
	fs := s.Enricher.Schema.Unsaved()
	if len(fs) == 0 {
		return nil
	}
	if err := s.Store.SaveSchemaFields(ctx, fs); err != nil {
		s.Enricher.Schema.Requeue(fs)
		return err
	}
	return nil
}

// NPS aggregates survey answers.
func (s *Service) NPS(ctx context.Context, q NPSQuery) ([]NPSRow, error) {
	return AggregateNPS(ctx, s.Each, q)
}

// Run schedules the jobs until ctx ends: the schema is saved every few
// seconds, profiles are refreshed (windows expire, stages lapse) every
// refreshEvery, and RFM boundaries recomputed every rfmEvery, at start
// when there are none, and within seconds of the first buyers or of the
// buyers doubling (RefreshRFM).
func (s *Service) Run(ctx context.Context, refreshEvery, rfmEvery time.Duration) {
	flush := time.NewTicker(5 * time.Second)
	refresh := time.NewTicker(refreshEvery)
	rfm := time.NewTicker(rfmEvery)
	defer flush.Stop()
	defer refresh.Stop()
	defer rfm.Stop()
	if s.Enricher.Boundaries() == nil {
		if _, err := s.RecomputeRFM(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("rfm boundaries", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			s.FlushSchema(context.WithoutCancel(ctx))
			return
		case <-flush.C:
			if err := s.FlushSchema(ctx); err != nil {
				s.Log.Error("saving the trait schema", "err", err)
			}
			if ok, err := s.RefreshRFM(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("rfm boundaries", "err", err)
			} else if ok {
				s.Log.Info("rfm boundaries recomputed: the buyers have grown", "customers", s.Enricher.Boundaries().Customers)
			}
		case <-refresh.C:
			if n, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("refreshing profiles", "err", err)
			} else if n > 0 {
				s.Log.Info("refreshed profiles as of now", "changed", n)
			}
		case <-rfm.C:
			if _, err := s.RecomputeRFM(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("rfm boundaries", "err", err)
			}
		case name := <-s.pending:
			s.CoverHistory(ctx, name)
		}
	}
}
