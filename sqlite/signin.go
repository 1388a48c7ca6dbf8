package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.SignInGuard = (*DB)(nil)

// The sign-in throttle and one-time codes (portrait.SignInGuard) live in the
// event log's file beside the keys and sessions: a code dies with its key.

// SignInFailed counts a failure; a count whose window has passed starts
// again. Expired counts are pruned on the way (a failure path, not a hot
// one), and past portrait.MaxSignInClients all are dropped, as the
// in-memory throttle did.
func (db *DB) SignInFailed(ctx context.Context, client string, now time.Time, window time.Duration) (int, time.Time, error) {
	cutoff := micros(now.Add(-window))
	var n int
	var first int64
	err := db.logTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_failures WHERE first_at <= ?`, cutoff); err != nil {
			return err
		}
		var count int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sign_in_failures`).Scan(&count); err != nil {
			return err
		}
		if count >= portrait.MaxSignInClients {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_failures`); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO sign_in_failures (client, n, first_at) VALUES (?, 1, ?)
			ON CONFLICT (client) DO UPDATE SET n = n + 1 RETURNING n, first_at`, client, micros(now)).Scan(&n, &first)
	})
	if err != nil {
		return 0, time.Time{}, portrait.Wrap(err, "cannot count a failed sign-in")
	}
	return n, fromMicros(first), nil
}

// SignInFailures returns a client's count within the window.
func (db *DB) SignInFailures(ctx context.Context, client string, now time.Time, window time.Duration) (int, time.Time, error) {
	var n int
	var first int64
	err := db.logR.QueryRowContext(ctx, `SELECT n, first_at FROM sign_in_failures WHERE client = ? AND first_at > ?`, client, micros(now.Add(-window))).Scan(&n, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, portrait.Wrap(err, "cannot read failed sign-ins")
	}
	return n, fromMicros(first), nil
}

// PutSignInCode keeps a one-time code (its hash) for a key.
func (db *DB) PutSignInCode(ctx context.Context, code string, keyID int64, now, expires time.Time) error {
	err := db.logTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_codes WHERE expires_at <= ?`, micros(now)); err != nil {
			return err
		}
		var count int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sign_in_codes`).Scan(&count); err != nil {
			return err
		}
		if count >= portrait.MaxSignInCodes {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_codes`); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sign_in_codes (code_hash, key_id, expires_at) SELECT ?, id, ? FROM keys WHERE id = ?`, code, micros(expires), keyID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return portrait.Errorf(portrait.ENOTFOUND, "key %d no longer exists", keyID)
		}
		return nil
	})
	if err != nil && portrait.ErrorCode(err) != portrait.ENOTFOUND {
		return portrait.Wrap(err, "cannot keep the sign-in code")
	}
	return err
}

// TakeSignInCode removes a code and returns its key's id when it was fresh.
func (db *DB) TakeSignInCode(ctx context.Context, code string, now time.Time) (int64, bool, error) {
	var keyID, expires int64
	err := db.logW.QueryRowContext(ctx, `DELETE FROM sign_in_codes WHERE code_hash = ? RETURNING key_id, expires_at`, code).Scan(&keyID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, portrait.Wrap(err, "cannot take the sign-in code")
	}
	if micros(now) >= expires {
		return 0, false, nil
	}
	return keyID, true, nil
}

// logTx runs fn in a transaction on the event log's file.
func (db *DB) logTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
