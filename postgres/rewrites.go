package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

// Rewrite requests: a node that does not apply events queues an operation
// that rewrites profiles (an erasure, a re-scoring) here; the applier
// performs the pending ones in order and writes each answer back. Both
// sides are woken by notifications (portrait_rewrites), so the asking
// node's caller gets the applier's answer within a round trip or two.
// Answered requests are kept a day (rewritesKept), then deleted.

const rewritesKept = 24 * time.Hour

// QueueRewrite stores a request and notifies; it returns the request's id.
func (db *DB) QueueRewrite(ctx context.Context, kind, node string, body []byte) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO rewrite_requests (kind, node, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
			kind, node, body, micros(db.Now())).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify('portrait_rewrites', '')`)
		return err
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot queue the request for the applier")
	}
	return id, nil
}

// PendingRewrites calls fn with each unanswered request, oldest first, up
// to limit of them.
func (db *DB) PendingRewrites(ctx context.Context, limit int, fn func(id int64, kind string, body []byte) error) error {
	rows, err := db.pool.Query(ctx, `SELECT id, kind, body FROM rewrite_requests WHERE done_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return portrait.Wrap(err, "cannot read the queued requests")
	}
	type req struct {
		id   int64
		kind string
		body []byte
	}
	var reqs []req
	var r req
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.kind, &r.body}, func() error {
		reqs = append(reqs, r)
		return nil
	}); err != nil {
		return portrait.Wrap(err, "cannot read the queued requests")
	}
	// fn runs after the rows are read: it writes, and the pool is small.
	for _, r := range reqs {
		if err := fn(r.id, r.kind, r.body); err != nil {
			return err
		}
	}
	return nil
}

// FinishRewrite records a request's answer and notifies the asking node;
// answers older than rewritesKept go.
func (db *DB) FinishRewrite(ctx context.Context, id int64, result []byte) error {
	now := micros(db.Now())
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE rewrite_requests SET done_at = $2, result = $3 WHERE id = $1`, id, now, result); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rewrite_requests WHERE done_at < $1`, now-rewritesKept.Microseconds()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify('portrait_rewrites', '')`)
		return err
	})
	if err != nil {
		return portrait.Wrap(err, "cannot record the applier's answer")
	}
	return nil
}

// RewriteResult returns a request's answer once it has one (done).
func (db *DB) RewriteResult(ctx context.Context, id int64) (result []byte, done bool, err error) {
	var doneAt *int64
	err = db.pool.QueryRow(ctx, `SELECT done_at, result FROM rewrite_requests WHERE id = $1`, id).Scan(&doneAt, &result)
	if err == pgx.ErrNoRows {
		return nil, false, portrait.Errorf(portrait.ENOTFOUND, "no queued request %d", id)
	}
	if err != nil {
		return nil, false, portrait.Wrap(err, "cannot read the applier's answer")
	}
	return result, doneAt != nil, nil
}
