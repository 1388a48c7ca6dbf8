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
// events (see profile.CompactStore), in one transaction (the log and the
// state are one database here), numbering the carried-forward events under
// the log's append lock; then a VACUUM of the tables it touched, as after
// an erasure.
func (db *DB) ExpireEvents(ctx context.Context, c *profile.Compaction) error {
	bodies := make([][]byte, len(c.Carried))
	for i, e := range c.Carried {
		b, err := json.Marshal(e)
		if err != nil {
			return portrait.Wrap(err, "cannot encode a carried-forward event")
		}
		if b, err = db.sealer.SealEvent(b); err != nil { // sealing
			return err
		}
		if bodies[i], err = storeseal.SealRetained(db.sealer, b); err != nil {
			return err
		}
	}
	err := db.adminTx(ctx, "cannot delete expired events", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAppend); err != nil { // numbering the log
			return err
		}
		// The expired events, page by page, into a table of the
		// transaction: what they alone made is then deleted set-wise (a
		// statement per event scanned the merge journal and the event
		// lists, which have no index on what expired, once per event),
		// and nothing here holds them all.
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE retention_expired (seq bigint PRIMARY KEY, message_id text NOT NULL, tomb text NOT NULL) ON COMMIT DROP`); err != nil {
			return err
		}
		for after := int64(0); ; {
			refs, err := expiredRefs(ctx, tx, c.Before, c.UpTo, after, profile.ExpiredPage)
			if err != nil {
				return err
			}
			if len(refs) == 0 {
				break
			}
			after = refs[len(refs)-1].Seq
			b := &pgx.Batch{}
			// Tombstones first: a carried-forward event of an earlier
			// pass may have the message id this pass gives its successor.
			for _, r := range refs {
				tomb := profile.ExpiredID(&portrait.Event{Seq: r.Seq, MessageID: r.MessageID})
				body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
				b.Queue(`UPDATE events SET type = $1, source = $1, message_id = $2, ts = 0, received_at = 0, body = $3 WHERE seq = $4 AND type <> $1`,
					portrait.EventErased, tomb, body, r.Seq)
				b.Queue(`INSERT INTO retention_expired (seq, message_id, tomb) VALUES ($1, $2, $3)`, r.Seq, r.MessageID, tomb)
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		b.Queue(`ANALYZE retention_expired`)
		b.Queue(`DELETE FROM trait_issues WHERE message_id IN (SELECT message_id FROM retention_expired)`)
		b.Queue(`DELETE FROM merges WHERE message_id IN (SELECT message_id FROM retention_expired)`)
		b.Queue(`DELETE FROM compacted WHERE message_id IN (SELECT message_id FROM retention_expired)`)
		b.Queue(`DELETE FROM retracted WHERE message_id IN (SELECT message_id FROM retention_expired)`)
		b.Queue(`UPDATE checkpoints c SET message_id = r.tomb FROM retention_expired r WHERE c.message_id = r.message_id`)
		b.Queue(`DELETE FROM profile_events WHERE seq IN (SELECT seq FROM retention_expired)`)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for i, e := range c.Carried {
			err := tx.QueryRow(ctx, `INSERT INTO events (seq, message_id, type, source, ts, received_at, body)
				VALUES ((SELECT coalesce(max(seq), 0) FROM events) + 1, $1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING RETURNING seq`,
				e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), bodies[i]).Scan(&e.Seq)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
		}
		b = &pgx.Batch{}
		for _, e := range c.Carried {
			if e.Seq == 0 {
				continue
			}
			b.Queue(`INSERT INTO compacted (message_id) VALUES ($1) ON CONFLICT DO NOTHING`, e.MessageID)
			if c.Owners[e.MessageID] == "" {
				continue // decisions: on no profile
			}
			b.Queue(`INSERT INTO profile_events (profile_id, ts, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, c.Owners[e.MessageID], micros(e.Timestamp), e.Seq)
		}
		b.Queue(`SELECT pg_notify('portrait_log', '')`)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		id, err := insertRun(ctx, tx, &c.Run)
		c.Run.ID = id
		return err
	})
	if err != nil {
		return err
	}
	if _, err := db.pool.Exec(ctx, "VACUUM events, trait_issues, merges, compacted, profile_events, retracted, splits"); err != nil {
		return portrait.Wrap(err, "cannot vacuum")
	}
	return nil
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
