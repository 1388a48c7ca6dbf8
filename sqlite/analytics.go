package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
)

var (
	_ jobs.Store    = (*DB)(nil)
	_ jobs.RunStore = (*DB)(nil)
)

// TrackEvents calls fn for every track event of that name with the profile
// it landed on, in log order. Events not applied to a profile yet (or
// retracted) are skipped.
func (db *DB) TrackEvents(ctx context.Context, name string, fn func(profileID string, e *portrait.Event) error) error {
	if name == "" {
		return portrait.Errorf(portrait.EINVALID, "an event name is required")
	}
	return db.trackEvents(ctx, name, fn)
}

// trackEvents is TrackEvents; an empty name means every track event.
func (db *DB) trackEvents(ctx context.Context, name string, fn func(profileID string, e *portrait.Event) error) error {
	owner := map[int64]string{}
	rows, err := db.stateR.QueryContext(ctx, `SELECT seq, profile_id FROM profile_events`)
	if err != nil {
		return portrait.Wrap(err, "cannot read profile events")
	}
	for rows.Next() {
		var seq int64
		var pid string
		if err := rows.Scan(&seq, &pid); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot read profile events")
		}
		owner[seq] = pid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read profile events")
	}
	q, args := `SELECT seq, body FROM events WHERE type = 'track' ORDER BY seq`, []any{}
	if name != "" {
		q, args = `SELECT seq, body FROM events WHERE type = 'track' AND json_extract(body, '$.event') = ? ORDER BY seq`, []any{name}
	}
	rows, err = db.logR.QueryContext(ctx, q, args...)
	if err != nil {
		return portrait.Wrap(err, "cannot read the event log")
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return portrait.Wrap(err, "cannot read the event log")
		}
		pid, ok := owner[seq]
		if !ok {
			continue
		}
		e := &portrait.Event{}
		if body, err = db.sealer.OpenEvent(body); err != nil { // sealing
			return err
		}
		if err := json.Unmarshal(body, e); err != nil {
			return portrait.Wrap(err, "corrupt event")
		}
		e.Seq = seq
		if err := fn(pid, e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SaveRun records (or updates) an analytics run.
func (db *DB) SaveRun(ctx context.Context, r *jobs.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return portrait.Wrap(err, "cannot encode run")
	}
	_, err = db.logW.ExecContext(ctx, `INSERT INTO analytics_runs (id, kind, status, doc, started_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc`, r.ID, r.Kind, r.Status, doc, micros(r.StartedAt))
	if err != nil {
		return portrait.Wrap(err, "cannot record run")
	}
	return nil
}

// Run returns one run.
func (db *DB) Run(ctx context.Context, id string) (*jobs.Run, error) {
	var doc []byte
	err := db.logR.QueryRowContext(ctx, `SELECT doc FROM analytics_runs WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
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
	var args []any
	if kind != "" {
		q += ` WHERE kind = ?`
		args = append(args, kind)
	}
	q += ` ORDER BY started_at DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.logR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list runs")
	}
	defer rows.Close()
	out := []*jobs.Run{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, portrait.Wrap(err, "cannot list runs")
		}
		r := &jobs.Run{}
		if err := json.Unmarshal(doc, r); err != nil {
			return nil, portrait.Wrap(err, "corrupt run")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
