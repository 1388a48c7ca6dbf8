package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// SaveTraitDefinition stores (or replaces) a computed-trait definition.
func (db *DB) SaveTraitDefinition(ctx context.Context, d traits.Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode trait definition")
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO trait_definitions (name, body, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, d.Name, body, micros(db.Now())); err != nil {
		return portrait.Wrap(err, "cannot save trait definition")
	}
	return nil
}

// DeleteTraitDefinition removes a computed-trait definition.
func (db *DB) DeleteTraitDefinition(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM trait_definitions WHERE name = $1`, name)
	if err != nil {
		return portrait.Wrap(err, "cannot delete trait definition")
	}
	if tag.RowsAffected() == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "no computed trait %q", name)
	}
	return nil
}

// TraitDefinitions returns the computed-trait definitions by name.
func (db *DB) TraitDefinitions(ctx context.Context) ([]traits.Definition, error) {
	return configBodies[traits.Definition](ctx, db, "cannot read trait definitions", "corrupt trait definition",
		`SELECT body FROM trait_definitions ORDER BY name COLLATE "C"`)
}

// SaveSchemaFields stores observed trait types and annotations.
func (db *DB) SaveSchemaFields(ctx context.Context, fields []traits.Field) error {
	if len(fields) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, f := range fields {
		body, err := json.Marshal(f)
		if err != nil {
			return portrait.Wrap(err, "cannot encode trait schema")
		}
		b.Queue(`INSERT INTO trait_schema (name, body) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET body = excluded.body`, f.Name, body)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return portrait.Wrap(err, "cannot save trait schema")
	}
	return nil
}

// SchemaFields returns the stored observed trait types.
func (db *DB) SchemaFields(ctx context.Context) ([]traits.Field, error) {
	return configBodies[traits.Field](ctx, db, "cannot read trait schema", "corrupt trait schema",
		`SELECT body FROM trait_schema ORDER BY name COLLATE "C"`)
}

// SaveBoundaries records a computation of RFM boundaries.
func (db *DB) SaveBoundaries(ctx context.Context, b *traits.Boundaries) error {
	body, err := json.Marshal(b)
	if err != nil {
		return portrait.Wrap(err, "cannot encode boundaries")
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO rfm_boundaries (computed_at, body) VALUES ($1, $2)`, micros(db.Now()), body); err != nil {
		return portrait.Wrap(err, "cannot save boundaries")
	}
	return nil
}

// LatestBoundaries returns the latest RFM boundaries (nil if none yet).
func (db *DB) LatestBoundaries(ctx context.Context) (*traits.Boundaries, error) {
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT body FROM rfm_boundaries ORDER BY id DESC LIMIT 1`).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
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
