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
// not throw the answer caches away. A quarantined record deleted by
// retention moves no part of it: a report may count it until the next
// commit.
func (db *DB) ContentVersion(ctx context.Context) (string, error) {
	var seq, qid, imp, ch, floor int64
	err := db.pool.QueryRow(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM events), (SELECT coalesce(max(id), 0) FROM quarantine),
		(SELECT coalesce(max(updated_at), 0) FROM imports), (SELECT coalesce(max(seq), 0) FROM profile_changes), (SELECT seq FROM profile_changes_floor)`).Scan(&seq, &qid, &imp, &ch, &floor)
	if err != nil {
		return "", portrait.Wrap(err, "cannot read the content version")
	}
	return fmt.Sprintf("%d.%d.%d.%d.%d", seq, qid, imp, ch, floor), nil
}
