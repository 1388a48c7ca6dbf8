package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tag"
)

var _ tag.Store = (*DB)(nil)

// lockTags serialises SaveTag: the next version is read and written in one
// transaction, and two nodes saving one tag at once would both read the
// same version.
const lockTags = int64(0x706f7274_0021) // "port" 0x21

// SaveTag stores d as the next version of its name.
func (db *DB) SaveTag(ctx context.Context, d *tag.Definition) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockTags); err != nil {
			return err
		}
		var v int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM tag_definitions WHERE name = $1`, d.Name).Scan(&v); err != nil {
			return err
		}
		d.Version = int(v) + 1
		body, err := json.Marshal(d)
		if err != nil {
			return portrait.Wrap(err, "cannot encode tag")
		}
		_, err = tx.Exec(ctx, `INSERT INTO tag_definitions (name, version, body, created_at) VALUES ($1, $2, $3, $4)`,
			d.Name, d.Version, body, micros(db.Now()))
		return err
	})
	if err != nil {
		var own *portrait.Error
		if errors.As(err, &own) {
			return err // the encoding's, already said
		}
		return portrait.Wrap(err, "cannot save tag")
	}
	return nil
}

// Tags returns the latest version of every tag.
func (db *DB) Tags(ctx context.Context) ([]tag.Definition, error) {
	return configBodies[tag.Definition](ctx, db, "cannot read tags", "corrupt tag definition", `SELECT body FROM tag_definitions t
		WHERE version = (SELECT max(version) FROM tag_definitions WHERE name = t.name) ORDER BY name COLLATE "C"`)
}

// TagVersions returns every version of a tag, oldest first.
func (db *DB) TagVersions(ctx context.Context, name string) ([]tag.Definition, error) {
	return configBodies[tag.Definition](ctx, db, "cannot read tags", "corrupt tag definition",
		`SELECT body FROM tag_definitions WHERE name = $1 ORDER BY version`, name)
}
