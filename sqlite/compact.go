package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sort"
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

// LoadCompacted returns the carried-forward events the state holds.
func (db *DB) LoadCompacted(ctx context.Context) ([]string, error) {
	return queryStrings(ctx, db.stateR, `SELECT message_id FROM compacted`)
}

// ExpireEvents carries the expired events' profiles forward and deletes the
// events (see profile.CompactStore). The carried-forward events are
// recorded as held before they are appended, so a processor never applies
// them twice; the expired events become tombstones with secure_delete on,
// and both write-ahead logs are truncated, as after an erasure. The log's
// part is one transaction, so the log is always whole; it keeps the
// state's part with the run (retention_runs.pending, and the expired
// events in the state's retention_expired) until the state has it, so a
// pass the process died in the middle of is finished by the next start
// (finishRetention): the event lists get their carried-forward events,
// and what the expired events alone made goes. The expired events are
// read and tombstoned page by page: nothing here holds them all.
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
		for _, e := range c.Carried {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compacted (message_id) VALUES (?) ON CONFLICT DO NOTHING`, e.MessageID); err != nil {
				return portrait.Wrap(err, "cannot record carried-forward events")
			}
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO retention_expired (seq, message_id, tomb) VALUES (?, ?, ?)`)
		if err != nil {
			return portrait.Wrap(err, "cannot record expired events")
		}
		defer ins.Close()
		for after := int64(0); ; {
			refs, err := expiredRefs(ctx, db.logR, c.Before, c.UpTo, after, 4*profile.ExpiredPage)
			if err != nil || len(refs) == 0 {
				return err
			}
			after = refs[len(refs)-1].Seq
			for _, r := range refs {
				if _, err := ins.ExecContext(ctx, r.Seq, r.MessageID, profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})); err != nil {
					return portrait.Wrap(err, "cannot record expired events")
				}
			}
		}
	})
	if err != nil {
		return err
	}
	// One transaction on the log's one writing connection, with
	// secure_delete on: the carried-forward events are appended and the
	// expired ones become tombstones together, so the log never holds
	// both nor neither. (Appended through the group commit instead, with
	// secure_delete off, a page split left copies of the expired rows in
	// the free space of a page.)
	var appended []*portrait.Event
	st := &retentionState{}
	err = db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		// Tombstones first: a carried-forward event of an earlier pass
		// may have the message id this pass gives its successor.
		upd, err := tx.PrepareContext(ctx, `UPDATE events SET type = ?, source = ?, message_id = ?, ts = 0, received_at = 0, body = ? WHERE seq = ? AND type <> ?`)
		if err != nil {
			return portrait.Wrap(err, "cannot delete expired events")
		}
		defer upd.Close()
		for after := int64(0); ; {
			refs, err := expiredRefs(ctx, tx, c.Before, c.UpTo, after, profile.ExpiredPage)
			if err != nil {
				return err
			}
			if len(refs) == 0 {
				break
			}
			after = refs[len(refs)-1].Seq
			for _, r := range refs {
				tomb := profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})
				body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
				if _, err := upd.ExecContext(ctx, portrait.EventErased, portrait.EventErased, tomb, body, r.Seq, portrait.EventErased); err != nil {
					return portrait.Wrap(err, "cannot delete expired events")
				}
			}
		}
		for _, e := range c.Carried {
			b, err := json.Marshal(e)
			if err != nil {
				return portrait.Wrap(err, "cannot encode a carried-forward event")
			}
			if b, err = db.sealer.SealEvent(b); err != nil { // sealing
				return err
			}
			if b, err = storeseal.SealRetained(db.sealer, b); err != nil {
				return err
			}
			var seq int64
			err = tx.QueryRowContext(ctx, `INSERT INTO events (message_id, type, source, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (message_id) DO NOTHING RETURNING seq`, e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), b).Scan(&seq)
			if errors.Is(err, sql.ErrNoRows) {
				continue // an earlier pass carried it already
			}
			if err != nil {
				return portrait.Wrap(err, "cannot append carried-forward events")
			}
			e.Seq = seq
			appended = append(appended, e)
			st.Carried = append(st.Carried, retentionCarried{Seq: seq, MessageID: e.MessageID, Owner: c.Owners[e.MessageID], TS: micros(e.Timestamp)})
		}
		id, err := insertRun(ctx, tx, &c.Run)
		c.Run.ID = id
		if err != nil {
			return err
		}
		pending, err := json.Marshal(st)
		if err != nil {
			return portrait.Wrap(err, "cannot encode the retention run")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE retention_runs SET pending = ? WHERE id = ?`, pending, id); err != nil {
			return portrait.Wrap(err, "cannot record the retention run")
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.tail.insert(appended)
	before := c.Before
	db.tail.dropIf(func(e *portrait.Event) bool {
		return e.Seq <= c.UpTo && e.Type != portrait.EventErased && e.Timestamp.Before(before)
	})
	if db.afterRetentionLog != nil {
		if err := db.afterRetentionLog(); err != nil {
			return err
		}
	}
	if err := db.retentionStatePart(ctx, c.Run.ID, st); err != nil {
		return err
	}
	db.truncateWALs(ctx)
	return nil
}

// retentionState is the state's part of a retention pass, as kept with
// its run until done: the carried-forward events (listed on their
// owners). The expired events (their lists, trait issues and journal
// lines go) are in the state's retention_expired; Expired is what a run
// pending from an earlier version holds instead.
type retentionState struct {
	Expired []retentionExpired `json:"expired"`
	Carried []retentionCarried `json:"carried"`
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

// retentionStatePart does the state's part of run and then marks the run
// done, in that order: done twice, it does the same. What the expired
// events alone made is deleted set-wise, through retention_expired: a
// statement per event scanned the merge journal and the event lists
// (neither has an index on what expired) once per event.
func (db *DB) retentionStatePart(ctx context.Context, run int64, st *retentionState) error {
	err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
		for _, e := range st.Expired {
			if _, err := tx.ExecContext(ctx, `INSERT INTO retention_expired (seq, message_id, tomb) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				e.Seq, e.MessageID, profile.ExpiredID(&portrait.Event{Seq: e.Seq, MessageID: e.MessageID})); err != nil {
				return portrait.Wrap(err, "cannot record expired events")
			}
		}
		for _, q := range []string{
			`DELETE FROM trait_issues WHERE message_id IN (SELECT message_id FROM retention_expired)`,
			`DELETE FROM merges WHERE message_id IN (SELECT message_id FROM retention_expired)`,
			`DELETE FROM compacted WHERE message_id IN (SELECT message_id FROM retention_expired)`,
			`DELETE FROM retracted WHERE message_id IN (SELECT message_id FROM retention_expired)`,
			`UPDATE checkpoints SET message_id = (SELECT tomb FROM retention_expired r WHERE r.message_id = checkpoints.message_id)
				WHERE message_id IN (SELECT message_id FROM retention_expired)`,
			`DELETE FROM profile_events WHERE seq IN (SELECT seq FROM retention_expired)`,
			`DELETE FROM retention_expired`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return portrait.Wrap(err, "cannot delete what expired events made")
			}
		}
		for _, e := range st.Carried {
			if e.Owner == "" {
				continue // decisions: on no profile
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
	return db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE retention_runs SET pending = NULL WHERE id = ?`, run); err != nil {
			return portrait.Wrap(err, "cannot record the retention run")
		}
		return nil
	})
}

// finishRetention finishes, at the start, the state's part of a retention
// pass the process died in the middle of (see ExpireEvents). A state that
// no longer holds the pass's first part (its carried-forward events
// recorded as held: the state was set aside or reset since, and a rebuild
// lists them itself) is left to the rebuild.
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
		held := len(r.st.Carried) == 0
		for _, e := range r.st.Carried {
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
			r.st = retentionState{}
			if _, err := db.stateW.ExecContext(ctx, `DELETE FROM retention_expired`); err != nil {
				return portrait.Wrap(err, "cannot read retention runs")
			}
		}
		if err := db.retentionStatePart(ctx, r.id, &r.st); err != nil {
			return err
		}
	}
	// What a pass that died before its log's part recorded: its events
	// did not expire.
	if _, err := db.stateW.ExecContext(ctx, `DELETE FROM retention_expired`); err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
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

// insert adds events appended outside the group commit (a retention
// pass) in their places, so that the tail still holds every event after
// from, in order.
func (t *tail) insert(evs []*portrait.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		if e.Seq <= t.from {
			continue
		}
		i := sort.Search(len(t.events), func(i int) bool { return t.events[i].Seq > e.Seq })
		t.events = slices.Insert(t.events, i, e)
	}
}

// CarriedAccounts returns the accounts record of the latest retention
// pass (account.Carried).
func (db *DB) CarriedAccounts(ctx context.Context) ([]byte, error) {
	return profile.CarriedAccounts(ctx, db)
}
