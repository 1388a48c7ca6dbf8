// Package postgres is Portrait's second store: the event log and the derived
// state in PostgreSQL (github.com/jackc/pgx/v5), for deployments that outgrow
// one machine. It keeps the same bytes as the embedded store (profile
// documents through profile/doc, events as their JSON) and passes the same
// conformance suite (storetest/). Profiles are partitioned by a hash of the
// profile id (declarative partitioning), so that Citus can distribute them by
// the same key.
//
// Several processes may open one database: migrations run under an advisory
// lock, and the log's sequence numbers are handed out under another, so that
// they commit in order and a reader that has seen seq n has seen every seq
// below it.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (pg_advisory_lock): one namespace for the whole store.
const (
	lockMigrate = int64(0x706f7274_0001) // "port" 1: schema migrations
	lockAppend  = int64(0x706f7274_0002) // "port" 2: log appends (seq order = commit order)
	lockRekey   = int64(0x706f7274_0003) // "port" 3: re-keying the suppression list (nodes starting together)
)

// DB is the PostgreSQL store.
type DB struct {
	URL string
	Now portrait.Clock
	// KeyHashCost is the bcrypt cost of stored key secrets (0: bcrypt's
	// default); tests lower it.
	KeyHashCost int
	// ChangesKept is how long the change feed keeps a change (0:
	// DefaultChangesKept); the nodes that commit state prune it.
	ChangesKept time.Duration
	// VacuumWait is how long a rotation waits for sessions holding the
	// row versions it replaced (horizon.go; 0: DefaultVacuumWait).
	VacuumWait time.Duration
	// Log hears of leases taken and lost (HoldLease) and receives the
	// store's warnings (nil: slog.Default()).
	Log *slog.Logger

	pool *pgxpool.Pool
	// readOnly: the server accepts no writes (a standby, or read-only
	// transactions by default); see Open.
	readOnly bool
	// tombBatch, when set (tests), is how many expired events a retention
	// pass tombstones per transaction (profile.TombstoneBatch otherwise).
	tombBatch int
	sealer    *datakey.Sealer // encryption at rest (seal.go)
	// auditGroup commits audit records handed in together (audit.go).
	auditGroup groupcommit.Group[portrait.AuditRecord]
}

// Open connects to the database at url (postgres://…), creating the schema
// or bringing it up to date. On a server that accepts no writes (a hot
// standby, pg_is_in_recovery(), or a database whose transactions are
// read-only by default) it runs no migration: it checks that the schema
// has every migration this binary knows (applied through the primary) and
// opens the store read-only (ReadOnly), for api nodes; its writes fail.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "store URL: %v", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot connect to PostgreSQL")
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, portrait.Wrap(err, "cannot connect to PostgreSQL at "+redact(url))
	}
	db := &DB{URL: url, Now: time.Now, pool: pool}
	if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool`).Scan(&db.readOnly); err != nil {
		pool.Close()
		return nil, portrait.Wrap(err, "cannot ask PostgreSQL whether it accepts writes")
	}
	if db.readOnly {
		err = db.checkSchema(ctx)
	} else if err = db.migrate(ctx); err == nil {
		// A retention pass stopped between its batches is finished
		// before anything reads the log (postgres/compact.go).
		err = db.finishRetention(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// ReadOnly says whether the server accepts no writes (Open): such a store
// serves reads only, and every write fails.
func (db *DB) ReadOnly() bool { return db.readOnly }

// checkSchema refuses a read-only store whose schema lacks a migration
// this binary knows: it cannot apply it, and reading an older schema would
// fail later, query by query.
func (db *DB) checkSchema(ctx context.Context) error {
	var applied []string
	err := db.pool.QueryRow(ctx, `SELECT coalesce(array_agg(name), '{}') FROM schema_migrations`).Scan(&applied)
	if err != nil {
		return portrait.Errorf(portrait.EUNAVAILABLE, "the store at %s accepts no writes (a standby, or read-only by default) and has no Portrait schema: open it once on the primary first", redact(db.URL))
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return portrait.Wrap(err, "cannot list migrations")
	}
	var missing []string
	for _, name := range names {
		if base := path.Base(name); !slices.Contains(applied, base) {
			missing = append(missing, base)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return portrait.Errorf(portrait.EUNAVAILABLE, "the store at %s accepts no writes (a standby, or read-only by default) and its schema lacks migrations %s: upgrade a node on the primary first", redact(db.URL), strings.Join(missing, ", "))
	}
	return nil
}

// Close closes the connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// redact drops the password from a URL for messages.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at > 0 {
		if i := strings.Index(url, "://"); i >= 0 && i+3 < at {
			creds := url[i+3 : at]
			if c := strings.IndexByte(creds, ':'); c >= 0 {
				return url[:i+3] + creds[:c] + ":***" + url[at:]
			}
		}
	}
	return url
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction, holding an advisory lock so that nodes starting together do
// not apply one twice.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return portrait.Wrap(err, "cannot prepare migrations")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return portrait.Wrap(err, "cannot lock migrations")
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return portrait.Wrap(err, "cannot prepare migrations")
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return portrait.Wrap(err, "cannot list migrations")
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE name = $1`, base).Scan(&n); err != nil {
			return portrait.Wrap(err, "cannot read migrations")
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return portrait.Wrap(err, "cannot read migration")
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, base, time.Now().Unix())
			return err
		})
		if err != nil {
			return portrait.Wrap(err, fmt.Sprintf("migration %s failed", base))
		}
	}
	return nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
