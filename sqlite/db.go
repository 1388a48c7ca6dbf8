// Package sqlite is Portrait's embedded store: the event log and the derived
// state in two SQLite files (pure Go, no cgo), so that appending events and
// deriving profiles never wait for each other's write lock, and the derived
// file can be thrown away and rebuilt from the log.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/groupcommit"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations
var migrations embed.FS

// DB is the embedded store.
type DB struct {
	Dir string
	Now portrait.Clock
	// KeyHashCost is the bcrypt cost of stored key secrets (0: bcrypt's
	// default); tests lower it.
	KeyHashCost int
	auditMu     sync.Mutex                              // serialises the audit chain's appends
	auditGroup  groupcommit.Group[portrait.AuditRecord] // audit records committed together (audit.go)
	// sessionChanges counts revocations and session deletions (sessions.go).
	sessionChanges atomic.Uint64

	logW, logR     *sql.DB // event log, quarantine, keys
	stateW, stateR *sql.DB // profiles and everything derived
	logCP, stateCP *checkpointer

	committer *committer
	writer    stateWriter
	tail      tail
	activity  activityCache // SourceActivity's running totals (overview.go)
	version   dataVersion   // DataVersion's watching connections (version.go)
	closeOnce sync.Once
	closeErr  error

	recoveries []portrait.Recovery // what Open repaired
	health     health
	// afterRetentionLog, when set (tests), runs between the log's and
	// the state's part of a retention pass; an error stops the pass there.
	afterRetentionLog func() error
	// tombBatch, when set (tests), is how many expired events a retention
	// pass tombstones per transaction (profile.TombstoneBatch otherwise).
	tombBatch int
	sealer    *datakey.Sealer // encryption at rest (seal.go)
}

// Open opens (creating if needed) the store under dir.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, portrait.Wrap(err, "cannot create the data directory")
	}
	db := &DB{Dir: dir, Now: time.Now}
	db.writer.db = db
	var err error
	// The log is what acknowledgements promise: synchronous=FULL, so that
	// a commit is on disk before the client hears 200. Group commit keeps
	// the fsyncs few.
	// Its WAL is checkpointed by the committing connection (SQLite's
	// automatic checkpoint): a checkpointer beside it costs the group
	// commit more in competing fsyncs than it saves.
	if db.logW, db.logR, db.logCP, err = openPair(filepath.Join(dir, "events.db"), "FULL", 0, 64000); err != nil {
		return nil, err
	}
	if err := migrate(ctx, db.logW, "migrations/log"); err != nil {
		db.Close()
		return nil, err
	}
	// Derived state can always be replayed from the log: NORMAL is enough.
	// Profile documents are a few KB: 16 KB pages keep most of them off
	// overflow chains. Checkpointing the WAL every few seconds lets one
	// checkpoint carry several processor batches that rewrite the same
	// pages. A state that cannot be trusted is set aside (see openState).
	if err := db.openState(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.finishRetention(ctx); err != nil {
		db.Close()
		return nil, err
	}
	last, err := db.LastSeq(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	db.tail = tail{from: last, max: 100_000}
	db.committer = newCommitter(db)
	db.committer.durable.Store(last)
	return db, nil
}

// Close stops the group committer (draining what is queued) and closes the files.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		// A state transaction handed to the writer is finished first:
		// what it writes is consistent, and losing it would only cost a
		// replay at the next start.
		db.writer.wait(context.Background())
		if db.committer != nil {
			db.committer.close()
		}
		db.version.close()
		for _, c := range []*checkpointer{db.logCP, db.stateCP} {
			if c != nil {
				c.close() // what it cannot copy now is copied at the next start
			}
		}
		// Readers first: the log's are read-only, and SQLite leaves the
		// WAL behind when the last connection to close cannot write.
		// Then its writer checkpoints the whole WAL into events.db and
		// truncates it (the log has no checkpointer: its committing
		// connection checkpoints as it goes), so a closed log is one file.
		for _, d := range []*sql.DB{db.logR, db.stateR} {
			if d != nil {
				db.keepErr(d.Close())
			}
		}
		if db.logW != nil && db.logCP == nil {
			// As for the state's checkpointer: what cannot be copied now
			// (another process reading the file) is at the next start.
			db.logW.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
		}
		for _, d := range []*sql.DB{db.logW, db.stateW} {
			if d != nil {
				db.keepErr(d.Close())
			}
		}
	})
	return db.closeErr
}

