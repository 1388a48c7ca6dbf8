package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/profile"
)

// Event retention: the store's part of profile.Processor.Compact.

var _ profile.CompactStore = (*DB)(nil)

// ExpiredEvents returns up to limit events with an event time before
// before and a sequence number after after and up to upTo, in log order.
func (db *DB) ExpiredEvents(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]*portrait.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, body FROM events WHERE seq > $1 AND seq <= $2 AND ts < $3 AND type <> $4 ORDER BY seq LIMIT $5`,
		after, upTo, micros(before), portrait.EventErased, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	return db.scanEvents(rows)
}

// ExpiredRefs is ExpiredEvents' sequence numbers and message ids.
func (db *DB) ExpiredRefs(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]profile.ExpiredRef, error) {
	return expiredRefs(ctx, db.pool, before, upTo, after, limit)
}

type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func expiredRefs(ctx context.Context, q pgQuerier, before time.Time, upTo, after int64, limit int) ([]profile.ExpiredRef, error) {
	rows, err := q.Query(ctx, `SELECT seq, message_id FROM events WHERE seq > $1 AND seq <= $2 AND ts < $3 AND type <> $4 ORDER BY seq LIMIT $5`,
		after, upTo, micros(before), portrait.EventErased, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (profile.ExpiredRef, error) {
		var x profile.ExpiredRef
		err := r.Scan(&x.Seq, &x.MessageID)
		return x, err
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	return out, nil
}

// ExpiredAmong returns those of ids that name an expired event (see
// ExpiredEvents), one query (by the message id index).
func (db *DB) ExpiredAmong(ctx context.Context, before time.Time, upTo int64, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT message_id FROM events WHERE message_id = ANY($1) AND seq <= $2 AND ts < $3 AND type <> $4`,
		ids, upTo, micros(before), portrait.EventErased)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// LoadCompacted returns the carried-forward events the state holds.
func (db *DB) LoadCompacted(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT message_id FROM compacted`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read carried-forward events")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read carried-forward events")
	}
	return ids, nil
}

// ExpireEvents carries the expired events' profiles forward and deletes the
// events (see profile.CompactStore). One transaction appends the
// carried-forward events (numbered under the log's append lock), lists
// them on their owners, records them as held and records the run, pending;
// then the expired events become tombstones, and what they alone made is
// deleted, TombstoneBatch a transaction (finishRetentionRun); then the run
// is done, and a VACUUM of the tables touched follows, as after an
// erasure. A pass stopped between batches is finished by the next start or
// pass (finishRetention): each batch does again what a batch done did not.
func (db *DB) ExpireEvents(ctx context.Context, c *profile.Compaction) error {
	if err := db.finishRetention(ctx); err != nil {
		return err
	}
	pending, err := json.Marshal(retentionPending{Before: micros(c.Before), UpTo: c.UpTo})
	if err != nil {
		return portrait.Wrap(err, "cannot encode the retention run")
	}
	err = db.adminTx(ctx, "cannot delete expired events", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAppend); err != nil { // numbering the log
			return err
		}
		if err := c.Carried(func(page []profile.Carried) error {
			for _, x := range page {
				if err := db.appendCarried(ctx, tx, x.Event, c.Before, c.UpTo); err != nil {
					return err
				}
			}
			b := &pgx.Batch{}
			for _, x := range page {
				e := x.Event
				if e.Seq == 0 {
					continue
				}
				b.Queue(`INSERT INTO compacted (message_id) VALUES ($1) ON CONFLICT DO NOTHING`, e.MessageID)
				if x.Owner == "" {
					continue // decisions, accounts: on no profile
				}
				b.Queue(`INSERT INTO profile_events (profile_id, ts, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, x.Owner, micros(e.Timestamp), e.Seq)
			}
			return tx.SendBatch(ctx, b).Close()
		}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify('portrait_log', '')`); err != nil {
			return err
		}
		id, err := insertRun(ctx, tx, &c.Run)
		c.Run.ID = id
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE retention_runs SET pending = $1 WHERE id = $2`, pending, id)
		return err
	})
	if err != nil {
		return err
	}
	if err := db.finishRetentionRun(ctx, c.Run.ID, retentionPending{Before: micros(c.Before), UpTo: c.UpTo}); err != nil {
		return err
	}
	if _, err := db.pool.Exec(ctx, "VACUUM events, trait_issues, merges, compacted, profile_events, retracted, splits"); err != nil {
		return portrait.Wrap(err, "cannot vacuum")
	}
	return nil
}

