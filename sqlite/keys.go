package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/keyhash"
)

var _ portrait.KeyStore = (*DB)(nil)

// Secrets are stored as salted bcrypt hashes, so a copy of the store does
// not let anyone try secrets offline at speed. bcrypt takes at most 72
// bytes, so it hashes the secret's SHA-256 (hex) rather than the secret.
// A row is found by a short public prefix of its secret (keyhash.Prefix): the
// slow hash is then checked against the few rows with that prefix only.
// The server caches verified secrets (http/auth.go), so the ingest path
// pays the slow hash once per key and cache period, not per batch.

func (db *DB) keyCost() int { return keyhash.Cost(db.KeyHashCost) }

const keyColumns = `id, kind, name, priority, created_at, role, scopes, clearance, expires_at`

func scanKey(sc interface{ Scan(...any) error }, more ...any) (*portrait.Key, error) {
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
// so that keys given in the environment can be "created" on every start.
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
	res, err := db.logW.ExecContext(ctx, `INSERT INTO keys (kind, name, hash, priority, created_at, role, scopes, clearance, expires_at, prefix)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Kind, k.Name, hash, k.Priority, micros(k.CreatedAt), k.Role, strings.Join(k.Scopes, ","), k.Clearance, exp, keyhash.Prefix(secret))
	if err != nil {
		return portrait.Wrap(err, "cannot create key")
	}
	k.ID, _ = res.LastInsertId()
	return nil
}

// findKey returns the key whose secret this is, of any kind, checking the
// slow hash only against rows with the secret's prefix; a row from before
// migration 015 (SHA-256, no prefix) is re-hashed on its first match.
func (db *DB) findKey(ctx context.Context, secret string) (*portrait.Key, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT `+keyColumns+`, hash, prefix IS NULL FROM keys WHERE prefix = ? OR (prefix IS NULL AND hash = ?)`,
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
		db.logW.ExecContext(ctx, `UPDATE keys SET hash = ?, prefix = ? WHERE id = ? AND prefix IS NULL`, upgrade, keyhash.Prefix(secret), keys[i].ID)
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
	k, err := scanKey(db.logR.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no key with id %d", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read key")
	}
	return k, nil
}

// ListKeys lists credentials (never their secrets).
func (db *DB) ListKeys(ctx context.Context) ([]*portrait.Key, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY id`)
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
	return out, rows.Err()
}
