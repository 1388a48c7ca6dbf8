package sqlite

import (
	"context"
	"database/sql"

	"github.com/portrait-cdp/portrait"
)

// The data-quality report's raw counts. Each is one aggregate query or
// scan; the report (package quality) turns them into rates.

// EventCountsBySource counts logged events per source.
func (db *DB) EventCountsBySource(ctx context.Context) (map[string]int64, error) {
	return countBy(ctx, db.logR, `SELECT source, count(*) FROM events WHERE type <> ? GROUP BY source`, portrait.EventErased)
}

// MergeCounts counts merge-journal entries by kind (merged, refused, ...).
func (db *DB) MergeCounts(ctx context.Context) (map[string]int64, error) {
	return countBy(ctx, db.stateR, `SELECT kind, count(*) FROM merges GROUP BY kind`)
}

// EachQuarantineReason calls fn with the source and reason of every
// quarantined record, grouped in the database by exact reason first.
func (db *DB) EachQuarantineReason(ctx context.Context, fn func(source, reason string, n int64) error) error {
	rows, err := db.logR.QueryContext(ctx, `SELECT source, reason, count(*) FROM quarantine GROUP BY source, reason`)
	if err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	defer rows.Close()
	for rows.Next() {
		var src, reason string
		var n int64
		if err := rows.Scan(&src, &reason, &n); err != nil {
			return portrait.Wrap(err, "cannot read the quarantine")
		}
		if err := fn(src, reason, n); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	return nil
}

func countBy(ctx context.Context, d *sql.DB, q string, args ...any) (map[string]int64, error) {
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count")
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, portrait.Wrap(err, "cannot count")
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot count")
	}
	return out, nil
}
