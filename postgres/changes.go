package postgres

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portrait-cdp/portrait"
)

// The change feed (issue 17 §5): every state transaction that writes or
// deletes profiles appends their ids to profile_changes at commit, under
// lockChanges, so that the feed's order is commit order across processes.
// An API node keeps its in-memory indexes current by following it.
//
// Rows are kept for DB.ChangesKept (default DefaultChangesKept), then
// pruned (by the committing
// transaction, every pruneEvery rows); profile_changes_floor records the
// last seq pruned, so a cursor older than that is refused rather than
// silently skipping changes.

// lockChanges serialises the feed's sequence numbers ("port" 3).
const lockChanges = int64(0x706f7274_0003)

// DefaultChangesKept is how long the feed keeps a change unless
// DB.ChangesKept says otherwise: a follower that was away longer reloads
// every profile (ProfileChanges refuses its cursor). An hour covers an api
// node's restart or a short network partition; at a high event rate the
// feed then holds millions of rows, and a shorter retention trades them
// for full reloads after longer absences.
const DefaultChangesKept = time.Hour

// changesKept is the retention in force.
func (db *DB) changesKept() time.Duration {
	if db.ChangesKept > 0 {
		return db.ChangesKept
	}
	return DefaultChangesKept
}

// pruneEvery is how many feed rows are written between prunes.
const pruneEvery = 4096

// ProfileChanges returns the ids of the profiles written (changed) or
// deleted by state transactions committed after cursor after, in commit
// order, each once, with the cursor to pass next time. after 0 reads from
// the beginning; a negative after reads nothing and returns the current
// end of the feed (a follower about to load every profile takes it
// first). A cursor taken before ResetState still works: the reset reports
// every profile deleted, and the rebuild every profile it writes. A cursor
// older than what is kept is refused (ECONFLICT): load every profile
// again and continue from a fresh cursor.
func (db *DB) ProfileChanges(ctx context.Context, after int64, limit int) (changed, deleted []string, next int64, err error) {
	if after < 0 {
		err := db.pool.QueryRow(ctx, `SELECT greatest((SELECT coalesce(max(seq), 0) FROM profile_changes), (SELECT seq FROM profile_changes_floor))`).Scan(&next)
		if err != nil {
			return nil, nil, 0, portrait.Wrap(err, "cannot read the change feed")
		}
		return nil, nil, next, nil
	}
	if limit <= 0 || limit > 100_000 {
		limit = 10_000
	}
	next = after
	var floor int64
	err = pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT seq FROM profile_changes_floor`).Scan(&floor); err != nil {
			return err
		}
		if after < floor {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT seq, profile_id, deleted FROM profile_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		// The last word on each id counts, at its position.
		type last struct {
			seq     int64
			deleted bool
		}
		byID := map[string]last{}
		var seq int64
		var id string
		var del bool
		if _, err := pgx.ForEachRow(rows, []any{&seq, &id, &del}, func() error {
			byID[id] = last{seq, del}
			next = seq
			return nil
		}); err != nil {
			return err
		}
		ids := make([]string, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return byID[ids[i]].seq < byID[ids[j]].seq })
		for _, id := range ids {
			if byID[id].deleted {
				deleted = append(deleted, id)
			} else {
				changed = append(changed, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, portrait.Wrap(err, "cannot read the change feed")
	}
	if after < floor {
		return nil, nil, 0, portrait.Errorf(portrait.ECONFLICT, "the change feed no longer holds changes after %d (kept from %d on): reload every profile", after, floor)
	}
	return changed, deleted, next, nil
}

// recordChanges appends the ids to the feed inside tx, taking lockChanges
// until tx ends, and notifies followers at commit. Whatever writes or
// deletes profiles outside a state transaction (an erasure) calls it in
// its own transaction.
func (db *DB) recordChanges(ctx context.Context, tx pgx.Tx, changed, deleted []string) error {
	stmts, prune := db.changeStmts(changed, deleted)
	b := &pgx.Batch{}
	for _, s := range stmts {
		q := b.Queue(s.sql, s.args...)
		if s.scan != nil {
			q.QueryRow(s.scan)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return portrait.Wrap(err, "cannot write the change feed")
	}
	return prune(ctx, tx)
}

// changeStmts are the statements that append the ids to the feed (ids
// sorted, changed before deleted) under lockChanges, and prune, to run
// after them in the same transaction, which prunes the feed when the
// appended rows crossed a multiple of pruneEvery.
func (db *DB) changeStmts(changed, deleted []string) ([]stmt, func(context.Context, pgx.Tx) error) {
	none := func(context.Context, pgx.Tx) error { return nil }
	if len(changed) == 0 && len(deleted) == 0 {
		return nil, none
	}
	sort.Strings(changed)
	sort.Strings(deleted)
	ids := make([]string, 0, len(changed)+len(deleted))
	dels := make([]bool, 0, cap(ids))
	for _, id := range changed {
		ids, dels = append(ids, id), append(dels, false)
	}
	for _, id := range deleted {
		ids, dels = append(ids, id), append(dels, true)
	}
	now := micros(db.Now())
	var last int64
	stmts := []stmt{
		{sql: `SELECT pg_advisory_xact_lock($1)`, args: []any{lockChanges}},
		{sql: `WITH ins AS (INSERT INTO profile_changes (seq, profile_id, deleted, at)
				SELECT (SELECT coalesce(max(seq), 0) FROM profile_changes) + u.ord, u.id, u.del, $3
				FROM unnest($1::text[], $2::bool[]) WITH ORDINALITY AS u(id, del, ord) RETURNING seq)
			SELECT max(seq) FROM ins`, args: []any{ids, dels, now}, scan: func(r pgx.Row) error { return r.Scan(&last) }},
		{sql: `SELECT pg_notify('portrait_changes', '')`},
	}
	prune := func(ctx context.Context, tx pgx.Tx) error {
		if last/pruneEvery == (last-int64(len(ids)))/pruneEvery {
			return nil
		}
		if _, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM profile_changes WHERE at < $1 RETURNING seq)
			UPDATE profile_changes_floor SET seq = greatest(seq, (SELECT coalesce(max(seq), 0) FROM gone))`, now-db.changesKept().Microseconds()); err != nil {
			return portrait.Wrap(err, "cannot prune the change feed")
		}
		return nil
	}
	return stmts, prune
}

