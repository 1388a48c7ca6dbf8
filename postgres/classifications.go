package postgres

import (
	"context"

	"github.com/portrait-cdp/portrait"
)

// SetClassification stores an explicit level for a trait or identifier
// type.
func (db *DB) SetClassification(ctx context.Context, kind, name, level string) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO classifications (kind, name, level, changed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, name) DO UPDATE SET level = excluded.level, changed_at = excluded.changed_at`,
		kind, name, level, micros(db.Now()))
	if err != nil {
		return portrait.Wrap(err, "cannot store the classification")
	}
	return nil
}

// Classifications lists the explicit levels.
func (db *DB) Classifications(ctx context.Context) ([]portrait.Classification, error) {
	rows, err := db.pool.Query(ctx, `SELECT kind, name, level FROM classifications ORDER BY kind COLLATE "C", name COLLATE "C"`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read classifications")
	}
	defer rows.Close()
	var out []portrait.Classification
	for rows.Next() {
		var c portrait.Classification
		if err := rows.Scan(&c.Kind, &c.Name, &c.Level); err != nil {
			return nil, portrait.Wrap(err, "cannot read classifications")
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read classifications")
	}
	return out, nil
}
