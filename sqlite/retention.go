package sqlite

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
)

// QuarantineBytes is the size of the quarantined bodies by source.
func (db *DB) QuarantineBytes(ctx context.Context) (map[string]int64, error) {
	return countBy(ctx, db.logR, `SELECT source, sum(length(raw)) FROM quarantine GROUP BY source`)
}

// PurgeQuarantine deletes quarantined records received before before.
func (db *DB) PurgeQuarantine(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM quarantine WHERE received_at < ?`, micros(before))
	if err != nil {
		return 0, portrait.Wrap(err, "cannot purge the quarantine")
	}
	if _, err := db.logW.ExecContext(ctx, `DELETE FROM quarantine_keys WHERE quarantine_id NOT IN (SELECT id FROM quarantine)`); err != nil {
		return 0, portrait.Wrap(err, "cannot purge the quarantine")
	}
	n, _ := res.RowsAffected()
	return n, nil
}
