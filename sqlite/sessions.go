package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.SessionStore = (*DB)(nil)

// SessionChanges counts the changes made through this DB that can end a
// session (a revoked key, a deleted, purged or trimmed session): the HTTP
// server keeps sessions in memory and reads one again when this moved, so
// an ending is seen at once in this process.
func (db *DB) SessionChanges() uint64 { return db.sessionChanges.Load() }

// Sessions live in the event log's file next to the keys, so revoking a key
// and ending its sessions is one transaction, and the join in Session makes
// a revoked key's session fail on its very next request.

// CreateSession stores se; the INSERT ... SELECT finds no key row when the
// key was revoked in the meantime (e.g. after a one-time link was printed).
func (db *DB) CreateSession(ctx context.Context, se *portrait.Session) error {
	if se.Key == nil || se.IDHash == "" {
		return portrait.Errorf(portrait.EINVALID, "a session needs an id and a key")
	}
	res, err := db.logW.ExecContext(ctx, `INSERT INTO sessions (id_hash, key_id, created_at, seen_at, expires_at)
		SELECT ?, id, ?, ?, ? FROM keys WHERE id = ?`,
		se.IDHash, micros(se.Created), micros(se.LastSeen), micros(se.Expires), se.Key.ID)
	if err != nil {
		return portrait.Wrap(err, "cannot store session")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "key %d no longer exists", se.Key.ID)
	}
	return nil
}

// Session reads a live session with its key.
func (db *DB) Session(ctx context.Context, idHash string, now time.Time) (*portrait.Session, error) {
	se := &portrait.Session{IDHash: idHash}
	var created, seen, expires int64
	// The key's role, scopes and clearance come with it: the session acts
	// with exactly its key's rights (access.PrincipalOf).
	k, err := scanKey(db.logR.QueryRowContext(ctx, `SELECT k.id, k.kind, k.name, k.priority, k.created_at, k.role, k.scopes, k.clearance, k.expires_at,
		s.created_at, s.seen_at, s.expires_at
		FROM sessions s JOIN keys k ON k.id = s.key_id WHERE s.id_hash = ? AND s.expires_at > ?`, idHash, micros(now)), &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no such session")
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read session")
	}
	if k.Expired(now) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no such session: its key has expired")
	}
	se.Key = k
	se.Created, se.LastSeen, se.Expires = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return se, nil
}

func (db *DB) TouchSession(ctx context.Context, idHash string, seen, expires time.Time) error {
	if _, err := db.logW.ExecContext(ctx, `UPDATE sessions SET seen_at = ?, expires_at = ? WHERE id_hash = ?`, micros(seen), micros(expires), idHash); err != nil {
		return portrait.Wrap(err, "cannot renew session")
	}
	return nil
}

func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	defer db.sessionChanges.Add(1)
	if _, err := db.logW.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return portrait.Wrap(err, "cannot end session")
	}
	return nil
}

func (db *DB) PurgeSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, portrait.Wrap(err, "cannot purge sessions")
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		db.sessionChanges.Add(1)
	}
	return n, nil
}

func (db *DB) TrimSessions(ctx context.Context, max int) error {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash IN (
		SELECT id_hash FROM sessions ORDER BY seen_at DESC LIMIT -1 OFFSET ?)`, max)
	if err != nil {
		return portrait.Wrap(err, "cannot trim sessions")
	}
	if n, _ := res.RowsAffected(); n > 0 {
		db.sessionChanges.Add(1)
	}
	return nil
}

// RevokeKey deletes a key and its sessions together.
func (db *DB) RevokeKey(ctx context.Context, id int64) error {
	// Counted whatever the outcome: a failed commit may still have ended
	// sessions, and a needless re-read costs one query.
	defer db.sessionChanges.Add(1)
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot revoke key")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE key_id = ?`, id); err != nil {
		return portrait.Wrap(err, "cannot end the key's sessions")
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, id)
	if err != nil {
		return portrait.Wrap(err, "cannot revoke key")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "no key with id %d", id)
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot revoke key")
	}
	return nil
}
