package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.SignInGuard = (*DB)(nil)

// The sign-in throttle and one-time codes (portrait.SignInGuard), shared by
// every api node: a client's failures on one node count on the others, and
// a code printed by one node is taken once, on any.

// SignInFailed counts a failure; a count whose window has passed starts
// again, in the one statement, so two nodes counting at once both count.
func (db *DB) SignInFailed(ctx context.Context, client string, now time.Time, window time.Duration) (int, time.Time, error) {
	cutoff := micros(now.Add(-window))
	var n int
	var first int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Pruned on the way (a failure path, not a hot one); past the cap
		// every count goes, as the in-memory throttle did.
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE first_at <= $1`, cutoff); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_failures WHERE (SELECT count(*) FROM sign_in_failures) >= $1`, portrait.MaxSignInClients); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO sign_in_failures AS f (client, n, first_at) VALUES ($1, 1, $2)
			ON CONFLICT (client) DO UPDATE SET
				n = CASE WHEN f.first_at <= $3 THEN 1 ELSE f.n + 1 END,
				first_at = CASE WHEN f.first_at <= $3 THEN excluded.first_at ELSE f.first_at END
			RETURNING n, first_at`, client, micros(now), cutoff).Scan(&n, &first)
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
	err := db.pool.QueryRow(ctx, `SELECT n, first_at FROM sign_in_failures WHERE client = $1 AND first_at > $2`, client, micros(now.Add(-window))).Scan(&n, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, portrait.Wrap(err, "cannot read failed sign-ins")
	}
	return n, fromMicros(first), nil
}

// PutSignInCode keeps a one-time code (its hash) for a key.
func (db *DB) PutSignInCode(ctx context.Context, code string, keyID int64, now, expires time.Time) error {
	var inserted int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_codes WHERE expires_at <= $1`, micros(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_codes WHERE (SELECT count(*) FROM sign_in_codes) >= $1`, portrait.MaxSignInCodes); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO sign_in_codes (code_hash, key_id, expires_at) SELECT $1, id, $2 FROM keys WHERE id = $3`, code, micros(expires), keyID)
		inserted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return portrait.Wrap(err, "cannot keep the sign-in code")
	}
	if inserted == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "key %d no longer exists", keyID)
	}
	return nil
}

// TakeSignInCode removes a code and returns its key's id when it was
// fresh; the DELETE ... RETURNING gives the row to one taker only.
func (db *DB) TakeSignInCode(ctx context.Context, code string, now time.Time) (int64, bool, error) {
	var keyID, expires int64
	err := db.pool.QueryRow(ctx, `DELETE FROM sign_in_codes WHERE code_hash = $1 RETURNING key_id, expires_at`, code).Scan(&keyID, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
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
