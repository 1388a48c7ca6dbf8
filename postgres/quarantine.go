package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// The quarantine's rows are written by Append (log.go); these are its
// reads, its retention and its accounting.

var _ portrait.QuarantineStore = (*DB)(nil)

// ListQuarantine lists quarantined records, oldest first, after a cursor.
func (db *DB) ListQuarantine(ctx context.Context, f portrait.QuarantineFilter) ([]*portrait.Rejected, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := `SELECT id, source, idx, reason, raw, received_at FROM quarantine WHERE id > $1`
	args := []any{f.After}
	if f.Source != "" {
		args = append(args, f.Source)
		q += fmt.Sprintf(` AND source = $%d`, len(args))
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list the quarantine")
	}
	defer rows.Close()
	var out []*portrait.Rejected
	for rows.Next() {
		r := new(portrait.Rejected)
		var at int64
		if err := rows.Scan(&r.ID, &r.Source, &r.Index, &r.Reason, &r.Raw, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot list the quarantine")
		}
		var err error
		if r.Raw, err = db.sealer.OpenBlob(r.Raw, datakey.BlobQuarantine); err != nil { // sealing
			return nil, err
		}
		r.ReceivedAt = fromMicros(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot list the quarantine")
	}
	return out, nil
}

// PurgeQuarantine deletes quarantined records received before before, and
// the import keys that pointed at them, in one transaction.
func (db *DB) PurgeQuarantine(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.adminTx(ctx, "cannot purge the quarantine", func(tx pgx.Tx) error {
		// A purge that deletes any is recorded as a retention run in
		// the same transaction, which moves the content version.
		run := portrait.RetentionRun{Kind: "quarantine", At: db.Now().UTC(), Before: before.UTC()}
		var oldest, newest *int64
		if err := tx.QueryRow(ctx, `SELECT min(received_at), max(received_at) FROM quarantine WHERE received_at < $1`, micros(before)).Scan(&oldest, &newest); err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		tag, err := tx.Exec(ctx, `DELETE FROM quarantine WHERE received_at < $1`, micros(before))
		if err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		n = tag.RowsAffected()
		if n == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, orphanQuarantineKeys); err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		run.Deleted = n
		if oldest != nil && newest != nil {
			run.Oldest, run.Newest = fromMicros(*oldest), fromMicros(*newest)
		}
		_, err = insertRun(ctx, tx, &run)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

const orphanQuarantineKeys = `DELETE FROM quarantine_keys k WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.id = k.quarantine_id)`

// QuarantineBytes is the size of the quarantined bodies by source.
func (db *DB) QuarantineBytes(ctx context.Context) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT source, sum(octet_length(raw))::bigint FROM quarantine GROUP BY source`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the quarantine")
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, portrait.Wrap(err, "cannot read the quarantine")
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the quarantine")
	}
	return out, nil
}

// EachQuarantineReason calls fn with the source and reason of every
// quarantined record, grouped in the database by exact reason first.
func (db *DB) EachQuarantineReason(ctx context.Context, fn func(source, reason string, n int64) error) error {
	rows, err := db.pool.Query(ctx, `SELECT source, reason, count(*) FROM quarantine GROUP BY source, reason`)
	if err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	// Rows are gathered first: fn may call the store, and the pool is
	// better not held by a half-read result meanwhile.
	type group struct {
		source, reason string
		n              int64
	}
	var groups []group
	for rows.Next() {
		var g group
		if err := rows.Scan(&g.source, &g.reason, &g.n); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot read the quarantine")
		}
		groups = append(groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	for _, g := range groups {
		if err := fn(g.source, g.reason, g.n); err != nil {
			return err
		}
	}
	return nil
}
