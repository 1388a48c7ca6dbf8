package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/portrait-cdp/portrait"
)

// SQLite's primary result codes that say a file is not a sound database
// (the extended codes keep them in the low byte).
const (
	sqliteCorrupt = 11
	sqliteFull    = 13
	sqliteNotADB  = 26
)

// damaged reports whether err says a database file is corrupt rather than
// unreachable: only then may the file be moved aside. A permission error
// or a full disk must stop the start instead, with the file untouched.
func damaged(err error) bool {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		c := e.Code() & 0xff
		return c == sqliteCorrupt || c == sqliteNotADB
	}
	var q *quickCheckError
	return errors.As(err, &q)
}

// diskFull reports whether err is the disk (or the database's size limit)
// being full.
func diskFull(err error) bool {
	var e *sqlite3.Error
	if errors.As(err, &e) && e.Code()&0xff == sqliteFull {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}

type quickCheckError struct{ report string }

func (e *quickCheckError) Error() string { return "integrity check: " + e.report }

// openState opens state.db. The state is derived from the log, so a state
// that cannot be trusted is moved aside (kept, never deleted) and started
// afresh, and the processor rebuilds it from the log: a state.db that
// SQLite finds damaged, and a state built from events the log no longer
// has (its write-ahead log lost its last pages: the events after its end
// are gone, and their sequence numbers would be handed to new events,
// which the processor would then take as applied). Each is recorded as a
// Recovery.
func (db *DB) openState(ctx context.Context) error {
	path := filepath.Join(db.Dir, "state.db")
	for attempt := 0; ; attempt++ {
		var problem, kind string
		err := db.openStateFile(ctx, path)
		switch {
		case err == nil:
			if problem, err = db.stateBeyondLog(ctx); err != nil {
				db.closeState()
				return err
			}
			if problem == "" {
				return nil
			}
			kind = "ahead-of-log"
		case damaged(err):
			problem = "state.db is damaged: " + cause(err)
			kind = "damaged"
		default:
			return err
		}
		db.closeState()
		if attempt > 0 {
			// A fresh file is damaged or ahead again: something other
			// than the file is wrong; stop rather than loop.
			return portrait.Errorf(portrait.EINTERNAL, "a fresh state.db cannot be used either: %s", problem)
		}
		moved, err := moveAside(path, kind, db.Now())
		if err != nil {
			return portrait.Wrap(err, "cannot move the state aside ("+problem+")")
		}
		db.recoveries = append(db.recoveries, portrait.Recovery{
			At: db.Now().UTC(), Problem: problem, MovedTo: moved,
			Action: "moved state.db aside and started an empty one; the profiles are rebuilt from the event log",
		})
	}
}

// cause is the innermost message of err: SQLite's own words.
func cause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// openStateFile opens state.db, applies the migrations and checks the
// file's structure. quick_check reads every page once (about a second per
// few hundred megabytes): a damaged page would otherwise surface as
// failing reads and a processor retrying forever, long after the start.
func (db *DB) openStateFile(ctx context.Context, path string) (err error) {
	if db.stateW, db.stateR, db.stateCP, err = openPair(path, "NORMAL", 2*time.Second, stateWriterCache, "page_size(16384)"); err != nil {
		return err
	}
	if err := migrate(ctx, db.stateW, "migrations/state"); err != nil {
		return err
	}
	var report string
	if err := db.stateW.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&report); err != nil {
		return portrait.Wrap(err, "cannot check state.db")
	}
	if report != "ok" {
		return portrait.Wrap(&quickCheckError{report}, "state.db failed its integrity check")
	}
	return nil
}

