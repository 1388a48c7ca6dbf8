package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.KeyStore = (*DB)(nil)

// hashSecret: secrets are long random strings, so a plain SHA-256 is enough
// (no password-style stretching needed) and keeps authentication cheap on
// the hot ingest path.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateKey stores a credential. Creating the same secret again is a no-op,
// so that keys given in the environment can be "created" on every start.
func (db *DB) CreateKey(ctx context.Context, k *portrait.Key, secret string) error {
	if k.Kind != portrait.KeyWrite && k.Kind != portrait.KeyAdmin {
		return portrait.Errorf(portrait.EINVALID, "key kind must be write or admin, not %q", k.Kind)
	}
	if strings.TrimSpace(k.Name) == "" {
		return portrait.Errorf(portrait.EINVALID, "a key needs a name")
	}
	if portrait.IsSystemSource(k.Name) {
		return portrait.Errorf(portrait.EINVALID, "key name %q is reserved for Portrait's own sources", k.Name)
	}
	if len(secret) < 8 {
		return portrait.Errorf(portrait.EINVALID, "a key secret must be at least 8 characters")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = db.Now()
	}
	res, err := db.logW.ExecContext(ctx, `INSERT INTO keys (kind, name, hash, priority, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
		k.Kind, k.Name, hashSecret(secret), k.Priority, micros(k.CreatedAt))
	if err != nil {
		return portrait.Wrap(err, "cannot create key")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		existing, err := db.Authenticate(ctx, k.Kind, secret)
		if err != nil {
			return portrait.Errorf(portrait.ECONFLICT, "that secret is already used by a key of another kind")
		}
		*k = *existing
		return nil
	}
	k.ID, _ = res.LastInsertId()
	return nil
}

// Authenticate finds the key of the given kind with this secret.
func (db *DB) Authenticate(ctx context.Context, kind, secret string) (*portrait.Key, error) {
	k := &portrait.Key{}
	var at int64
	err := db.logR.QueryRowContext(ctx, `SELECT id, kind, name, priority, created_at FROM keys WHERE hash = ? AND kind = ?`, hashSecret(secret), kind).
		Scan(&k.ID, &k.Kind, &k.Name, &k.Priority, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "unknown %s key", kind)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot check credentials")
	}
	k.CreatedAt = fromMicros(at)
	return k, nil
}

// ListKeys lists credentials (never their secrets).
func (db *DB) ListKeys(ctx context.Context) ([]*portrait.Key, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT id, kind, name, priority, created_at FROM keys ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list keys")
	}
	defer rows.Close()
	var out []*portrait.Key
	for rows.Next() {
		k := &portrait.Key{}
		var at int64
		if err := rows.Scan(&k.ID, &k.Kind, &k.Name, &k.Priority, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot list keys")
		}
		k.CreatedAt = fromMicros(at)
		out = append(out, k)
	}
	return out, rows.Err()
}
