package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

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

var _ delivery.Claims = (*DB)(nil)

// LastDeliveryClaim is the delivery's claim with the highest slot.
func (db *DB) LastDeliveryClaim(ctx context.Context, deliveryID string) (*delivery.Claim, error) {
	c := &delivery.Claim{Delivery: deliveryID}
	var term, at int64
	err := db.pool.QueryRow(ctx, `SELECT slot, holder, fence, term, status, at FROM delivery_claims
		WHERE delivery_id = $1 ORDER BY slot DESC LIMIT 1`, deliveryID).Scan(&c.Slot, &c.Holder, &c.Fence, &term, &c.Status, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the delivery's claims")
	}
	c.Term, c.At = uint64(term), fromMicros(at)
	return c, nil
}

// ClaimDeliverySlot claims c's slot in one statement: only while c's term
// is its fence's latest begun (applier_terms, raised by ClaimTerm when the
// jobs lease was taken), as a new slot or over a claim proven abandoned
// (still claimed, by an earlier term of the fence), or again by the node
// that claimed it in this term and stopped before its send (its schedule
// runs one slot at a time, so nothing of it is in flight).
func (db *DB) ClaimDeliverySlot(ctx context.Context, c *delivery.Claim) (bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO delivery_claims (delivery_id, slot, holder, fence, term, status, at)
		SELECT $1, $2, $3, $4, $5, 'claimed', $6
		WHERE EXISTS (SELECT 1 FROM applier_terms WHERE fence = $4 AND term = $5)
		ON CONFLICT (delivery_id, slot) DO UPDATE SET holder = excluded.holder, term = excluded.term, status = 'claimed', at = excluded.at
		WHERE delivery_claims.status = 'claimed' AND delivery_claims.fence = excluded.fence
		AND (delivery_claims.term < excluded.term OR delivery_claims.term = excluded.term AND delivery_claims.holder = excluded.holder)`,
		c.Delivery, c.Slot, c.Holder, c.Fence, int64(c.Term), micros(c.At))
	if err != nil {
		return false, portrait.Wrap(err, "cannot claim the delivery's slot")
	}
	return tag.RowsAffected() == 1, nil
}

// StartDeliverySend moves c to sending while its term is the latest: the
// row lock of this UPDATE orders it with a take-over (ClaimDeliverySlot),
// which re-reads the row and finds it sending, or finds it taken and
// leaves this statement nothing to update.
func (db *DB) StartDeliverySend(ctx context.Context, c *delivery.Claim) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE delivery_claims SET status = 'sending'
		WHERE delivery_id = $1 AND slot = $2 AND fence = $3 AND term = $4 AND holder = $5 AND status = 'claimed'
		AND EXISTS (SELECT 1 FROM applier_terms WHERE fence = $3 AND term = $4)`,
		c.Delivery, c.Slot, c.Fence, int64(c.Term), c.Holder)
	if err != nil {
		return false, portrait.Wrap(err, "cannot start the delivery's send")
	}
	return tag.RowsAffected() == 1, nil
}

// FinishDeliverySlot records how c's send ended.
func (db *DB) FinishDeliverySlot(ctx context.Context, c *delivery.Claim, status string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE delivery_claims SET status = $5
		WHERE delivery_id = $1 AND slot = $2 AND fence = $3 AND term = $4`,
		c.Delivery, c.Slot, c.Fence, int64(c.Term), status); err != nil {
		return portrait.Wrap(err, "cannot record the delivery's slot")
	}
	return nil
}
