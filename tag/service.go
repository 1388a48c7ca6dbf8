package tag

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// Store keeps tag definitions with every version. Definitions are
// configuration, not derivable from events, so they live beside the log.
type Store interface {
	// SaveTag stores d as the next version of its name and sets d.Version.
	SaveTag(ctx context.Context, d *Definition) error
	// Tags returns the latest version of each tag, deleted ones included.
	Tags(ctx context.Context) ([]Definition, error)
	TagVersions(ctx context.Context, name string) ([]Definition, error)
}

// Backfill reports the re-evaluation of existing profiles after a change.
type Backfill struct {
	State      string    `json:"state"` // idle, running, done, failed
	Reason     string    `json:"reason,omitempty"`
	Done       int64     `json:"done"`
	Total      int64     `json:"total"`
	Changed    int       `json:"changed"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Service defines tags and backfills profiles when rules change.
type Service struct {
	Store    Store
	Enricher *Enricher
	Schema   *traits.Schema
	// Refresh re-runs every enricher's Finish on every profile
	// (profile.Processor.Refresh); Count counts profiles.
	Refresh func(ctx context.Context) (int, error)
	Count   func(ctx context.Context) (int, error)
	Now     portrait.Clock
	Log     *slog.Logger

	mu       sync.Mutex
	defs     map[string]Definition
	progress Backfill
	kick     chan string
}

// NewService returns a service; call Load, then Run in a goroutine.
func NewService(store Store, en *Enricher, schema *traits.Schema) *Service {
	return &Service{Store: store, Enricher: en, Schema: schema, Now: time.Now, Log: slog.Default(),
		defs: map[string]Definition{}, progress: Backfill{State: "idle"}, kick: make(chan string, 1)}
}

// Load reads the stored tags and activates them. A stored tag that no
// longer compiles (a trait it used was removed) is logged and left out.
func (s *Service) Load(ctx context.Context) error {
	defs, err := s.Store.Tags(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range defs {
		s.defs[d.Name] = d
	}
	s.activate()
	return nil
}

// Reload reads the definitions again because another node changed them
// (several nodes over a shared store): a tag whose stored version differs
// from the one held replaces it, the enricher is recompiled, and a
// backfill is requested, which runs where Run runs (the node applying
// events). It reports whether anything changed.
func (s *Service) Reload(ctx context.Context) (bool, error) {
	defs, err := s.Store.Tags(ctx)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, d := range defs {
		if cur, ok := s.defs[d.Name]; !ok || cur.Version != d.Version {
			s.defs[d.Name] = d
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return false, nil
	}
	sort.Strings(names)
	s.activate()
	s.request("tags changed on another node: " + strings.Join(names, ", "))
	return true, nil
}

// activate compiles the current definitions into the enricher; s.mu held.
func (s *Service) activate() {
	types := s.Schema.Types()
	var cs []*Compiled
	for _, d := range s.defs {
		if d.Deleted {
			continue
		}
		c, err := Compile(d, types)
		if err != nil {
			s.Log.Warn("tag no longer compiles; it is not evaluated", "tag", d.Name, "err", portrait.ErrorMessage(err))
			continue
		}
		cs = append(cs, c)
	}
	s.Enricher.SetTags(cs, types)
}

// Define checks and stores d as a new version, activates it and starts a
// backfill of existing profiles. Invalid expressions are EINVALID errors.
func (s *Service) Define(ctx context.Context, d Definition) (Definition, error) {
	c, err := Compile(d, s.Schema.Types())
	if err != nil {
		return d, err
	}
	d = c.Definition
	d.Deleted = false
	d.UpdatedAt = s.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.defs[d.Name]; ok && !cur.Deleted && cur.Expression == d.Expression && cur.Dimension == d.Dimension &&
		cur.Category == d.Category && cur.NameZh == d.NameZh && cur.NameEn == d.NameEn && cur.Description == d.Description {
		return cur, nil // unchanged: no new version, no backfill
	}
	if err := s.Store.SaveTag(ctx, &d); err != nil {
		return d, err
	}
	s.defs[d.Name] = d
	s.activate()
	s.request("tag " + d.Name + " changed")
	return d, nil
}

// Delete retires a tag (a new, deleted version) and backfills.
func (s *Service) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.defs[name]
	if !ok || cur.Deleted {
		return portrait.Errorf(portrait.ENOTFOUND, "no tag %q", name)
	}
	cur.Deleted = true
	cur.UpdatedAt = s.Now().UTC()
	if err := s.Store.SaveTag(ctx, &cur); err != nil {
		return err
	}
	s.defs[name] = cur
	s.activate()
	s.request("tag " + name + " deleted")
	return nil
}

// Reactivate recompiles the tags against the current schema (after trait
// definitions change).
func (s *Service) Reactivate() {
	s.mu.Lock()
	s.activate()
	s.mu.Unlock()
}

// List returns the active tags by name.
func (s *Service) List() []Definition {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Definition, 0, len(s.defs))
	for _, d := range s.defs {
		if !d.Deleted {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Versions returns every version of a tag, oldest first.
func (s *Service) Versions(ctx context.Context, name string) ([]Definition, error) {
	vs, err := s.Store.TagVersions(ctx, name)
	if err == nil && len(vs) == 0 {
		err = portrait.Errorf(portrait.ENOTFOUND, "no tag %q", name)
	}
	return vs, err
}

// Category groups tags in the taxonomy.
type Category struct {
	Name string       `json:"name"`
	Tags []Definition `json:"tags"`
}

// Dimension is the top level of the taxonomy.
type Dimension struct {
	Name       string     `json:"name"`
	Categories []Category `json:"categories"`
}

// Taxonomy arranges the active tags as dimension → category → tag, with
// every dimension listed.
func (s *Service) Taxonomy() []Dimension {
	by := map[string]map[string][]Definition{}
	for _, d := range s.List() {
		if by[d.Dimension] == nil {
			by[d.Dimension] = map[string][]Definition{}
		}
		by[d.Dimension][d.Category] = append(by[d.Dimension][d.Category], d)
	}
	out := make([]Dimension, 0, len(traits.Dimensions))
	for _, dim := range traits.Dimensions {
		x := Dimension{Name: dim, Categories: []Category{}}
		var cats []string
		for c := range by[dim] {
			cats = append(cats, c)
		}
		sort.Strings(cats)
		for _, c := range cats {
			x.Categories = append(x.Categories, Category{Name: c, Tags: by[dim][c]})
		}
		out = append(out, x)
	}
	return out
}

// Progress reports the latest backfill.
func (s *Service) Progress() Backfill {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.progress
	if b.State == "running" {
		b.Done = min(s.Enricher.Finishes.Load()-b.Done, b.Total)
	}
	return b
}

// request asks Run for a backfill; requests made while one runs coalesce
// into one more run.
func (s *Service) request(reason string) {
	select {
	case s.kick <- reason:
	default:
	}
}

// Run performs the requested backfills until ctx ends.
func (s *Service) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case reason := <-s.kick:
			s.backfill(ctx, reason)
		}
	}
}

// BackfillNow re-evaluates every profile and waits (the CLI and tests).
func (s *Service) BackfillNow(ctx context.Context, reason string) error {
	return s.backfill(ctx, reason)
}

func (s *Service) backfill(ctx context.Context, reason string) error {
	if s.Refresh == nil {
		return nil
	}
	var total int
	if s.Count != nil {
		total, _ = s.Count(ctx)
	}
	s.mu.Lock()
	// While running, Done holds the evaluation counter at the start;
	// Progress turns it into evaluations since.
	s.progress = Backfill{State: "running", Reason: reason, Done: s.Enricher.Finishes.Load(), Total: int64(total), StartedAt: s.Now().UTC()}
	s.mu.Unlock()
	changed, err := s.Refresh(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress.Done, s.progress.Changed, s.progress.FinishedAt = int64(total), changed, s.Now().UTC()
	s.progress.State = "done"
	if err != nil {
		s.progress.State, s.progress.Error = "failed", portrait.ErrorMessage(err)
		s.Log.Error("tag backfill failed", "reason", reason, "err", err)
	}
	return err
}
