package postgres

import (
	"context"

	"encoding/json"

	"github.com/portrait-cdp/portrait"
)

// configBodies runs q, whose one column is a JSON document, and decodes
// each row as a T, in the query's order. No rows give nil, as the
// embedded store's loops do. readErr and corrupt are the messages of a
// failed read and of an undecodable row.
func configBodies[T any](ctx context.Context, db *DB, readErr, corrupt, q string, args ...any) ([]T, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, readErr)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, portrait.Wrap(err, readErr)
		}
		var v T
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, portrait.Wrap(err, corrupt)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, readErr)
	}
	return out, nil
}
