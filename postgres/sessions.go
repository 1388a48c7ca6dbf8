package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.SessionStore = (*DB)(nil)

// Sessions reference their key (ON DELETE CASCADE), so revoking a key ends
// its sessions in the same transaction, and the join in Session makes a
// revoked key's session fail on its very next request, on every node.

// CreateSession stores se; the INSERT ... SELECT finds no key row when the
// key was revoked in the meantime.
func (db *DB) CreateSession(ctx context.Context, se *portrait.Session) error {
	if se.Key == nil || se.IDHash == "" {
		return portrait.Errorf(portrait.EINVALID, "a session needs an id and a key")
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO sessions (id_hash, key_id, created_at, seen_at, expires_at)
		SELECT $1, id, $2, $3, $4 FROM keys WHERE id = $5`,
		se.IDHash, micros(se.Created), micros(se.LastSeen), micros(se.Expires), se.Key.ID)
	if err != nil {
		return portrait.Wrap(err, "cannot store session")
	}
	if tag.RowsAffected() == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "key %d no longer exists", se.Key.ID)
	}
	return nil
}

// Session reads a live session with its key, whose role, scopes and
// clearance the session acts with.
func (db *DB) Session(ctx context.Context, idHash string, now time.Time) (*portrait.Session, error) {
	se := &portrait.Session{IDHash: idHash}
	var created, seen, expires int64
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT k.id, k.kind, k.name, k.priority, k.created_at, k.role, k.scopes, k.clearance, k.expires_at,
		s.created_at, s.seen_at, s.expires_at
		FROM sessions s JOIN keys k ON k.id = s.key_id WHERE s.id_hash = $1 AND s.expires_at > $2`, idHash, micros(now)), &created, &seen, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if _, err := db.pool.Exec(ctx, `UPDATE sessions SET seen_at = $1, expires_at = $2 WHERE id_hash = $3`, micros(seen), micros(expires), idHash); err != nil {
		return portrait.Wrap(err, "cannot renew session")
	}
	return nil
}

func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return portrait.Wrap(err, "cannot end session")
	}
	return nil
}

func (db *DB) PurgeSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, micros(now))
	if err != nil {
		return 0, portrait.Wrap(err, "cannot purge sessions")
	}
	return tag.RowsAffected(), nil
}

func (db *DB) TrimSessions(ctx context.Context, max int) error {
	// SQLite reads a negative OFFSET as none; PostgreSQL refuses it.
	if max < 0 {
		max = 0
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN (
		SELECT id_hash FROM sessions ORDER BY seen_at DESC OFFSET $1)`, max); err != nil {
		return portrait.Wrap(err, "cannot trim sessions")
	}
	return nil
}
