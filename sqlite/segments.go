package sqlite

import (
	"context"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/segment"
)

var (
	_ segment.Store  = (*DB)(nil)
	_ segment.Outbox = (*DB)(nil)
)

// SaveSegment inserts or replaces a segment definition.
func (db *DB) SaveSegment(ctx context.Context, d *segment.Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode segment")
	}
	_, err = db.logW.ExecContext(ctx, `INSERT INTO segments (id, body, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, d.ID, body, micros(d.UpdatedAt))
	if err != nil {
		return portrait.Wrap(err, "cannot save segment")
	}
	return nil
}

// DeleteSegment removes a definition; its history stays.
func (db *DB) DeleteSegment(ctx context.Context, id string) error {
	if _, err := db.logW.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id); err != nil {
		return portrait.Wrap(err, "cannot delete segment")
	}
	return nil
}

// Segments returns every definition.
func (db *DB) Segments(ctx context.Context) ([]*segment.Definition, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT body FROM segments ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read segments")
	}
	defer rows.Close()
	var out []*segment.Definition
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, portrait.Wrap(err, "cannot read segments")
		}
		var d segment.Definition
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, portrait.Wrap(err, "corrupt segment")
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}

// AppendSegmentEvents records the events that change the recorded
// membership, in one transaction, and sets their ids (segment.Store): each
// takes the next version of its (segment, profile) when its kind differs
// from the last one recorded, written with INSERT OR IGNORE on the unique
// version; the others are skipped, their id left 0.
func (db *DB) AppendSegmentEvents(ctx context.Context, evs []*segment.Event) error {
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot record segment events")
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO segment_events (segment_id, profile_id, kind, at, version)
		SELECT ?1, ?2, ?3, ?4, coalesce(l.version, 0) + 1
		  FROM (SELECT 1) LEFT JOIN (SELECT version, kind FROM segment_events
		        WHERE segment_id = ?1 AND profile_id = ?2 ORDER BY version DESC LIMIT 1) l
		 WHERE l.kind IS NULL OR l.kind <> ?3`)
	if err != nil {
		return portrait.Wrap(err, "cannot record segment events")
	}
	defer st.Close()
	ids := make([]int64, len(evs))
	for i, e := range evs {
		res, err := st.ExecContext(ctx, e.Segment, e.Profile, e.Kind, micros(e.At))
		if err != nil {
			return portrait.Wrap(err, "cannot record segment events")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			ids[i], _ = res.LastInsertId()
		}
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot record segment events")
	}
	for i, e := range evs {
		e.ID = ids[i]
	}
	return nil
}

// SegmentEventsAfter pages every segment's history after an event id,
// oldest first (segment.Outbox).
func (db *DB) SegmentEventsAfter(ctx context.Context, after int64, limit int) ([]*segment.Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 500
	}
	return db.segmentEvents(ctx, `SELECT id, segment_id, profile_id, kind, at FROM segment_events
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

// WebhookCursor returns the webhooks' position in the history, storing the
// history's end the first time (segment.Outbox).
func (db *DB) WebhookCursor(ctx context.Context) (int64, error) {
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO segment_outbox (name, position)
		SELECT 'webhooks', coalesce(max(id), 0) FROM segment_events WHERE true ON CONFLICT (name) DO NOTHING`); err != nil {
		return 0, portrait.Wrap(err, "cannot read the webhooks' cursor")
	}
	var pos int64
	if err := db.logW.QueryRowContext(ctx, `SELECT position FROM segment_outbox WHERE name = 'webhooks'`).Scan(&pos); err != nil {
		return 0, portrait.Wrap(err, "cannot read the webhooks' cursor")
	}
	return pos, nil
}

// MoveWebhookCursor moves the webhooks' cursor from one id to a later one,
// only if it is still at from (segment.Outbox).
func (db *DB) MoveWebhookCursor(ctx context.Context, from, to int64) (bool, error) {
	res, err := db.logW.ExecContext(ctx, `UPDATE segment_outbox SET position = ? WHERE name = 'webhooks' AND position = ? AND ? > ?`, to, from, to, from)
	if err != nil {
		return false, portrait.Wrap(err, "cannot move the webhooks' cursor")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SegmentEvents pages a segment's history, oldest first, after an event id.
func (db *DB) SegmentEvents(ctx context.Context, segmentID string, after int64, limit int) ([]*segment.Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	return db.segmentEvents(ctx, `SELECT id, segment_id, profile_id, kind, at FROM segment_events
		WHERE segment_id = ? AND id > ? ORDER BY id LIMIT ?`, segmentID, after, limit)
}

func (db *DB) segmentEvents(ctx context.Context, query string, args ...any) ([]*segment.Event, error) {
	rows, err := db.logR.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read segment events")
	}
	defer rows.Close()
	var out []*segment.Event
	for rows.Next() {
		var e segment.Event
		var at int64
		if err := rows.Scan(&e.ID, &e.Segment, &e.Profile, &e.Kind, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot read segment events")
		}
		e.At = fromMicros(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// SaveWebhook stores a webhook (with its secret: deliveries are signed
// with it).
func (db *DB) SaveWebhook(ctx context.Context, w *segment.Webhook) error {
	body, err := json.Marshal(w)
	if err != nil {
		return portrait.Wrap(err, "cannot encode webhook")
	}
	if _, err := db.logW.ExecContext(ctx, `INSERT OR REPLACE INTO segment_webhooks (id, body) VALUES (?, ?)`, w.ID, body); err != nil {
		return portrait.Wrap(err, "cannot save webhook")
	}
	return nil
}

// DeleteWebhook removes a webhook.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := db.logW.ExecContext(ctx, `DELETE FROM segment_webhooks WHERE id = ?`, id); err != nil {
		return portrait.Wrap(err, "cannot delete webhook")
	}
	return nil
}

// Webhooks returns every webhook.
func (db *DB) Webhooks(ctx context.Context) ([]*segment.Webhook, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT body FROM segment_webhooks ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read webhooks")
	}
	defer rows.Close()
	var out []*segment.Webhook
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, portrait.Wrap(err, "cannot read webhooks")
		}
		var w segment.Webhook
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, portrait.Wrap(err, "corrupt webhook")
		}
		out = append(out, &w)
	}
	return out, rows.Err()
}

