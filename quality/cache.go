package quality

import (
	"context"
	"sync"
	"time"
)

// Versioner tells whether the data a report reads has changed: equal
// tokens from two calls mean nothing was committed in between.
type Versioner interface {
	DataVersion(ctx context.Context) (string, error)
}

// ContentVersioner is a Versioner keyed on what reports read (the log,
// the quarantine, the imports, the profiles), not on every commit: its
// token stays put when sessions or audit records are written. Caches
// prefer it where the store has it.
type ContentVersioner interface {
	ContentVersion(ctx context.Context) (string, error)
}

// contentVersion adapts a ContentVersioner to a Versioner.
type contentVersion struct{ ContentVersioner }

func (c contentVersion) DataVersion(ctx context.Context) (string, error) {
	return c.ContentVersion(ctx)
}

// VersionOf returns what a cache over x should key on: its content
// version, else its data version; nil when x has neither.
func VersionOf(x any) Versioner {
	if c, ok := x.(ContentVersioner); ok {
		return contentVersion{c}
	}
	if v, ok := x.(Versioner); ok {
		return v
	}
	return nil
}

// Freshness says how current a served report is.
type Freshness struct {
	// DataVersion is the store's version the report was computed at; the
	// report is served from the cache only while the store still has it,
	// so a served report always reflects all committed data.
	DataVersion string    `json:"data_version"`
	ComputedAt  time.Time `json:"computed_at"`
	Cached      bool      `json:"cached"`      // served without recomputing
	AgeSeconds  float64   `json:"age_seconds"` // since it was computed
	// Stale: data was committed since it was computed and a newer report
	// is being built; the HTTP server serves such a report for at most
	// MaxStaleSeconds (its answer cache; 0 here: Cache never serves one).
	Stale           bool    `json:"stale"`
	MaxStaleSeconds float64 `json:"max_stale_seconds,omitempty"`
}

// Cache serves the report computed at the store's current data version,
// recomputing it only when something was committed since (an import, an
// event, a merge). Building the report reads every profile; the console
// asks for it on every visit of two pages.
type Cache struct {
	Store    Store
	Versions Versioner

	mu      sync.Mutex // held while computing: concurrent requests wait for one build
	version string
	top     int
	rep     *Report
}

// Report returns the current report with its freshness.
func (c *Cache) Report(ctx context.Context, now time.Time, top int) (*Report, error) {
	if top <= 0 {
		top = 10
	}
	// Read the version before building: a commit during the build
	// changes it, so the next request rebuilds rather than keeping a
	// report that may miss that commit.
	v, err := c.Versions.DataVersion(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cached := c.rep != nil && c.version == v && c.top == top
	if !cached {
		rep, err := Build(ctx, c.Store, now, top)
		if err != nil {
			return nil, err
		}
		c.rep, c.version, c.top = rep, v, top
	}
	out := *c.rep // the cached report is shared: only the copy gets this request's freshness
	out.Freshness = &Freshness{
		DataVersion: c.version,
		ComputedAt:  c.rep.GeneratedAt,
		Cached:      cached,
		AgeSeconds:  now.Sub(c.rep.GeneratedAt).Seconds(),
	}
	return &out, nil
}
