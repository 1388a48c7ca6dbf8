package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/portrait-cdp/portrait"
)

// SaveImport records (or updates) an import run's summary, as JSON.
func (db *DB) SaveImport(ctx context.Context, id, source, state string, summary []byte) error {
	_, err := db.logW.ExecContext(ctx, `INSERT INTO imports (id, source, state, summary, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, state = excluded.state, summary = excluded.summary, updated_at = excluded.updated_at`,
		id, source, state, summary, micros(db.Now()))
	if err != nil {
		return portrait.Wrap(err, "cannot record the import")
	}
	return nil
}

// ImportSummary returns the summary JSON of an import.
func (db *DB) ImportSummary(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := db.logR.QueryRowContext(ctx, `SELECT summary FROM imports WHERE id = ?`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no import %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the import")
	}
	return b, nil
}

// ImportSummaries returns the summary JSON of every import, oldest first.
func (db *DB) ImportSummaries(ctx context.Context) ([][]byte, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT summary FROM imports ORDER BY updated_at, id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list imports")
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, portrait.Wrap(err, "cannot list imports")
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot list imports")
	}
	return out, nil
}