// The notification channels a watcher follows: the log grew; profiles
// changed; a definition changed (BumpConfig); a rewrite request was
// queued or answered (rewrites.go).
var channelNames = []string{"portrait_log", "portrait_changes", "portrait_config", "portrait_rewrites"}

// watcher turns notifications into a closed channel. Its listener holds a
// connection of its own (not the pool's: Close would wait for it) and
// runs only while someone waits: it stops after idleRounds seconds in
// which nobody asked, or once the pool is closed, and starts again at the
// next ask.
type watcher struct {
	db      *DB
	mu      sync.Mutex
	ch      chan struct{}
	running bool
	asked   bool
}

const idleRounds = 30

// watchers holds each DB's watcher: DB (db.go) is the lead's, so the
// state lives beside it, keyed by the DB, and is dropped when its
// listener finds the pool closed.
var watchers sync.Map // *DB → *watcher

func (db *DB) watch() *watcher {
	if w, ok := watchers.Load(db); ok {
		return w.(*watcher)
	}
	w, _ := watchers.LoadOrStore(db, &watcher{db: db, ch: make(chan struct{})})
	return w.(*watcher)
}

// wait returns the channel closed at the next notification, starting the
// listener if it is not running.
func (w *watcher) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked = true
	if !w.running {
		w.running = true
		go w.listen()
	}
	return w.ch
}

func (w *watcher) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

func (w *watcher) listen() {
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
		// Whoever waits looks again (and restarts the listener).
		w.fire()
	}()
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, w.db.pool.Config().ConnConfig)
	cancel()
	if err != nil {
		time.Sleep(time.Second) // not a tight loop of reconnections
		return
	}
	defer conn.Close(ctx)
	for _, name := range channelNames {
		if _, err := conn.Exec(ctx, "LISTEN "+name); err != nil {
			return
		}
	}
	// A commit between a waiter's ask and the LISTEN above was not heard:
	// waiters look once more now.
	w.fire()
	idle := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			w.fire()
			continue
		}
		if !pgconn.Timeout(err) {
			return
		}
		w.mu.Lock()
		asked := w.asked
		w.asked = false
		w.mu.Unlock()
		if asked {
			idle = 0
		} else if idle++; idle >= idleRounds {
			return
		}
		// A closed pool (or an unreachable server) ends the listener and
		// forgets the watcher: a later ask starts afresh.
		c, err := w.db.pool.Acquire(ctx)
		if err != nil {
			watchers.Delete(w.db)
			return
		}
		c.Release()
	}
}
