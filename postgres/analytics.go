package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
)

var _ jobs.RunStore = (*DB)(nil)

// SaveRun records (or updates) an analytics run.
func (db *DB) SaveRun(ctx context.Context, r *jobs.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return portrait.Wrap(err, "cannot encode run")
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO analytics_runs (id, kind, status, doc, started_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc`, r.ID, r.Kind, r.Status, doc, micros(r.StartedAt))
	if err != nil {
		return portrait.Wrap(err, "cannot record run")
	}
	return nil
}

// Run returns one run.
func (db *DB) Run(ctx context.Context, id string) (*jobs.Run, error) {
	var doc []byte
	err := db.pool.QueryRow(ctx, `SELECT doc FROM analytics_runs WHERE id = $1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no analytics run %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read run")
	}
	r := &jobs.Run{}
	if err := json.Unmarshal(doc, r); err != nil {
		return nil, portrait.Wrap(err, "corrupt run")
	}
	return r, nil
}

// Runs lists runs, newest first, of one kind or all ("").
func (db *DB) Runs(ctx context.Context, kind string, limit int) ([]*jobs.Run, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	q := `SELECT doc FROM analytics_runs`
	args := []any{limit}
	// Runs started in the same microsecond come in the order the embedded
	// store gives them: of one kind, along its (kind, started_at) index,
	// which ends with the id, read backwards (later id first); of all
	// kinds, sorted from the table, in id order.
	tie := `id COLLATE "C"`
	if kind != "" {
		q += ` WHERE kind = $2`
		args = append(args, kind)
		tie += ` DESC`
	}
	q += ` ORDER BY started_at DESC, ` + tie + ` LIMIT $1`
	runs, err := configBodies[*jobs.Run](ctx, db, "cannot list runs", "corrupt run", q, args...)
	if runs == nil && err == nil {
		runs = []*jobs.Run{} // an empty list, not null, in the API
	}
	return runs, err
}