// SaveDeadLetter keeps a delivery that failed every attempt.
func (db *DB) SaveDeadLetter(ctx context.Context, d *segment.DeadLetter) error {
	res, err := db.logW.ExecContext(ctx, `INSERT INTO segment_dead_letters (webhook_id, body, error, attempts, at) VALUES (?, ?, ?, ?, ?)`,
		d.Webhook, db.sealer.SealBlob([]byte(d.Body), datakey.BlobDeadLetter), d.Error, d.Attempts, micros(d.At)) // body: sealing
	if err != nil {
		return portrait.Wrap(err, "cannot save dead letter")
	}
	d.ID, _ = res.LastInsertId()
	return nil
}

// DeadLetters lists a webhook's dead letters, newest first.
func (db *DB) DeadLetters(ctx context.Context, webhookID string, limit int) ([]*segment.DeadLetter, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.logR.QueryContext(ctx, `SELECT id, webhook_id, body, error, attempts, at FROM segment_dead_letters
		WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`, webhookID, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read dead letters")
	}
	defer rows.Close()
	var out []*segment.DeadLetter
	for rows.Next() {
		var d segment.DeadLetter
		var body []byte
		var at int64
		if err := rows.Scan(&d.ID, &d.Webhook, &body, &d.Error, &d.Attempts, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot read dead letters")
		}
		if body, err = db.sealer.OpenBlob(body, datakey.BlobDeadLetter); err != nil { // sealing
			return nil, err
		}
		d.Body, d.At = body, fromMicros(at)
		out = append(out, &d)
	}
	return out, rows.Err()
}

// SegmentBehaviour builds a profile's behaviour summary from its events,
// newest first, stopping once every event name has its MaxRecent newest
// events (the exact totals come from the profile's track counts).
func (db *DB) SegmentBehaviour(ctx context.Context, p *portrait.Profile) (segment.Summary, error) {
	// Asked about a profile the processor has just changed, whose commit
	// may still be running: the summary must include what it adds.
	if err := db.writer.wait(ctx); err != nil {
		return nil, err
	}
	s := segment.Summary{}
	cursor := ""
	for pages := 0; pages < 50; pages++ {
		evs, next, err := db.ProfileEvents(ctx, p.ID, portrait.Page{Cursor: cursor, Limit: 1000})
		if err != nil {
			if portrait.ErrorCode(err) == portrait.ENOTFOUND {
				return s, nil
			}
			return nil, err
		}
		for _, e := range evs {
			if h := s[e.Name]; e.Type == portrait.EventTrack && (h == nil || h.Len() < segment.MaxRecent) {
				s.AddEvent(e)
			}
		}
		full := true
		for name := range p.TrackCounts {
			if h := s[name]; h == nil || h.Len() < segment.MaxRecent {
				full = false
			}
		}
		if next == "" || full {
			break
		}
		cursor = next
	}
	for name, n := range p.TrackCounts {
		if h := s[name]; h != nil && int(h.Total) < n {
			h.Total = uint32(n)
		}
	}
	return s, nil
}

// AllSegmentBehaviour builds every profile's behaviour summary in one pass
// over the track events, for building the segment index at start (reading
// each profile's history with its own query takes minutes on a large store).
func (db *DB) AllSegmentBehaviour(ctx context.Context) (map[string]segment.Summary, error) {
	out := map[string]segment.Summary{}
	err := db.trackEvents(ctx, "", func(pid string, e *portrait.Event) error {
		s := out[pid]
		if s == nil {
			s = segment.Summary{}
			out[pid] = s
		}
		s.AddEvent(e)
		return nil
	})
	return out, err
}

// RecordedMembers are the profiles whose last recorded event in a segment is
// an enter.
func (db *DB) RecordedMembers(ctx context.Context, segmentID string) ([]string, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT profile_id FROM segment_events e
		WHERE segment_id = ? AND kind = 'enter'
		  AND id = (SELECT max(id) FROM segment_events x WHERE x.segment_id = e.segment_id AND x.profile_id = e.profile_id)`, segmentID)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read segment history")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, portrait.Wrap(err, "cannot read segment history")
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
