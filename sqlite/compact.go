package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"sync/atomic"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/profile"
)

// Event retention: the store's part of profile.Processor.Compact.

var _ profile.CompactStore = (*DB)(nil)

// ExpiredEvents returns up to limit events with an event time before
// before and a sequence number after after and up to upTo. The log has no
// index on event time (it would cost every append); a pass reads the
// table once, page by page along the sequence numbers.
func (db *DB) ExpiredEvents(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]*portrait.Event, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq > ? AND seq <= ? AND ts < ? AND type <> ? ORDER BY seq LIMIT ?`,
		after, upTo, micros(before), portrait.EventErased, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	defer rows.Close()
	return db.scanEvents(rows, 0)
}

// ExpiredRefs is ExpiredEvents' sequence numbers and message ids.
func (db *DB) ExpiredRefs(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]profile.ExpiredRef, error) {
	return expiredRefs(ctx, db.logR, before, upTo, after, limit)
}

func expiredRefs(ctx context.Context, q querier, before time.Time, upTo, after int64, limit int) ([]profile.ExpiredRef, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, message_id FROM events WHERE seq > ? AND seq <= ? AND ts < ? AND type <> ? ORDER BY seq LIMIT ?`,
		after, upTo, micros(before), portrait.EventErased, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	defer rows.Close()
	var out []profile.ExpiredRef
	for rows.Next() {
		var r profile.ExpiredRef
		if err := rows.Scan(&r.Seq, &r.MessageID); err != nil {
			return nil, portrait.Wrap(err, "cannot read expired events")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	return out, nil
}

// ExpiredAmong returns those of ids that name an expired event (see
// ExpiredEvents), a query per page of ids (by the message id index).
func (db *DB) ExpiredAmong(ctx context.Context, before time.Time, upTo int64, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(ids) > 0 {
		n := min(len(ids), rankPage)
		args := make([]any, 0, n+3)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		args = append(args, upTo, micros(before), portrait.EventErased)
		got, err := queryStrings(ctx, db.logR, `SELECT message_id FROM events WHERE message_id IN (`+placeholders(n)+`) AND seq <= ? AND ts < ? AND type <> ?`, args...)
		if err != nil {
			return nil, err
		}
		for _, id := range got {
			out[id] = true
		}
	}
	return out, nil
}

// LoadCompacted returns the carried-forward events the state holds.
func (db *DB) LoadCompacted(ctx context.Context) ([]string, error) {
	return queryStrings(ctx, db.stateR, `SELECT message_id FROM compacted`)
}

// ExpireEvents carries the expired events' profiles forward and deletes the
// events (see profile.CompactStore), with secure_delete on and both
// write-ahead logs truncated afterwards, as after an erasure:
//
//  1. the state records the carried-forward events as held (so no
//     processor applies them) and the expired events (retention_expired,
//     a batch a transaction);
//  2. one transaction of the log appends the carried-forward events (with
//     their owners, retention_carried) and the run, marked pending;
//  3. the expired events become tombstones, TombstoneBatch a transaction;
//  4. the state's part (finishRetentionRun): the carried-forward events
//     listed on their owners and what the expired events alone made
//     deleted, a batch of them a transaction; then the run is done.
//
// From 2 on the run is pending, and steps 3 and 4 are idempotent: a pass
// stopped anywhere after 2 (a crash, a failed batch) is finished by the
// next start (finishRetention) or the next pass, which repeat them; no
// expired event survives, none is counted twice (the carried-forward
// events hold the expired state; the live processor skips them, a rebuild
// meets only tombstones of what they replace). A pass stopped before 2
// leaves the log as it was. Nothing here holds the expired events or the
// carried-forward events all at once.
func (db *DB) ExpireEvents(ctx context.Context, c *profile.Compaction) error {
	if err := db.writer.wait(ctx); err != nil {
		return err
	}
	// A pass that failed after its log's part (not a crash) left its
	// state's part pending: finished first, for retention_expired is
	// this pass's now.
	if err := db.finishRetention(ctx); err != nil {
		return err
	}
	err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM retention_expired`); err != nil {
			return portrait.Wrap(err, "cannot record expired events")
		}
		held, err := tx.PrepareContext(ctx, `INSERT INTO compacted (message_id) VALUES (?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return portrait.Wrap(err, "cannot record carried-forward events")
		}
		defer held.Close()
		if err := c.Carried(func(page []profile.Carried) error {
			for _, x := range page {
				if _, err := held.ExecContext(ctx, x.Event.MessageID); err != nil {
					return portrait.Wrap(err, "cannot record carried-forward events")
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The expired events, a batch a state transaction (a pass stopped
	// here has not begun its log's part: the next start drops them).
	n := db.tombBatch
	if n <= 0 {
		n = profile.TombstoneBatch
	}
	for after := int64(0); ; {
		refs, err := expiredRefs(ctx, db.logR, c.Before, c.UpTo, after, n)
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			break
		}
		after = refs[len(refs)-1].Seq
		if err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
			ins, err := tx.PrepareContext(ctx, `INSERT INTO retention_expired (seq, message_id, tomb) VALUES (?, ?, ?)`)
			if err != nil {
				return portrait.Wrap(err, "cannot record expired events")
			}
			defer ins.Close()
			for _, r := range refs {
				if _, err := ins.ExecContext(ctx, r.Seq, r.MessageID, profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})); err != nil {
					return portrait.Wrap(err, "cannot record expired events")
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// One transaction on the log's one writing connection, with
	// secure_delete on: the carried-forward events and the run, pending.
	// (Appended through the group commit instead, with secure_delete off,
	// a page split left copies of the expired rows in the free space of a
	// page.)
	pending, err := json.Marshal(retentionState{Expire: &retentionExpire{Before: micros(c.Before), UpTo: c.UpTo}})
	if err != nil {
		return portrait.Wrap(err, "cannot encode the retention run")
	}
	var last int64 // the last carried-forward event's sequence number
	err = db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		id, err := insertRun(ctx, tx, &c.Run)
		c.Run.ID = id
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE retention_runs SET pending = ? WHERE id = ?`, pending, id); err != nil {
			return portrait.Wrap(err, "cannot record the retention run")
		}
		return c.Carried(func(page []profile.Carried) error {
			for _, x := range page {
				e := x.Event
				seq, err := db.appendCarried(ctx, tx, e, c.Before, c.UpTo)
				if err != nil {
					return err
				}
				if seq == 0 {
					continue // an earlier pass carried it already
				}
				last = max(last, seq)
				if _, err := tx.ExecContext(ctx, `INSERT INTO retention_carried (seq, run, message_id, owner, ts) VALUES (?, ?, ?, ?, ?)`,
					seq, id, e.MessageID, x.Owner, micros(e.Timestamp)); err != nil {
					return portrait.Wrap(err, "cannot record carried-forward events")
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	// Committed with synchronous=FULL: on disk, so readers of the log
	// may read them there (the tail no longer holds them).
	storeMax(&db.committer.durable, last)
	db.tail.skipTo(last)
	if err := db.tombstone(ctx, c.Before, c.UpTo); err != nil {
		return err
	}
	if db.afterRetentionLog != nil {
		if err := db.afterRetentionLog(); err != nil {
			return err
		}
	}
	if err := db.finishRetentionRun(ctx, c.Run.ID, &retentionState{}); err != nil {
		return err
	}
	db.truncateWALs(ctx)
	return nil
}

// appendCarried appends a carried-forward event in the log's transaction
// tx, returning its sequence number (0: the log holds one of its id that
// has not expired, an earlier pass's). An expired event holding its id (a
// carried-forward event of an earlier pass with the same limit, which this
// one replaces) becomes a tombstone first.
func (db *DB) appendCarried(ctx context.Context, tx *sql.Tx, e *portrait.Event, before time.Time, upTo int64) (int64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot encode a carried-forward event")
	}
	if b, err = db.sealer.SealEvent(b); err != nil { // sealing
		return 0, err
	}
	if b, err = storeseal.SealRetained(db.sealer, b); err != nil {
		return 0, err
	}
	for try := 0; ; try++ {
		var seq int64
		err = tx.QueryRowContext(ctx, `INSERT INTO events (message_id, type, source, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (message_id) DO NOTHING RETURNING seq`, e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), b).Scan(&seq)
		if err == nil {
			return seq, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, portrait.Wrap(err, "cannot append carried-forward events")
		}
		if try > 0 {
			return 0, nil
		}
		var old int64
		err = tx.QueryRowContext(ctx, `SELECT seq FROM events WHERE message_id = ? AND seq <= ? AND ts < ? AND type <> ?`,
			e.MessageID, upTo, micros(before), portrait.EventErased).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, portrait.Wrap(err, "cannot append carried-forward events")
		}
		if err := tombstoneRefs(ctx, tx, []profile.ExpiredRef{{Seq: old, MessageID: e.MessageID}}); err != nil {
			return 0, err
		}
	}
}

// tombstone turns the expired events (before, up to upTo) that are not
// tombstones yet into tombstones, a batch a transaction: done again, it
// goes on where it stopped.
func (db *DB) tombstone(ctx context.Context, before time.Time, upTo int64) error {
	n := db.tombBatch
	if n <= 0 {
		n = profile.TombstoneBatch
	}
	for after := int64(0); ; {
		var refs []profile.ExpiredRef
		err := db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
			var err error
			if refs, err = expiredRefs(ctx, tx, before, upTo, after, n); err != nil || len(refs) == 0 {
				return err
			}
			return tombstoneRefs(ctx, tx, refs)
		})
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			break
		}
		after = refs[len(refs)-1].Seq
	}
	db.tail.dropIf(func(e *portrait.Event) bool {
		return e.Seq <= upTo && e.Type != portrait.EventErased && e.Timestamp.Before(before)
	})
	return nil
}

// tombstoneRefs makes tombstones of the events refs names.
func tombstoneRefs(ctx context.Context, tx *sql.Tx, refs []profile.ExpiredRef) error {
	upd, err := tx.PrepareContext(ctx, `UPDATE events SET type = ?, source = ?, message_id = ?, ts = 0, received_at = 0, body = ? WHERE seq = ? AND type <> ?`)
	if err != nil {
		return portrait.Wrap(err, "cannot delete expired events")
	}
	defer upd.Close()
	for _, r := range refs {
		tomb := profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})
		body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
		if _, err := upd.ExecContext(ctx, portrait.EventErased, portrait.EventErased, tomb, body, r.Seq, portrait.EventErased); err != nil {
			return portrait.Wrap(err, "cannot delete expired events")
		}
	}
	return nil
}

// retentionState is a pending run's document (retention_runs.pending):
// Expire, the events it expires, whose tombstoning may not be done. The
// carried-forward events to list on their owners are in retention_carried
// and the expired events in the state's retention_expired; Expired and
// Carried are what a run pending from an earlier version holds instead.
type retentionState struct {
	Expire  *retentionExpire   `json:"expire,omitempty"`
	Expired []retentionExpired `json:"expired,omitempty"`
	Carried []retentionCarried `json:"carried,omitempty"`
}

type retentionExpire struct {
	Before int64 `json:"before"` // micros
	UpTo   int64 `json:"up_to"`
}

type retentionExpired struct {
	Seq       int64  `json:"seq"`
	MessageID string `json:"msg"`
}

type retentionCarried struct {
	Seq       int64  `json:"seq"`
	MessageID string `json:"msg"`
	Owner     string `json:"owner"`
	TS        int64  `json:"ts"`
}

// finishRetentionRun does what remains of a pending run after its log's
// transaction, in an order that makes doing it twice do the same: the
// tombstones left (st.Expire), the carried-forward events listed on their
// owners, what the expired events alone made deleted set-wise through
// retention_expired (a statement per event scanned the merge journal and
// the event lists, neither indexed on what expired, once per event), a
// batch of expired events a state transaction; then the run is done.
func (db *DB) finishRetentionRun(ctx context.Context, run int64, st *retentionState) error {
	if st.Expire != nil {
		if err := db.tombstone(ctx, fromMicros(st.Expire.Before), st.Expire.UpTo); err != nil {
			return err
		}
	}
	if len(st.Expired) > 0 || len(st.Carried) > 0 {
		err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
			for _, e := range st.Expired {
				if _, err := tx.ExecContext(ctx, `INSERT INTO retention_expired (seq, message_id, tomb) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					e.Seq, e.MessageID, profile.ExpiredID(&portrait.Event{Seq: e.Seq, MessageID: e.MessageID})); err != nil {
					return portrait.Wrap(err, "cannot record expired events")
				}
			}
			for _, e := range st.Carried {
				if e.Owner == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO profile_events (profile_id, ts, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					e.Owner, e.TS, e.Seq); err != nil {
					return portrait.Wrap(err, "cannot list carried-forward events")
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The carried-forward events on their owners, a page a transaction
	// (listing one twice does nothing).
	for after := int64(0); ; {
		rows, err := db.logW.QueryContext(ctx, `SELECT seq, owner, ts FROM retention_carried WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?`, run, after, 4*profile.ExpiredPage)
		if err != nil {
			return portrait.Wrap(err, "cannot read carried-forward events")
		}
		var page []retentionCarried
		for rows.Next() {
			var e retentionCarried
			if err := rows.Scan(&e.Seq, &e.Owner, &e.TS); err != nil {
				rows.Close()
				return portrait.Wrap(err, "cannot read carried-forward events")
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot read carried-forward events")
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
		if err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
			for _, e := range page {
				if e.Owner == "" {
					continue // decisions, accounts: on no profile
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO profile_events (profile_id, ts, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					e.Owner, e.TS, e.Seq); err != nil {
					return portrait.Wrap(err, "cannot list carried-forward events")
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// What the expired events alone made, a batch of them a transaction:
	// each batch's rows of retention_expired go with it, so a batch done
	// is not done again.
	n := db.tombBatch
	if n <= 0 {
		n = profile.TombstoneBatch
	}
	for {
		var upto sql.NullInt64
		if err := db.stateW.QueryRowContext(ctx, `SELECT max(seq) FROM (SELECT seq FROM retention_expired ORDER BY seq LIMIT ?)`, n).Scan(&upto); err != nil {
			return portrait.Wrap(err, "cannot read expired events")
		}
		if !upto.Valid {
			break
		}
		err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
			for _, q := range []string{
				`DELETE FROM trait_issues WHERE message_id IN (SELECT message_id FROM retention_expired WHERE seq <= ?1)`,
				`DELETE FROM merges WHERE message_id IN (SELECT message_id FROM retention_expired WHERE seq <= ?1)`,
				`DELETE FROM compacted WHERE message_id IN (SELECT message_id FROM retention_expired WHERE seq <= ?1)`,
				`DELETE FROM retracted WHERE message_id IN (SELECT message_id FROM retention_expired WHERE seq <= ?1)`,
				`UPDATE checkpoints SET message_id = (SELECT tomb FROM retention_expired r WHERE r.message_id = checkpoints.message_id)
					WHERE message_id IN (SELECT message_id FROM retention_expired WHERE seq <= ?1)`,
				`DELETE FROM profile_events WHERE seq IN (SELECT seq FROM retention_expired WHERE seq <= ?1)`,
				`DELETE FROM retention_expired WHERE seq <= ?1`,
			} {
				if _, err := tx.ExecContext(ctx, q, upto.Int64); err != nil {
					return portrait.Wrap(err, "cannot delete what expired events made")
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM retention_carried WHERE run = ?`, run); err != nil {
			return portrait.Wrap(err, "cannot record the retention run")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE retention_runs SET pending = NULL WHERE id = ?`, run); err != nil {
			return portrait.Wrap(err, "cannot record the retention run")
		}
		return nil
	})
}

// FinishExpiry finishes a retention pass stopped after its log's first
// transaction (profile.CompactStore).
func (db *DB) FinishExpiry(ctx context.Context) error {
	if err := db.writer.wait(ctx); err != nil {
		return err
	}
	return db.finishRetention(ctx)
}

// finishRetention finishes, at the start (and before a pass), a retention
// pass stopped after its log's first transaction (see ExpireEvents). A
// state that no longer holds the pass's first part (its carried-forward
// events recorded as held: the state was set aside or reset since, and a
// rebuild lists them itself) gets the log's part finished alone.
func (db *DB) finishRetention(ctx context.Context) error {
	rows, err := db.logW.QueryContext(ctx, `SELECT id, pending FROM retention_runs WHERE pending IS NOT NULL ORDER BY id`)
	if err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
	}
	type run struct {
		id int64
		st retentionState
	}
	var runs []run
	for rows.Next() {
		var r run
		var doc []byte
		if err := rows.Scan(&r.id, &doc); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot read retention runs")
		}
		if err := json.Unmarshal(doc, &r.st); err != nil {
			rows.Close()
			return portrait.Wrap(err, "corrupt retention run")
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
	}
	for _, r := range runs {
		carried := append([]retentionCarried(nil), r.st.Carried...)
		more, err := db.logW.QueryContext(ctx, `SELECT message_id FROM retention_carried WHERE run = ? ORDER BY seq LIMIT 10`, r.id)
		if err != nil {
			return portrait.Wrap(err, "cannot read carried-forward events")
		}
		for more.Next() {
			var e retentionCarried
			if err := more.Scan(&e.MessageID); err != nil {
				more.Close()
				return portrait.Wrap(err, "cannot read carried-forward events")
			}
			carried = append(carried, e)
		}
		more.Close()
		held := len(carried) == 0
		for _, e := range carried {
			var n int
			if err := db.stateW.QueryRowContext(ctx, `SELECT count(*) FROM compacted WHERE message_id = ?`, e.MessageID).Scan(&n); err != nil {
				return portrait.Wrap(err, "cannot read carried-forward events")
			}
			if n > 0 {
				held = true
				break
			}
		}
		if !held {
			r.st = retentionState{Expire: r.st.Expire}
			if _, err := db.stateW.ExecContext(ctx, `DELETE FROM retention_expired`); err != nil {
				return portrait.Wrap(err, "cannot read retention runs")
			}
			if _, err := db.logW.ExecContext(ctx, `DELETE FROM retention_carried WHERE run = ?`, r.id); err != nil {
				return portrait.Wrap(err, "cannot read retention runs")
			}
		}
		if err := db.finishRetentionRun(ctx, r.id, &r.st); err != nil {
			return err
		}
	}
	// What a pass that died before its log's part recorded: its events
	// did not expire. (Asked first: a write with nothing to do would
	// still move the content version.)
	var left bool
	if err := db.stateW.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM retention_expired)`).Scan(&left); err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
	}
	if left {
		if _, err := db.stateW.ExecContext(ctx, `DELETE FROM retention_expired`); err != nil {
			return portrait.Wrap(err, "cannot read retention runs")
		}
	}
	if len(runs) > 0 {
		db.truncateWALs(ctx)
	}
	return nil
}

func insertRun(ctx context.Context, tx *sql.Tx, run *portrait.RetentionRun) (int64, error) {
	doc, err := json.Marshal(run)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot encode the retention run")
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO retention_runs (at, kind, before, deleted, doc) VALUES (?, ?, ?, ?, ?)`,
		micros(run.At), run.Kind, micros(run.Before), run.Deleted, doc)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot record the retention run")
	}
	return res.LastInsertId()
}

// RetentionRuns lists the latest retention runs, newest first.
func (db *DB) RetentionRuns(ctx context.Context, limit int) ([]portrait.RetentionRun, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT id, doc FROM retention_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read retention runs")
	}
	defer rows.Close()
	var out []portrait.RetentionRun
	for rows.Next() {
		var id int64
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, portrait.Wrap(err, "cannot read retention runs")
		}
		var r portrait.RetentionRun
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, portrait.Wrap(err, "corrupt retention run")
		}
		r.ID = id
		out = append(out, r)
	}
	return out, rows.Err()
}

// LatestRetentionRun returns the latest run of kind (nil: none).
func (db *DB) LatestRetentionRun(ctx context.Context, kind string) (*portrait.RetentionRun, error) {
	var id int64
	var doc []byte
	err := db.logR.QueryRowContext(ctx, `SELECT id, doc FROM retention_runs WHERE kind = ? ORDER BY id DESC LIMIT 1`, kind).Scan(&id, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read retention runs")
	}
	var r portrait.RetentionRun
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, portrait.Wrap(err, "corrupt retention run")
	}
	r.ID = id
	return &r, nil
}

var _ profile.ScratchStore = (*DB)(nil)

// skipTo makes the tail start after seq: events appended outside the
// group commit (a retention pass's carried-forward events, up to seq) are
// read from the log, not held here, however many they are.
func (t *tail) skipTo(seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq <= t.from {
		return
	}
	i := sort.Search(len(t.events), func(i int) bool { return t.events[i].Seq > seq })
	t.events = append([]*portrait.Event(nil), t.events[i:]...)
	t.from = seq
}

// CarriedAccounts returns the accounts record of the latest retention
// pass (account.Carried).
func (db *DB) CarriedAccounts(ctx context.Context) ([]byte, error) {
	return profile.CarriedAccounts(ctx, db)
}

// RankMessages ranks the message ids of a retention pass's scratch log
// (profile.ScratchStore): each one's rank among them in byte order (the
// BINARY collation), written once, so that the pass's questions are
// indexed look-ups.
func (db *DB) RankMessages(ctx context.Context) error {
	return db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_ranks`); err != nil {
			return portrait.Wrap(err, "cannot rank expired events")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_ranks (message_id, rank)
			SELECT message_id, row_number() OVER (ORDER BY message_id) - 1 FROM events WHERE type <> ?`, portrait.EventErased); err != nil {
			return portrait.Wrap(err, "cannot rank expired events")
		}
		return nil
	})
}

// rankPage is how many ids a set-wise question names.
const rankPage = 500

// MessageRanks returns the ranks RankMessages wrote of those of ids the
// log holds, a query per page of ids.
func (db *DB) MessageRanks(ctx context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	for len(ids) > 0 {
		n := min(len(ids), rankPage)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := db.logR.QueryContext(ctx, `SELECT message_id, rank FROM message_ranks WHERE message_id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read expired events")
		}
		for rows.Next() {
			var id string
			var r int64
			if err := rows.Scan(&id, &r); err != nil {
				rows.Close()
				return nil, portrait.Wrap(err, "cannot read expired events")
			}
			out[id] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, portrait.Wrap(err, "cannot read expired events")
		}
	}
	return out, nil
}

// IdentitiesOfProfiles returns the identifiers each of pids owns, with
// the key of the event that attached each, a query per page of profiles.
func (db *DB) IdentitiesOfProfiles(ctx context.Context, pids []string) (map[string][]profile.BaseIdentity, error) {
	out := map[string][]profile.BaseIdentity{}
	for len(pids) > 0 {
		n := min(len(pids), rankPage)
		args := make([]any, n)
		for i, id := range pids[:n] {
			args[i] = id
		}
		pids = pids[n:]
		rows, err := db.stateR.QueryContext(ctx, `SELECT type, value, profile_id, at_us, at_msg FROM identities WHERE profile_id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read identities")
		}
		for rows.Next() {
			var id portrait.Identifier
			var pid, msg string
			var us int64
			if err := rows.Scan(&id.Type, &id.Value, &pid, &us, &msg); err != nil {
				rows.Close()
				return nil, portrait.Wrap(err, "cannot read identities")
			}
			if err := db.openIdentifier(&id); err != nil { // sealing
				rows.Close()
				return nil, err
			}
			x := profile.BaseIdentity{Type: id.Type, Value: id.Value}
			if us != 0 || msg != "" {
				x.At, x.Msg = time.UnixMicro(us).UTC(), msg
			}
			out[pid] = append(out[pid], x)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, portrait.Wrap(err, "cannot read identities")
		}
	}
	return out, nil
}

// storeMax raises a to v (never lowers it: a group's publication racing a
// retention pass's own commit).
func storeMax(a *atomic.Int64, v int64) {
	for {
		o := a.Load()
		if v <= o || a.CompareAndSwap(o, v) {
			return
		}
	}
}
