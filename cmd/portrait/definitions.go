package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/delivery"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// Definitions across nodes (issue 17). Every node holds the definitions in
// memory: tags and computed traits (the applier's enrichers), segments and
// webhooks (api nodes), classification levels (every node that masks or
// seals). Over a shared store the node that changes one raises that kind's
// version in the store (configFeed.BumpConfig, which notifies); every node
// follows the versions and reads the changed kinds again. The applier's
// tag and trait reloads queue the backfills a change needs, so a tag
// defined through an api node is evaluated over existing profiles by the
// node that applies events.

// configFeed is what the definitions follower needs of a shared store.
type configFeed interface {
	BumpConfig(ctx context.Context, kind string) error
	ConfigVersions(ctx context.Context) (map[string]int64, error)
}

// The kinds of definition, in the order they are read again: computed
// traits before tags (tags compile against the traits' schema).
const (
	defTraits          = "traits"
	defTags            = "tags"
	defSegments        = "segments"
	defWebhooks        = "webhooks"
	defClassifications = "classifications"
	// Scheduled deliveries are read from the store at each check; a change
	// wakes the node running them (the jobs lease), so a delivery created
	// on another node runs at once, as on one node.
	defDeliveries = "deliveries"
)

var defKinds = []string{defTraits, defTags, defSegments, defWebhooks, defClassifications, defDeliveries}

// definitionsEvery is how often a node looks at the versions when no
// notification woke it (a notification lost with a dropped connection).
const definitionsEvery = 2 * time.Second

// defFollower reads the changed kinds of definition again.
type defFollower struct {
	Feed   configFeed
	Notify func() <-chan struct{} // the store's notifications (any kind)
	Log    *slog.Logger
	reload map[string]func(context.Context) (bool, error)
	seen   map[string]int64
}

// Skim takes the current versions as seen: called before the definitions
// are loaded, so a change made during the load is read again after it.
func (f *defFollower) Skim(ctx context.Context) error {
	v, err := f.Feed.ConfigVersions(ctx)
	if err != nil {
		return err
	}
	f.seen = v
	return nil
}

// Check reads again each kind whose version moved; a kind that fails to
// load keeps its old version seen, so the next check tries again.
func (f *defFollower) Check(ctx context.Context) error {
	v, err := f.Feed.ConfigVersions(ctx)
	if err != nil {
		return err
	}
	for _, kind := range defKinds {
		if v[kind] == f.seen[kind] {
			continue
		}
		if fn := f.reload[kind]; fn != nil {
			changed, err := fn(ctx)
			if err != nil {
				return err
			}
			if changed {
				f.Log.Info("definitions changed on another node: read again", "kind", kind, "version", v[kind])
			}
		}
		f.seen[kind] = v[kind]
	}
	return nil
}

