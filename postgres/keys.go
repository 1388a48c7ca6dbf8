package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/keyhash"
)

var _ portrait.KeyStore = (*DB)(nil)

// Keys are kept as in the embedded store (sqlite/keys.go): a salted bcrypt
// hash of the secret's SHA-256, found by a short public prefix. Rows that
// `portrait migrate` copied from an embedded store older than its migration
// 015 carry a plain SHA-256 and no prefix; they are re-hashed on first use,
// as there.

func (db *DB) keyCost() int { return keyhash.Cost(db.KeyHashCost) }

const keyColumns = `id, kind, name, priority, created_at, role, scopes, clearance, expires_at`

func scanKey(sc pgx.Row, more ...any) (*portrait.Key, error) {
	k := &portrait.Key{}
	var at, exp int64
	var scopes string
	dest := append([]any{&k.ID, &k.Kind, &k.Name, &k.Priority, &at, &k.Role, &scopes, &k.Clearance, &exp}, more...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(at)
	if exp != 0 {
		k.ExpiresAt = fromMicros(exp)
	}
	if scopes != "" {
		k.Scopes = strings.Split(scopes, ",")
	}
	return k, nil
}

// CreateKey stores a credential. Creating the same secret again is a no-op,
// so that keys given in the environment can be "created" on every start
// (by every node).
func (db *DB) CreateKey(ctx context.Context, k *portrait.Key, secret string) error {
	if err := k.Prepare(secret); err != nil {
		return err
	}
	if existing, err := db.findKey(ctx, secret); err == nil {
		if existing.Kind != k.Kind {
			return portrait.Errorf(portrait.ECONFLICT, "that secret is already used by a key of another kind")
		}
		*k = *existing
		return nil
	} else if portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		return err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = db.Now()
	}
	hash, err := keyhash.Hash(secret, db.keyCost())
	if err != nil {
		return portrait.Wrap(err, "cannot hash the key")
	}
	var exp int64
	if !k.ExpiresAt.IsZero() {
		exp = micros(k.ExpiresAt)
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO keys (kind, name, hash, priority, created_at, role, scopes, clearance, expires_at, prefix)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		k.Kind, k.Name, hash, k.Priority, micros(k.CreatedAt), k.Role, strings.Join(k.Scopes, ","), k.Clearance, exp, keyhash.Prefix(secret)).Scan(&k.ID)
	if err != nil {
		return portrait.Wrap(err, "cannot create key")
	}
	return nil
}

// findKey returns the key whose secret this is, of any kind, checking the
// slow hash only against rows with the secret's prefix.
func (db *DB) findKey(ctx context.Context, secret string) (*portrait.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+`, hash, prefix IS NULL FROM keys WHERE prefix = $1 OR (prefix IS NULL AND hash = $2)`,
		keyhash.Prefix(secret), keyhash.Digest(secret))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot check credentials")
	}
	var keys []*portrait.Key
	var stored []keyhash.Stored
	for rows.Next() {
		var r keyhash.Stored
		k, err := scanKey(rows, &r.Hash, &r.Legacy)
		if err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot check credentials")
		}
		keys, stored = append(keys, k), append(stored, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot check credentials")
	}
	i, upgrade := keyhash.Match(secret, stored, db.keyCost())
	if i < 0 {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "unknown key")
	}
	if upgrade != "" {
		// Best effort: a failed upgrade leaves the old hash working.
		db.pool.Exec(ctx, `UPDATE keys SET hash = $1, prefix = $2 WHERE id = $3 AND prefix IS NULL`, upgrade, keyhash.Prefix(secret), keys[i].ID)
	}
	return keys[i], nil
}

// Authenticate finds the key of the given kind with this secret; an
// expired key does not authenticate.
func (db *DB) Authenticate(ctx context.Context, kind, secret string) (*portrait.Key, error) {
	k, err := db.findKey(ctx, secret)
	if err != nil {
		if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
			return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "unknown %s key", kind)
		}
		return nil, err
	}
	if k.Kind != kind {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "unknown %s key", kind)
	}
	if k.Expired(db.Now()) {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "this %s key expired at %s", kind, k.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return k, nil
}

// Key returns the key with this id.
func (db *DB) Key(ctx context.Context, id int64) (*portrait.Key, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no key with id %d", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read key")
	}
	return k, nil
}

// ListKeys lists credentials (never their secrets).
func (db *DB) ListKeys(ctx context.Context) ([]*portrait.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list keys")
	}
	defer rows.Close()
	var out []*portrait.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot list keys")
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot list keys")
	}
	return out, nil
}

// RevokeKey deletes a key and its sessions together.
func (db *DB) RevokeKey(ctx context.Context, id int64) error {
	return db.adminTx(ctx, "cannot revoke key", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE key_id = $1`, id); err != nil {
			return portrait.Wrap(err, "cannot end the key's sessions")
		}
		tag, err := tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, id)
		if err != nil {
			return portrait.Wrap(err, "cannot revoke key")
		}
		if tag.RowsAffected() == 0 {
			return portrait.Errorf(portrait.ENOTFOUND, "no key with id %d", id)
		}
		return nil
	})
}

// adminTx runs fn in a transaction; an error that is not already the
// store's own (a failed commit) is wrapped with msg.
func (db *DB) adminTx(ctx context.Context, msg string, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, db.pool, fn)
	var pe *portrait.Error
	if err != nil && !errors.As(err, &pe) {
		return portrait.Wrap(err, msg)
	}
	return err
}
