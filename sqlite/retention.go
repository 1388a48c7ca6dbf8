package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/portrait-cdp/portrait"
)

// QuarantineBytes is the size of the quarantined bodies by source.
func (db *DB) QuarantineBytes(ctx context.Context) (map[string]int64, error) {
	return countBy(ctx, db.logR, `SELECT source, sum(length(raw)) FROM quarantine GROUP BY source`)
}

// PurgeQuarantine deletes quarantined records received before before. A
// purge that deletes any is recorded as a retention run in the same
// transaction, which moves the content version.
func (db *DB) PurgeQuarantine(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		run := portrait.RetentionRun{Kind: "quarantine", At: db.Now().UTC(), Before: before.UTC()}
		var oldest, newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), min(received_at), max(received_at) FROM quarantine WHERE received_at < ?`, micros(before)).Scan(&run.Deleted, &oldest, &newest); err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		if run.Deleted == 0 {
			return nil
		}
		run.Oldest, run.Newest = fromMicros(oldest.Int64), fromMicros(newest.Int64)
		res, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE received_at < ?`, micros(before))
		if err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM quarantine_keys WHERE quarantine_id NOT IN (SELECT id FROM quarantine)`); err != nil {
			return portrait.Wrap(err, "cannot purge the quarantine")
		}
		n, _ = res.RowsAffected()
		run.Deleted = n
		_, err = insertRun(ctx, tx, &run)
		return err
	})
	return n, err
}