// stateBeyondLog says how the derived state is ahead of the log, or "".
// Each checkpoint names the last event applied by its sequence number and
// its messageId: a number past the log's end means the log lost its tail;
// the same number on another event means it lost it and then gave the
// numbers to new events.
func (db *DB) stateBeyondLog(ctx context.Context) (string, error) {
	last, err := db.LastSeq(ctx)
	if err != nil {
		return "", err
	}
	rows, err := db.stateW.QueryContext(ctx, `SELECT name, seq, message_id FROM checkpoints ORDER BY name`)
	if err != nil {
		return "", portrait.Wrap(err, "cannot read checkpoints")
	}
	type cp struct {
		name, msg string
		seq       int64
	}
	var cps []cp
	for rows.Next() {
		var c cp
		if err := rows.Scan(&c.name, &c.seq, &c.msg); err != nil {
			rows.Close()
			return "", portrait.Wrap(err, "cannot read checkpoints")
		}
		cps = append(cps, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", portrait.Wrap(err, "cannot read checkpoints")
	}
	for _, c := range cps {
		if c.seq > last {
			return fmt.Sprintf("the event log ends at sequence number %d, but the %s state was built from events up to %d: at least %d acknowledged events are gone from the log (its write-ahead log lost its last pages) and their numbers would be reused", last, c.name, c.seq, c.seq-last), nil
		}
		if c.msg == "" || c.seq == 0 {
			continue // written before checkpoints named their event
		}
		var msg string
		err := db.logR.QueryRowContext(ctx, `SELECT message_id FROM events WHERE seq = ?`, c.seq).Scan(&msg)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", portrait.Wrap(err, "cannot read the event log")
		}
		if msg != c.msg {
			return fmt.Sprintf("event %d of the log is %q, but the %s state was built with %q at that number: the log lost events and gave their sequence numbers to new ones", c.seq, msg, c.name, c.msg), nil
		}
	}
	return "", nil
}

// messageIDAt returns the messageId of the logged event seq ("" if none).
func (db *DB) messageIDAt(ctx context.Context, seq int64) (string, error) {
	if evs, ok := db.tail.read(seq-1, 1); ok {
		if len(evs) == 1 && evs[0].Seq == seq {
			return evs[0].MessageID, nil
		}
		return "", nil
	}
	var msg string
	err := db.logR.QueryRowContext(ctx, `SELECT message_id FROM events WHERE seq = ?`, seq).Scan(&msg)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", portrait.Wrap(err, "cannot read the event log")
	}
	return msg, nil
}

// closeState closes state.db's connections (after a failed open).
func (db *DB) closeState() {
	if db.stateCP != nil {
		db.stateCP.close()
	}
	for _, d := range []*sql.DB{db.stateW, db.stateR} {
		if d != nil {
			d.Close()
		}
	}
	db.stateW, db.stateR, db.stateCP = nil, nil, nil
}

// moveAside renames path, with its -wal and -shm files, to
// path.<kind>-<UTC time>, keeping the pair openable together.
func moveAside(path, kind string, now time.Time) (string, error) {
	base := path + "." + kind + "-" + now.UTC().Format("20060102T150405Z")
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+suffix, dst+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return dst, nil
}

// Recoveries lists what Open found wrong and repaired.
func (db *DB) Recoveries() []portrait.Recovery {
	return append([]portrait.Recovery(nil), db.recoveries...)
}

// health keeps the outcome of the latest writes to each file: a failed
// write is something the server cannot do until a later one succeeds.
type health struct {
	mu     sync.Mutex
	append error // the log's last group commit
	state  error // the derived state's last transaction
}

func (h *health) note(slot *error, err error) {
	h.mu.Lock()
	*slot = err
	h.mu.Unlock()
}

// MinFree is the free space the store wants on its disk: below it,
// Incapacities reports that writes are about to fail. A state batch
// writes tens of megabytes to its write-ahead log.
const MinFree = 64 << 20

// Incapacities lists what the store cannot do now: write to a full disk,
// or what its latest writes failed to do.
func (db *DB) Incapacities() []portrait.Incapacity {
	var out []portrait.Incapacity
	db.health.mu.Lock()
	appendErr, stateErr := db.health.append, db.health.state
	db.health.mu.Unlock()
	reason := func(err error) string {
		if diskFull(err) {
			return "the disk is full: " + cause(err)
		}
		return cause(err)
	}
	if appendErr != nil {
		out = append(out, portrait.Incapacity{Cannot: "accept events", Reason: "the last write to the event log failed: " + reason(appendErr)})
	}
	if stateErr != nil {
		out = append(out, portrait.Incapacity{Cannot: "update profiles", Reason: "the last write to the profiles failed: " + reason(stateErr)})
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(db.Dir, &fs); err == nil {
		if free := fs.Bavail * uint64(fs.Bsize); free < MinFree {
			why := fmt.Sprintf("the disk holding %s has %d KiB free, less than the %d MiB its writes need", db.Dir, free>>10, MinFree>>20)
			if appendErr == nil {
				out = append(out, portrait.Incapacity{Cannot: "accept events", Reason: why})
			}
			if stateErr == nil {
				out = append(out, portrait.Incapacity{Cannot: "update profiles", Reason: why})
			}
		}
	}
	return out
}
