// Package jobs runs the analyses over the store and writes their results
// back onto the profiles: lifetime value (BG/NBD + Gamma-Gamma), basket rules
// and next-best products (FP-Growth), clusters (k-means with automatic k) and
// purchase/churn propensity (logistic regression). Results go back through
// the event log as events from the source "analytics/<kind>" whose message
// ids name the run, so every trait they set says which model and which run
// produced it, a rebuild reproduces them, and a newer run supersedes an
// older one by event time. Runs are recorded with their parameters, metrics
// and duration.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Kinds of runs.
const (
	CLV      = "clv"
	FPGrowth = "fpgrowth"
	KMeans   = "kmeans"
	Churn    = "churn"
)

// Kinds lists every kind, in the order a schedule runs them.
var Kinds = []string{CLV, FPGrowth, KMeans, Churn}

// Run states.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Run is one execution of an analysis.
type Run struct {
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Status  string         `json:"status"`
	Params  map[string]any `json:"params"`
	Metrics map[string]any `json:"metrics,omitempty"`
	// Holdout is a CLV run's check of its forecast against what happened
	// after a cut-off; Evaluation a churn run's on held-out customers.
	Holdout    *HoldoutCheck `json:"holdout,omitempty"`
	Evaluation *Evaluation   `json:"evaluation,omitempty"`
	Error      string        `json:"error,omitempty"`
	Profiles   int           `json:"profiles_written"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt *time.Time    `json:"finished_at,omitempty"`
	DurationMS int64         `json:"duration_ms"`
}

// Store is what the analyses read.
type Store interface {
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	// TrackEvents calls fn for every track event of that name with the
	// profile it landed on.
	TrackEvents(ctx context.Context, name string, fn func(profileID string, e *portrait.Event) error) error
}

// RunStore records runs.
type RunStore interface {
	SaveRun(ctx context.Context, r *Run) error
	Run(ctx context.Context, id string) (*Run, error)
	Runs(ctx context.Context, kind string, limit int) ([]*Run, error)
}

// Runner runs analyses; it owns the goroutines of asynchronous runs and of
// the schedule.
type Runner struct {
	Store Store
	Runs  RunStore
	Log   portrait.EventLog
	Now   portrait.Clock
	Logf  *slog.Logger
	// Purchase is the track event that is a purchase, and AmountProps the
	// properties holding its amount (first present wins).
	Purchase    string
	AmountProps []string
	// Fence, when set, is asked right before each scheduled run; an error
	// skips it. Over a shared store it says whether this node still holds
	// the jobs lease in the store (a node paused past its lease runs none).
	Fence func(ctx context.Context) error

	wg sync.WaitGroup
	mu sync.Mutex
	on map[string]bool // kinds running now
	// skipped: when a scheduled run of a kind last found too little data
	// (nothing was recorded, so the run list cannot say).
	skipped map[string]time.Time
}

// NewRunner returns a runner with the defaults of the tracking plan.
func NewRunner(store Store, runs RunStore, log portrait.EventLog) *Runner {
	return &Runner{Store: store, Runs: runs, Log: log, Now: time.Now, Logf: slog.Default(),
		Purchase: "Order Completed", AmountProps: []string{"revenue", "total", "amount"}, on: map[string]bool{}, skipped: map[string]time.Time{}}
}

// Params of a run: numbers and strings by name, each kind reading its own.
type Params map[string]any

func (p Params) float(name string, def float64) (float64, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	}
	return 0, portrait.Errorf(portrait.EINVALID, "parameter %s must be a number", name)
}

func newRunID(kind string, now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return kind + "-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// begin validates a run, claims its kind (one run of a kind at a time) and,
// when record is set, records it as running.
func (r *Runner) begin(ctx context.Context, kind string, params Params, record bool) (*Run, error) {
	if !validKind(kind) {
		return nil, portrait.Errorf(portrait.EINVALID, "unknown analysis %q (one of %s)", kind, strings.Join(Kinds, ", "))
	}
	r.mu.Lock()
	if r.on[kind] {
		r.mu.Unlock()
		return nil, portrait.Errorf(portrait.ECONFLICT, "a %s run is already running", kind)
	}
	r.on[kind] = true
	r.mu.Unlock()
	run := &Run{ID: newRunID(kind, r.Now()), Kind: kind, Status: Running, Params: params, StartedAt: r.Now().UTC()}
	if !record {
		return run, nil
	}
	if err := r.Runs.SaveRun(ctx, run); err != nil {
		r.done(kind)
		return nil, err
	}
	return run, nil
}

// Start begins a run in the background and returns it as recorded
// (status running).
func (r *Runner) Start(ctx context.Context, kind string, params Params) (*Run, error) {
	run, err := r.begin(ctx, kind, params, true)
	if err != nil {
		return nil, err
	}
	cp := *run
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.done(kind)
		r.execute(context.WithoutCancel(ctx), run, r.load)
	}()
	return &cp, nil
}

// RunNow runs an analysis and returns when it is done.
func (r *Runner) RunNow(ctx context.Context, kind string, params Params) (*Run, error) {
	run, err := r.begin(ctx, kind, params, true)
	if err != nil {
		return nil, err
	}
	defer r.done(kind)
	r.execute(ctx, run, r.load)
	if run.Status == Failed {
		return run, portrait.Errorf(portrait.EINVALID, "%s", run.Error)
	}
	return run, nil
}

// RunEachNow runs the analyses of kinds one after another, as RunNow does,
// over one reading of the customers' purchases and profiles taken before
// the first: every analysis reads the same data, and reading it is most of
// a small run's cost (the demo's four runs spent 5 of their 10 s of CPU
// reading it four times). The analyses' own results do not change what
// they read (purchases and each profile's first identifier), so the runs
// answer as they would one by one, as of the moment of the reading. A kind
// that cannot run has its error in errs at its place.
func (r *Runner) RunEachNow(ctx context.Context, kinds []string) (runs []*Run, errs []error) {
	var (
		once   bool
		loaded *customers
		lerr   error
	)
	load := func(ctx context.Context) (*customers, error) {
		if !once {
			once = true
			loaded, lerr = r.load(ctx)
		}
		return loaded, lerr
	}
	for _, kind := range kinds {
		run, err := r.begin(ctx, kind, nil, true)
		if err == nil {
			func() {
				defer r.done(kind)
				r.execute(ctx, run, load)
			}()
			if run.Status == Failed {
				err = portrait.Errorf(portrait.EINVALID, "%s", run.Error)
			}
		}
		runs, errs = append(runs, run), append(errs, err)
	}
	return runs, errs
}

func (r *Runner) done(kind string) {
	r.mu.Lock()
	delete(r.on, kind)
	r.mu.Unlock()
}

// Wait waits for background runs to finish.
func (r *Runner) Wait() { r.wg.Wait() }

func validKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// loader reads the customers an analysis works on.
type loader func(context.Context) (*customers, error)

func (r *Runner) execute(ctx context.Context, run *Run, load loader) {
	r.analyse(ctx, run, load)
	if err := r.Runs.SaveRun(ctx, run); err != nil {
		r.Logf.Error("cannot record analytics run", "run", run.ID, "err", err)
	}
}

// analyse runs the analysis and sets the run's outcome.
func (r *Runner) analyse(ctx context.Context, run *Run, load loader) error {
	start := time.Now()
	if run.Params == nil {
		run.Params = Params{}
	}
	var err error
	switch run.Kind {
	case CLV:
		err = r.clv(ctx, run, load)
	case FPGrowth:
		err = r.fpgrowth(ctx, run, load)
	case KMeans:
		err = r.kmeans(ctx, run, load)
	case Churn:
		err = r.churn(ctx, run, load)
	}
	fin := r.Now().UTC()
	run.FinishedAt = &fin
	run.DurationMS = time.Since(start).Milliseconds()
	run.Status = Succeeded
	if err != nil {
		run.Status, run.Error = Failed, portrait.ErrorMessage(err)
		if portrait.ErrorCode(err) == portrait.EINTERNAL {
			r.Logf.Error("analytics run failed", "run", run.ID, "err", err)
		}
	}
	return err
}

// scheduled runs an analysis for the schedule. Its parameters are the
// defaults, so an invalid outcome means the data does not support the
// analysis yet (no buyers, no repeat purchase, too few customers): that is
// the normal state of a new server, so nothing is recorded and nothing is
// logged above debug; the schedule tries again later. Other failures are
// recorded as failed runs. The run is recorded once it is done, not while
// it runs (a run with too little data must leave nothing behind).
func (r *Runner) scheduled(ctx context.Context, kind string) {
	run, err := r.begin(ctx, kind, nil, false)
	if err != nil {
		return // a run of this kind is under way
	}
	defer r.done(kind)
	if err := r.analyse(ctx, run, r.load); portrait.ErrorCode(err) == portrait.EINVALID {
		r.mu.Lock()
		r.skipped[kind] = r.Now()
		r.mu.Unlock()
		r.Logf.Debug("scheduled analysis skipped: not enough data yet", "kind", kind, "reason", run.Error)
		return
	}
	if err := r.Runs.SaveRun(ctx, run); err != nil {
		r.Logf.Error("cannot record analytics run", "run", run.ID, "err", err)
	}
}

// Schedule runs each kind whenever its last run is older than its interval
// (a failed one after at most an hour), until ctx ends.
func (r *Runner) Schedule(ctx context.Context, every map[string]time.Duration, tick time.Duration) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			for _, kind := range Kinds {
				iv, ok := every[kind]
				if !ok || iv <= 0 {
					continue
				}
				last, err := r.Runs.Runs(ctx, kind, 1)
				if err != nil {
					continue
				}
				if len(last) > 0 {
					wait := iv
					if last[0].Status == Failed {
						wait = min(iv, time.Hour) // try again soon
					}
					if r.Now().Sub(last[0].StartedAt) < wait {
						continue
					}
				}
				r.mu.Lock()
				skippedAt, wasSkipped := r.skipped[kind]
				r.mu.Unlock()
				if wasSkipped && r.Now().Sub(skippedAt) < min(iv, time.Hour) {
					continue // too little data an hour ago: data arrives, look again later
				}
				if r.Fence != nil {
					if err := r.Fence(ctx); err != nil {
						r.Logf.Warn("scheduled analysis not run: the jobs are not this node's", "kind", kind, "err", err)
						continue
					}
				}
				r.scheduled(ctx, kind)
				if ctx.Err() != nil {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// purchase is one order of a profile.
type purchase struct {
	at     time.Time
	amount float64
	items  []string
}

// customers are the profiles with purchases, keyed by profile id, each
// with its strongest identifier (to address the write-back).
type customers struct {
	ids       []string
	purchases map[string][]purchase
	anchor    map[string]portrait.Identifier
	profiles  map[string]*portrait.Profile
}

func (r *Runner) load(ctx context.Context) (*customers, error) {
	c := &customers{purchases: map[string][]purchase{}, anchor: map[string]portrait.Identifier{}, profiles: map[string]*portrait.Profile{}}
	err := r.Store.TrackEvents(ctx, r.Purchase, func(pid string, e *portrait.Event) error {
		var props map[string]any
		if len(e.Properties) > 0 {
			json.Unmarshal(e.Properties, &props)
		}
		p := purchase{at: e.Timestamp}
		for _, name := range r.AmountProps {
			if v, ok := props[name].(float64); ok {
				p.amount = v
				break
			}
		}
		if prods, ok := props["products"].([]any); ok {
			for _, x := range prods {
				if m, ok := x.(map[string]any); ok {
					name, _ := m["name"].(string)
					if name == "" {
						name, _ = m["sku"].(string)
					}
					if name != "" {
						p.items = append(p.items, name)
					}
				}
			}
		}
		c.purchases[pid] = append(c.purchases[pid], p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = r.Store.AllProfiles(ctx, func(p *portrait.Profile) error {
		if len(p.Identifiers) > 0 {
			c.anchor[p.ID] = p.Identifiers[0]
			if _, ok := c.purchases[p.ID]; ok {
				c.profiles[p.ID] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for pid := range c.purchases {
		if _, ok := c.anchor[pid]; ok {
			c.ids = append(c.ids, pid)
		} else {
			delete(c.purchases, pid) // merged away since: its events are counted on the survivor
		}
	}
	sort.Strings(c.ids)
	if len(c.ids) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no profile has a %q event yet", r.Purchase)
	}
	return c, nil
}

// writeBack appends one event per profile carrying the run's traits.
func (r *Runner) writeBack(ctx context.Context, run *Run, c *customers, traits map[string]map[string]any) error {
	now := r.Now().UTC()
	ids := make([]string, 0, len(traits))
	for pid := range traits {
		ids = append(ids, pid)
	}
	sort.Strings(ids)
	batch := make([]*portrait.Event, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := r.Log.Append(ctx, batch, nil)
		batch = batch[:0]
		return err
	}
	for _, pid := range ids {
		anchor, ok := c.anchor[pid]
		if !ok {
			continue
		}
		tr, err := json.Marshal(traits[pid])
		if err != nil {
			return portrait.Wrap(err, "cannot encode results")
		}
		cx, _ := json.Marshal(map[string]any{"externalIds": []map[string]string{{"id": anchor.Value, "type": anchor.Type}}, "run": run.ID})
		batch = append(batch, &portrait.Event{MessageID: "run-" + run.ID + "-" + pid, Type: portrait.EventIdentify, Source: "analytics/" + run.Kind,
			Traits: tr, Context: cx, Timestamp: now, ReceivedAt: now})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
		run.Profiles++
	}
	return flush()
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5*sign(x))) / p
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}