// appendCarried appends a carried-forward event (e.Seq: its sequence
// number; 0: the log holds one of its id that has not expired, an earlier
// pass's). An expired event holding its id (a carried-forward event of an
// earlier pass with the same limit, which this one replaces) becomes a
// tombstone first.
func (db *DB) appendCarried(ctx context.Context, tx pgx.Tx, e *portrait.Event, before time.Time, upTo int64) error {
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
	e.Seq = 0
	for try := 0; ; try++ {
		err := tx.QueryRow(ctx, `INSERT INTO events (seq, message_id, type, source, ts, received_at, body)
			VALUES ((SELECT coalesce(max(seq), 0) FROM events) + 1, $1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING RETURNING seq`,
			e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), b).Scan(&e.Seq)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if try > 0 {
			return nil
		}
		var old int64
		err = tx.QueryRow(ctx, `SELECT seq FROM events WHERE message_id = $1 AND seq <= $2 AND ts < $3 AND type <> $4`,
			e.MessageID, upTo, micros(before), portrait.EventErased).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tombstoneRefs(ctx, tx, []profile.ExpiredRef{{Seq: old, MessageID: e.MessageID}}); err != nil {
			return err
		}
	}
}

// retentionPending is what a pending run expires (retention_runs.pending).
type retentionPending struct {
	Before int64 `json:"before"` // micros
	UpTo   int64 `json:"up_to"`
}

// tombstoneRefs makes tombstones of the events refs names and deletes
// what they alone made: their trait issues (which hold refused values),
// merge-journal lines, held and retraction marks and event lists; a
// checkpoint naming one names its tombstone.
func tombstoneRefs(ctx context.Context, tx pgx.Tx, refs []profile.ExpiredRef) error {
	b := &pgx.Batch{}
	seqs := make([]int64, len(refs))
	msgs := make([]string, len(refs))
	tombs := make([]string, len(refs))
	for i, r := range refs {
		tomb := profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})
		seqs[i], msgs[i], tombs[i] = r.Seq, r.MessageID, tomb
		body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
		b.Queue(`UPDATE events SET type = $1, source = $1, message_id = $2, ts = 0, received_at = 0, body = $3 WHERE seq = $4 AND type <> $1`,
			portrait.EventErased, tomb, body, r.Seq)
	}
	b.Queue(`DELETE FROM trait_issues WHERE message_id = ANY($1)`, msgs)
	b.Queue(`DELETE FROM merges WHERE message_id = ANY($1)`, msgs)
	b.Queue(`DELETE FROM compacted WHERE message_id = ANY($1)`, msgs)
	b.Queue(`DELETE FROM retracted WHERE message_id = ANY($1)`, msgs)
	b.Queue(`UPDATE checkpoints c SET message_id = r.tomb FROM unnest($1::text[], $2::text[]) AS r(message_id, tomb) WHERE c.message_id = r.message_id`, msgs, tombs)
	b.Queue(`DELETE FROM profile_events WHERE seq = ANY($1)`, seqs)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return portrait.Wrap(err, "cannot delete expired events")
	}
	return nil
}

