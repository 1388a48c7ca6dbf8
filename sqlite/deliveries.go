package sqlite

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
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO segment_deliveries (id, body) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body`, d.ID, body); err != nil {
		return portrait.Wrap(err, "cannot save delivery")
	}
	return nil
}

// DeleteDelivery removes a delivery; its runs stay.
func (db *DB) DeleteDelivery(ctx context.Context, id string) error {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM segment_deliveries WHERE id = ?`, id)
	if err != nil {
		return portrait.Wrap(err, "cannot delete delivery")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return portrait.Errorf(portrait.ENOTFOUND, "no delivery %q", id)
	}
	return nil
}

// Deliveries lists every delivery by id.
func (db *DB) Deliveries(ctx context.Context) ([]*delivery.Delivery, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT body FROM segment_deliveries ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read deliveries")
	}
	defer rows.Close()
	var out []*delivery.Delivery
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, portrait.Wrap(err, "cannot read deliveries")
		}
		var d delivery.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, portrait.Wrap(err, "cannot decode delivery")
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}

// AppendDeliveryRun records a delivery and sets its id.
func (db *DB) AppendDeliveryRun(ctx context.Context, r *delivery.Run) error {
	body, err := json.Marshal(r)
	if err != nil {
		return portrait.Wrap(err, "cannot encode delivery run")
	}
	res, err := db.logW.ExecContext(ctx, `INSERT INTO segment_delivery_runs (delivery_id, at, body) VALUES (?, ?, ?)`, r.Delivery, micros(r.At), body)
	if err != nil {
		return portrait.Wrap(err, "cannot record delivery run")
	}
	r.ID, _ = res.LastInsertId()
	return nil
}

// DeliveryRuns lists a delivery's runs, newest first.
func (db *DB) DeliveryRuns(ctx context.Context, id string, limit int) ([]*delivery.Run, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT id, body FROM segment_delivery_runs WHERE delivery_id = ? ORDER BY id DESC LIMIT ?`, id, limit)
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
	return out, rows.Err()
}
