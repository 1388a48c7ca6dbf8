package postgres

import (
	"context"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
)

var _ delivery.Store = (*DB)(nil)

// SaveDelivery inserts or replaces a scheduled delivery.
func (db *DB) SaveDelivery(ctx context.Context, d *delivery.Delivery) error {
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode delivery")
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO segment_deliveries (id, body) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body`, d.ID, body); err != nil {
		return portrait.Wrap(err, "cannot save delivery")
	}
	return nil
}

// DeleteDelivery removes a delivery; its runs stay.
func (db *DB) DeleteDelivery(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM segment_deliveries WHERE id = $1`, id)
	if err != nil {
		return portrait.Wrap(err, "cannot delete delivery")
	}
	if tag.RowsAffected() == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "no delivery %q", id)
	}
	return nil
}

// Deliveries lists every delivery by id.
func (db *DB) Deliveries(ctx context.Context) ([]*delivery.Delivery, error) {
	return configBodies[*delivery.Delivery](ctx, db, "cannot read deliveries", "cannot decode delivery",
		`SELECT body FROM segment_deliveries ORDER BY id COLLATE "C"`)
}

// AppendDeliveryRun records a delivery and sets its id.
func (db *DB) AppendDeliveryRun(ctx context.Context, r *delivery.Run) error {
	body, err := json.Marshal(r)
	if err != nil {
		return portrait.Wrap(err, "cannot encode delivery run")
	}
	if err := db.pool.QueryRow(ctx, `INSERT INTO segment_delivery_runs (delivery_id, at, body) VALUES ($1, $2, $3) RETURNING id`,
		r.Delivery, micros(r.At), body).Scan(&r.ID); err != nil {
		return portrait.Wrap(err, "cannot record delivery run")
	}
	return nil
}

// DeliveryRuns lists a delivery's runs, newest first; a negative limit
// lists them all, as SQLite's LIMIT does.
func (db *DB) DeliveryRuns(ctx context.Context, id string, limit int) ([]*delivery.Run, error) {
	var lim any = limit
	if limit < 0 {
		lim = nil // LIMIT NULL: no limit
	}
	rows, err := db.pool.Query(ctx, `SELECT id, body FROM segment_delivery_runs WHERE delivery_id = $1 ORDER BY id DESC LIMIT $2`, id, lim)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read delivery runs")
	}
	defer rows.Close()
	var out []*delivery.Run
	for rows.Next() {
		var rid int64
		var body []byte
		if err := rows.Scan(&rid, &body); err != nil {
			return nil, portrait.Wrap(err, "cannot read delivery runs")
		}
		var r delivery.Run
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, portrait.Wrap(err, "cannot decode delivery run")
		}
		r.ID = rid
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read delivery runs")
	}
	return out, nil
}
