package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tag"
)

var _ tag.Store = (*DB)(nil)

// SaveTag stores d as the next version of its name.
func (db *DB) SaveTag(ctx context.Context, d *tag.Definition) error {
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot save tag")
	}
	defer tx.Rollback()
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(version) FROM tag_definitions WHERE name = ?`, d.Name).Scan(&v); err != nil {
		return portrait.Wrap(err, "cannot save tag")
	}
	d.Version = int(v.Int64) + 1
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode tag")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tag_definitions (name, version, body, created_at) VALUES (?, ?, ?, ?)`,
		d.Name, d.Version, body, micros(db.Now())); err != nil {
		return portrait.Wrap(err, "cannot save tag")
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot save tag")
	}
	return nil
}

func scanTags(rows *sql.Rows, err error) ([]tag.Definition, error) {
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read tags")
	}
	defer rows.Close()
	var out []tag.Definition
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, portrait.Wrap(err, "cannot read tags")
		}
		var d tag.Definition
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, portrait.Wrap(err, "corrupt tag definition")
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Tags returns the latest version of every tag.
func (db *DB) Tags(ctx context.Context) ([]tag.Definition, error) {
	return scanTags(db.logR.QueryContext(ctx, `SELECT body FROM tag_definitions t
		WHERE version = (SELECT max(version) FROM tag_definitions WHERE name = t.name) ORDER BY name`))
}

// TagVersions returns every version of a tag, oldest first.
func (db *DB) TagVersions(ctx context.Context, name string) ([]tag.Definition, error) {
	return scanTags(db.logR.QueryContext(ctx, `SELECT body FROM tag_definitions WHERE name = ? ORDER BY version`, name))
}
