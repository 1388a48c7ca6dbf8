package postgres

import (
	"context"
	"fmt"

	"github.com/portrait-cdp/portrait"
)

// ContentVersion returns a token that changes when what reports read
// changes: the log's events, the quarantine and the imports (their
// highest seq, id and update time) and the profiles (the change feed's
// end, which every state commit that writes or deletes a profile moves,
// and its floor, which a reset moves). Unlike DataVersion it stays put
// when sessions, audit records or anything else is written, here or in
// another database of the server, so a sign-in or an audited read does
// not throw the answer caches away. A retention run that deleted
// quarantined records or expired events adds a row to retention_runs,
// which is part of it.
func (db *DB) ContentVersion(ctx context.Context) (string, error) {
	var seq, qid, imp, ch, floor, ret int64
	err := db.pool.QueryRow(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM events), (SELECT coalesce(max(id), 0) FROM quarantine),
		(SELECT coalesce(max(updated_at), 0) FROM imports), (SELECT coalesce(max(seq), 0) FROM profile_changes), (SELECT seq FROM profile_changes_floor),
		(SELECT coalesce(max(id), 0) FROM retention_runs)`).Scan(&seq, &qid, &imp, &ch, &floor, &ret)
	if err != nil {
		return "", portrait.Wrap(err, "cannot read the content version")
	}
	return fmt.Sprintf("%d.%d.%d.%d.%d.%d", seq, qid, imp, ch, floor, ret), nil
}
