package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"sync"

	"github.com/portrait-cdp/portrait"
)

// dataVersion watches both files for commits. SQLite's PRAGMA data_version
// changes on a connection whenever another connection (or process) has
// committed to the file since the last call on that connection, so each
// file needs one connection kept aside for asking: a pooled one would
// answer for whichever connection the pool handed out.
type dataVersion struct {
	mu         sync.Mutex
	log, state *sql.Conn
	closed     bool
}

// DataVersion returns a token that changes whenever anything was committed
// to the log or the derived state since the previous call: two equal tokens
// mean the data read in between could not have changed. Caches of derived
// reports (the quality report) key on it.
func (db *DB) DataVersion(ctx context.Context) (string, error) {
	v := &db.version
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "the store is closed")
	}
	var err error
	if v.log == nil {
		if v.log, err = db.logR.Conn(ctx); err != nil {
			return "", portrait.Wrap(err, "cannot watch the event log")
		}
	}
	if v.state == nil {
		if v.state, err = db.stateR.Conn(ctx); err != nil {
			return "", portrait.Wrap(err, "cannot watch the profiles")
		}
	}
	var lv, sv int64
	if err := v.log.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&lv); err != nil {
		return "", portrait.Wrap(err, "cannot read the event log's version")
	}
	if err := v.state.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&sv); err != nil {
		return "", portrait.Wrap(err, "cannot read the profiles' version")
	}
	return strconv.FormatInt(lv, 10) + "." + strconv.FormatInt(sv, 10), nil
}

// ContentVersion returns a token that changes when what reports read
// changes: the log's events, the quarantine and the imports (their
// highest seq, id and update time) and the derived state (its file's
// data_version), and the retention runs (a run that deleted quarantined
// records or expired events). Unlike DataVersion it stays put when only
// sessions, audit records, keys or other bookkeeping of the log's file are
// written, so a sign-in or an audited read does not throw the answer
// caches away.
func (db *DB) ContentVersion(ctx context.Context) (string, error) {
	v := &db.version
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "the store is closed")
	}
	if v.state == nil {
		var err error
		if v.state, err = db.stateR.Conn(ctx); err != nil {
			return "", portrait.Wrap(err, "cannot watch the profiles")
		}
	}
	var seq, qid, imp, sv, ret int64
	if err := db.logR.QueryRowContext(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM events), (SELECT coalesce(max(id), 0) FROM quarantine),
		(SELECT coalesce(max(updated_at), 0) FROM imports), (SELECT coalesce(max(id), 0) FROM retention_runs)`).Scan(&seq, &qid, &imp, &ret); err != nil {
		return "", portrait.Wrap(err, "cannot read the event log's version")
	}
	if err := v.state.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&sv); err != nil {
		return "", portrait.Wrap(err, "cannot read the profiles' version")
	}
	return strconv.FormatInt(seq, 10) + "." + strconv.FormatInt(qid, 10) + "." + strconv.FormatInt(imp, 10) + "." + strconv.FormatInt(sv, 10) + "." + strconv.FormatInt(ret, 10), nil
}

// close returns the watching connections to their pools before they close.
func (v *dataVersion) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	for _, c := range []*sql.Conn{v.log, v.state} {
		if c != nil {
			c.Close()
		}
	}
	v.log, v.state = nil, nil
}