// Run checks at every notification (at most every quarter second: the log
// notifies at every append) and every definitionsEvery, until ctx ends.
func (f *defFollower) Run(ctx context.Context) {
	t := time.NewTicker(definitionsEvery)
	defer t.Stop()
	for {
		if err := f.Check(ctx); err != nil && ctx.Err() == nil {
			f.Log.Warn("definitions not read again", "err", err)
		}
		var woken <-chan struct{}
		if f.Notify != nil {
			woken = f.Notify()
		}
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-t.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// bumpConfig tells the other nodes that a kind of definition changed. The
// change itself is stored; a failure here only delays the others until
// the next change of that kind, so it is logged, not returned.
func (a *App) bumpConfig(kind string) {
	if a.defs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.defs.Feed.BumpConfig(ctx, kind); err != nil {
		a.Log.Warn("other nodes not told of a definition change", "kind", kind, "err", err)
	}
}

// openDefinitions prepares the follower on a shared store that has a
// configuration feed; before the definitions are loaded (Skim).
func (a *App) openDefinitions(ctx context.Context) error {
	feed, ok := a.DB.(configFeed)
	if !a.shared || !ok {
		return nil
	}
	if q, ok := a.DB.(rewriteQueue); ok {
		a.rewrites = q
	}
	a.defs = &defFollower{Feed: feed, Notify: a.DB.Appended, Log: a.Log, reload: map[string]func(context.Context) (bool, error){}}
	return a.defs.Skim(ctx)
}

// wireDefinitionReloads registers what each kind reloads, once the
// services are wired.
func (a *App) wireDefinitionReloads() {
	f := a.defs
	if f == nil {
		return
	}
	if e := a.Enrich; e != nil {
		f.reload[defTraits] = e.Traits.Reload
		f.reload[defTags] = e.Tags.Reload
	}
	if s := a.HTTP.Segments; s != nil {
		f.reload[defSegments] = s.Sync
		if s.Webhooks != nil {
			f.reload[defWebhooks] = func(ctx context.Context) (bool, error) { return true, s.Webhooks.Load(ctx) }
		}
	}
	if d := a.HTTP.Deliveries; d != nil {
		f.reload[defDeliveries] = func(context.Context) (bool, error) { d.Wake(); return true, nil }
	}
	if c := a.HTTP.Classifier; c != nil {
		f.reload[defClassifications] = func(ctx context.Context) (bool, error) { return true, loadClassifications(ctx, a.DB, c) }
	}
}

// loadClassifications sets the stored explicit levels on c (levels are
// only ever set, never removed, so setting them all is the whole state).
func loadClassifications(ctx context.Context, db Store, c *access.Classifier) error {
	set, err := classifications(ctx, db)
	if err != nil {
		return err
	}
	for _, x := range set {
		l, err := access.ParseLevel(x[2])
		if err != nil {
			return err
		}
		c.Set(x[0], x[1], l)
	}
	return nil
}

// The stores handed to the services: the writes that change a definition
// also tell the other nodes (a.bumpConfig; nothing without a shared store).

type notifyingTags struct {
	tag.Store
	a *App
}

func (s notifyingTags) SaveTag(ctx context.Context, d *tag.Definition) error {
	if err := s.Store.SaveTag(ctx, d); err != nil {
		return err
	}
	s.a.bumpConfig(defTags)
	return nil
}

type notifyingTraits struct {
	traits.Store
	a *App
}

func (s notifyingTraits) SaveTraitDefinition(ctx context.Context, d traits.Definition) error {
	if err := s.Store.SaveTraitDefinition(ctx, d); err != nil {
		return err
	}
	s.a.bumpConfig(defTraits)
	return nil
}

func (s notifyingTraits) DeleteTraitDefinition(ctx context.Context, name string) error {
	if err := s.Store.DeleteTraitDefinition(ctx, name); err != nil {
		return err
	}
	s.a.bumpConfig(defTraits)
	return nil
}

// SaveSchemaFields: the applier saves the traits it observed (and an
// admin their descriptions); the api nodes compile tags against them.
func (s notifyingTraits) SaveSchemaFields(ctx context.Context, fields []traits.Field) error {
	if err := s.Store.SaveSchemaFields(ctx, fields); err != nil {
		return err
	}
	s.a.bumpConfig(defTraits)
	return nil
}

func (s notifyingTraits) SaveBoundaries(ctx context.Context, b *traits.Boundaries) error {
	if err := s.Store.SaveBoundaries(ctx, b); err != nil {
		return err
	}
	s.a.bumpConfig(defTraits)
	return nil
}

type notifyingSegments struct {
	segment.Store
	a *App
}

func (s notifyingSegments) SaveSegment(ctx context.Context, d *segment.Definition) error {
	if err := s.Store.SaveSegment(ctx, d); err != nil {
		return err
	}
	s.a.bumpConfig(defSegments)
	return nil
}

func (s notifyingSegments) DeleteSegment(ctx context.Context, id string) error {
	if err := s.Store.DeleteSegment(ctx, id); err != nil {
		return err
	}
	s.a.bumpConfig(defSegments)
	return nil
}

func (s notifyingSegments) SaveWebhook(ctx context.Context, w *segment.Webhook) error {
	if err := s.Store.SaveWebhook(ctx, w); err != nil {
		return err
	}
	s.a.bumpConfig(defWebhooks)
	return nil
}

func (s notifyingSegments) DeleteWebhook(ctx context.Context, id string) error {
	if err := s.Store.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	s.a.bumpConfig(defWebhooks)
	return nil
}

type notifyingDeliveries struct {
	delivery.Store
	a *App
}

func (s notifyingDeliveries) SaveDelivery(ctx context.Context, d *delivery.Delivery) error {
	if err := s.Store.SaveDelivery(ctx, d); err != nil {
		return err
	}
	s.a.bumpConfig(defDeliveries)
	return nil
}

func (s notifyingDeliveries) DeleteDelivery(ctx context.Context, id string) error {
	if err := s.Store.DeleteDelivery(ctx, id); err != nil {
		return err
	}
	s.a.bumpConfig(defDeliveries)
	return nil
}

type notifyingClassifications struct {
	porthttp.ClassificationStore
	a *App
}

func (s notifyingClassifications) SetClassification(ctx context.Context, kind, name, level string) error {
	if err := s.ClassificationStore.SetClassification(ctx, kind, name, level); err != nil {
		return err
	}
	s.a.bumpConfig(defClassifications)
	return nil
}