// finishRetentionRun makes tombstones of the expired events of run that
// are not yet, TombstoneBatch a transaction, and marks the run done: done
// again, it goes on where it stopped.
func (db *DB) finishRetentionRun(ctx context.Context, run int64, p retentionPending) error {
	n := db.tombBatch
	if n <= 0 {
		n = profile.TombstoneBatch
	}
	before := fromMicros(p.Before)
	for after := int64(0); ; {
		var refs []profile.ExpiredRef
		err := db.adminTx(ctx, "cannot delete expired events", func(tx pgx.Tx) error {
			var err error
			if refs, err = expiredRefs(ctx, tx, before, p.UpTo, after, n); err != nil || len(refs) == 0 {
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
	if _, err := db.pool.Exec(ctx, `UPDATE retention_runs SET pending = NULL WHERE id = $1`, run); err != nil {
		return portrait.Wrap(err, "cannot record the retention run")
	}
	return nil
}

// finishRetention finishes the retention passes stopped between their
// batches (see ExpireEvents): at the start, and before a pass.
func (db *DB) finishRetention(ctx context.Context) error {
	rows, err := db.pool.Query(ctx, `SELECT id, pending FROM retention_runs WHERE pending IS NOT NULL ORDER BY id`)
	if err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
	}
	type run struct {
		id int64
		p  retentionPending
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
		var x run
		var doc []byte
		if err := r.Scan(&x.id, &doc); err != nil {
			return x, err
		}
		return x, json.Unmarshal(doc, &x.p)
	})
	if err != nil {
		return portrait.Wrap(err, "cannot read retention runs")
	}
	for _, r := range runs {
		if err := db.finishRetentionRun(ctx, r.id, r.p); err != nil {
			return err
		}
	}
	if len(runs) > 0 {
		if _, err := db.pool.Exec(ctx, "VACUUM events, trait_issues, merges, compacted, profile_events, retracted, splits"); err != nil {
			return portrait.Wrap(err, "cannot vacuum")
		}
	}
	return nil
}

// FinishExpiry finishes a retention pass stopped between its batches
// (profile.CompactStore).
func (db *DB) FinishExpiry(ctx context.Context) error { return db.finishRetention(ctx) }

// RankMessages ranks the message ids of a retention pass's scratch log
// (profile.ScratchStore) in byte order (the "C" collation), written once,
// so that the pass's questions are indexed look-ups.
func (db *DB) RankMessages(ctx context.Context) error {
	return db.adminTx(ctx, "cannot rank expired events", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM message_ranks`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO message_ranks (message_id, rank)
			SELECT message_id, row_number() OVER (ORDER BY message_id COLLATE "C") - 1 FROM events WHERE type <> $1`, portrait.EventErased)
		return err
	})
}

// MessageRanks returns the ranks RankMessages wrote of those of ids the
// log holds, one query.
func (db *DB) MessageRanks(ctx context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT message_id, rank FROM message_ranks WHERE message_id = ANY($1)`, ids)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read expired events")
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r int64
		if err := rows.Scan(&id, &r); err != nil {
			return nil, portrait.Wrap(err, "cannot read expired events")
		}
		out[id] = r
	}
	return out, rows.Err()
}

// IdentitiesOfProfiles returns the identifiers each of pids owns, with
// the key of the event that attached each, one query.
func (db *DB) IdentitiesOfProfiles(ctx context.Context, pids []string) (map[string][]profile.BaseIdentity, error) {
	out := map[string][]profile.BaseIdentity{}
	if len(pids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT type, value, profile_id, at_us, at_msg FROM identities WHERE profile_id = ANY($1)`, pids)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read identities")
	}
	defer rows.Close()
	for rows.Next() {
		var id portrait.Identifier
		var pid, msg string
		var us int64
		if err := rows.Scan(&id.Type, &id.Value, &pid, &us, &msg); err != nil {
			return nil, portrait.Wrap(err, "cannot read identities")
		}
		if err := db.openIdentifier(&id); err != nil { // sealing
			return nil, err
		}
		x := profile.BaseIdentity{Type: id.Type, Value: id.Value}
		if us != 0 || msg != "" {
			x.At, x.Msg = time.UnixMicro(us).UTC(), msg
		}
		out[pid] = append(out[pid], x)
	}
	return out, rows.Err()
}

func insertRun(ctx context.Context, tx pgx.Tx, run *portrait.RetentionRun) (int64, error) {
	doc, err := json.Marshal(run)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot encode the retention run")
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO retention_runs (at, kind, before, deleted, doc) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		micros(run.At), run.Kind, micros(run.Before), run.Deleted, doc).Scan(&id); err != nil {
		return 0, portrait.Wrap(err, "cannot record the retention run")
	}
	return id, nil
}

// RetentionRuns lists the latest retention runs, newest first.
func (db *DB) RetentionRuns(ctx context.Context, limit int) ([]portrait.RetentionRun, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, doc FROM retention_runs ORDER BY id DESC LIMIT $1`, limit)
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
	err := db.pool.QueryRow(ctx, `SELECT id, doc FROM retention_runs WHERE kind = $1 ORDER BY id DESC LIMIT 1`, kind).Scan(&id, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
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

// CarriedAccounts returns the accounts record of the latest retention
// pass (account.Carried).
func (db *DB) CarriedAccounts(ctx context.Context) ([]byte, error) {
	return profile.CarriedAccounts(ctx, db)
}
