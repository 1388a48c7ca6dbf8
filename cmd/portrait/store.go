package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/erasure"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/quality"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// Store is everything the app asks of its state store: the consumer
// interfaces of the packages it wires, and the rest by name. The embedded
// SQLite store and the PostgreSQL store (issue 17) both satisfy it;
// operations only the embedded store has (backup, restore, the data
// directory's LOCK) are reached through the --store kind, not through here.
type Store interface {
	portrait.EventLog
	portrait.QuarantineStore
	portrait.KeyStore
	portrait.SessionStore
	portrait.AuditLog
	portrait.ProfileReader
	profile.Store
	segment.Store
	tag.Store
	traits.Store
	jobs.Store
	jobs.RunStore
	delivery.Store
	erasure.Store
	erasure.SuppressionStore
	erasure.QuarantineStore
	quality.Store
	porthttp.OverviewStore
	porthttp.ClassificationStore
	importer.RunStore
	linkage.CandidateStore
	profile.CompactStore // event retention (retention.go)
	portrait.RetentionLog

	// The explicit classification levels (密级) set through the API.
	Classifications(ctx context.Context) ([]portrait.Classification, error)

	// The log, beyond portrait.EventLog.
	Appended() <-chan struct{}
	CountEvents(ctx context.Context) (int64, error)
	ReceivedAt(ctx context.Context, seq int64) (time.Time, error)
	ResetState(ctx context.Context) error
	Compact(ctx context.Context) error
	DataVersion(ctx context.Context) (string, error)

	// Profiles and their derived records.
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	AllSegmentBehaviour(ctx context.Context) (map[string]segment.Summary, error)
	SegmentBehaviour(ctx context.Context, p *portrait.Profile) (segment.Summary, error)
	ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error)
	TraitIssues(ctx context.Context, source string, limit int) ([]*portrait.TraitIssue, error)
	AddTraitIssues(ctx context.Context, issues []*portrait.TraitIssue) error
	RefusedMerges(ctx context.Context) ([]*portrait.MergeEntry, error)

	// Accounts (issue 16): the follower's saved state and the edits.
	AccountEdits(ctx context.Context) ([]*account.Edit, error)
	AccountState(ctx context.Context) (int64, []byte, error)
	AppendAccountEdit(ctx context.Context, ed *account.Edit) (int64, error)
	SaveAccountState(ctx context.Context, seq int64, body []byte) error

	// Imports and keys.
	ImportPage(ctx context.Context, cursor string, limit int) (page [][]byte, next string, err error)
	ImportSummary(ctx context.Context, id string) ([]byte, error)
	Key(ctx context.Context, id int64) (*portrait.Key, error)

	// Health: what the store recovered from when it opened, and what it
	// cannot do now (a full disk).
	Recoveries() []portrait.Recovery
	Incapacities() []portrait.Incapacity

	Close() error
}

var _ Store = (*sqlite.DB)(nil)

// openPostgres opens the PostgreSQL store; nil in a build without it. The
// file that brings postgres/ into this command sets it, so that nothing
// here imports a store that is not there.
var openPostgres func(ctx context.Context, url string, o storeOptions) (Store, error)

// storeOptions are the settings of a shared store that come from flags.
type storeOptions struct {
	// ChangesKept is how long the change feed keeps a change (0: the
	// store's default); a follower away longer reloads every profile.
	ChangesKept time.Duration
	// Log hears what the store does on its own: leases taken and lost,
	// warnings (nil: slog's default, which a command writes to stderr).
	Log *slog.Logger
}

// storeKind is what --store names.
type storeKind int

const (
	storeSQLite storeKind = iota
	storePostgres
)

// parseStore reads --store: empty or sqlite:DIR is the embedded store
// (DIR, else --data), postgres:// or postgresql:// the shared one.
func parseStore(s, dataDir string) (storeKind, string, error) {
	switch {
	case s == "":
		return storeSQLite, dataDir, nil
	case strings.HasPrefix(s, "sqlite:"):
		return storeSQLite, strings.TrimPrefix(s, "sqlite:"), nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return storePostgres, s, nil
	}
	return 0, "", portrait.Errorf(portrait.EINVALID, "store %q: use sqlite:DIR or postgres://user@host:port/db", s)
}

// openStore opens the store --store names (default: the embedded one under
// dataDir), for the commands that work on a store beside a running server
// (keys, audit verify).
func openStore(ctx context.Context, store, dataDir string) (Store, error) {
	kind, where, err := parseStore(store, dataDir)
	if err != nil {
		return nil, err
	}
	if kind == storePostgres {
		if openPostgres == nil {
			return nil, noPostgres(where)
		}
		return openPostgres(ctx, where, storeOptions{})
	}
	db, err := sqlite.Open(ctx, where)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// classifications lists the explicit classification levels of a store
// as (kind, name, level).
func classifications(ctx context.Context, db Store) ([][3]string, error) {
	set, err := db.Classifications(ctx)
	if err != nil {
		return nil, err
	}
	out := make([][3]string, len(set))
	for i, c := range set {
		out[i] = [3]string{c.Kind, c.Name, c.Level}
	}
	return out, nil
}
