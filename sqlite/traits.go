package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// SaveTraitDefinition stores (or replaces) a computed-trait definition.
func (db *DB) SaveTraitDefinition(ctx context.Context, d traits.Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode trait definition")
	}
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO trait_definitions (name, body, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, d.Name, body, micros(db.Now())); err != nil {
		return portrait.Wrap(err, "cannot save trait definition")
	}
	return nil
}

// DeleteTraitDefinition removes a computed-trait definition.
func (db *DB) DeleteTraitDefinition(ctx context.Context, name string) error {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM trait_definitions WHERE name = ?`, name)
	if err != nil {
		return portrait.Wrap(err, "cannot delete trait definition")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "no computed trait %q", name)
	}
	return nil
}

// TraitDefinitions returns the computed-trait definitions by name.
func (db *DB) TraitDefinitions(ctx context.Context) ([]traits.Definition, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT body FROM trait_definitions ORDER BY name`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait definitions")
	}
	defer rows.Close()
	var out []traits.Definition
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, portrait.Wrap(err, "cannot read trait definitions")
		}
		var d traits.Definition
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, portrait.Wrap(err, "corrupt trait definition")
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SaveSchemaFields stores observed trait types and annotations.
func (db *DB) SaveSchemaFields(ctx context.Context, fields []traits.Field) error {
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot save trait schema")
	}
	defer tx.Rollback()
	for _, f := range fields {
		body, err := json.Marshal(f)
		if err != nil {
			return portrait.Wrap(err, "cannot encode trait schema")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO trait_schema (name, body) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET body = excluded.body`, f.Name, body); err != nil {
			return portrait.Wrap(err, "cannot save trait schema")
		}
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot save trait schema")
	}
	return nil
}

// SchemaFields returns the stored observed trait types.
func (db *DB) SchemaFields(ctx context.Context) ([]traits.Field, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT body FROM trait_schema ORDER BY name`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait schema")
	}
	defer rows.Close()
	var out []traits.Field
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, portrait.Wrap(err, "cannot read trait schema")
		}
		var f traits.Field
		if err := json.Unmarshal(body, &f); err != nil {
			return nil, portrait.Wrap(err, "corrupt trait schema")
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// SaveBoundaries records a computation of RFM boundaries.
func (db *DB) SaveBoundaries(ctx context.Context, b *traits.Boundaries) error {
	body, err := json.Marshal(b)
	if err != nil {
		return portrait.Wrap(err, "cannot encode boundaries")
	}
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO rfm_boundaries (computed_at, body) VALUES (?, ?)`, micros(db.Now()), body); err != nil {
		return portrait.Wrap(err, "cannot save boundaries")
	}
	return nil
}

// LatestBoundaries returns the latest RFM boundaries (nil if none yet).
func (db *DB) LatestBoundaries(ctx context.Context) (*traits.Boundaries, error) {
	var body []byte
	err := db.logR.QueryRowContext(ctx, `SELECT body FROM rfm_boundaries ORDER BY id DESC LIMIT 1`).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read boundaries")
	}
	var b traits.Boundaries
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, portrait.Wrap(err, "corrupt boundaries")
	}
	return &b, nil
}