func (db *DB) keepErr(err error) {
	if err != nil && db.closeErr == nil {
		db.closeErr = err
	}
}

// stateWriterCache is the page cache (KiB) of the state's writer. A batch
// writes tens of megabytes of profile documents in one transaction; SQLite
// keeps dirty pages in the cache until it is full, so with a large cache
// they would all go to the WAL at commit, after the batch's last profile,
// with nothing left to overlap. A smaller cache spills them to the WAL as
// the transaction goes, while the processor is still enriching (a 40,000-
// event batch of enriched profiles: commit 22 ms → 9 ms). Readers keep the
// large cache.
const stateWriterCache = 8000

// openPair opens a store's writer and readers; writerCache is the writer's
// page cache in KiB (the readers have 64 MB each).
func openPair(path, sync string, checkpointEvery time.Duration, writerCache int, extra ...string) (w, r *sql.DB, cp *checkpointer, err error) {
	if err := privateFile(path); err != nil {
		return nil, nil, nil, err
	}
	q := url.Values{}
	// page_size first: it only takes effect before the file is created.
	var first []string
	for i := 0; i < len(extra); i++ {
		if strings.HasPrefix(extra[i], "page_size(") {
			first = append(first, extra[i])
			extra = append(extra[:i:i], extra[i+1:]...)
			i--
		}
	}
	pragmas := append(first, "journal_mode(WAL)", "synchronous("+sync+")", "foreign_keys(1)", "busy_timeout(10000)", "temp_store(MEMORY)", "secure_delete("+secureDeleteMode+")")
	if checkpointEvery > 0 {
		// No automatic checkpoints: a checkpointer does them beside the
		// writer (see checkpointer); the WAL file is cut back to 64 MB.
		pragmas = append(pragmas, "wal_autocheckpoint(0)", "journal_size_limit(67108864)")
	}
	for _, p := range append(pragmas, extra...) {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	cache := func(kib int) string { return "&_pragma=" + url.QueryEscape(fmt.Sprintf("cache_size(-%d)", kib)) }
	// One writer connection: SQLite has one write lock anyway, and a single
	// connection avoids SQLITE_BUSY between our own writers.
	if w, err = sql.Open("sqlite", dsn+cache(writerCache)+"&_txlock=immediate"); err != nil {
		return nil, nil, nil, portrait.Wrap(err, "cannot open the store")
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err = w.Ping(); err != nil {
		w.Close()
		return nil, nil, nil, portrait.Wrap(err, "cannot open the store "+path)
	}
	if r, err = sql.Open("sqlite", dsn+cache(64000)+"&mode=ro"); err != nil {
		w.Close()
		return nil, nil, nil, portrait.Wrap(err, "cannot open the store")
	}
	r.SetMaxOpenConns(4)
	if checkpointEvery <= 0 {
		return w, r, nil, nil
	}
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		r.Close()
		return nil, nil, nil, portrait.Wrap(err, "cannot open the store")
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxIdleTime(0)
	return w, r, newCheckpointer(c, checkpointEvery), nil
}

// migrate applies the embedded migrations of dir not yet applied, each in
// its own transaction.
func migrate(ctx context.Context, db *sql.DB, dir string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return portrait.Wrap(err, "cannot prepare migrations")
	}
	names, err := fs.Glob(migrations, dir+"/*.sql")
	if err != nil {
		return portrait.Wrap(err, "cannot list migrations")
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
			return portrait.Wrap(err, "cannot read migrations")
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return portrait.Wrap(err, "cannot read migration")
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return portrait.Wrap(err, "cannot begin migration")
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return portrait.Wrap(err, fmt.Sprintf("migration %s failed", base))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, base, time.Now().Unix()); err != nil {
			tx.Rollback()
			return portrait.Wrap(err, "cannot record migration")
		}
		if err := tx.Commit(); err != nil {
			return portrait.Wrap(err, fmt.Sprintf("migration %s failed", base))
		}
	}
	return nil
}

// ResetState deletes all derived state, for a rebuild from the log.
func (db *DB) ResetState(ctx context.Context) error {
	if err := db.writer.wait(ctx); err != nil {
		return err
	}
	db.writer.err() // whatever failed is thrown away with the rest
	for _, t := range []string{"profiles", "identities", "refused", "profile_events", "aliases", "merges", "checkpoints", "trait_issues", "retracted", "splits", "account_state", "compacted"} {
		if _, err := db.stateW.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return portrait.Wrap(err, "cannot reset "+t)
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

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
