package postgres

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/segment"
)

var (
	_ segment.Store  = (*DB)(nil)
	_ segment.Outbox = (*DB)(nil)
)

// lockSegmentEvents is held by AppendSegmentEvents to commit: SegmentEvents
// pages by id, so ids must become visible in order, or a reader that has
// seen id n could miss a smaller id another node commits after.
const lockSegmentEvents = int64(0x706f7274_0022) // "port" 0x22

// SaveSegment inserts or replaces a segment definition.
func (db *DB) SaveSegment(ctx context.Context, d *segment.Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return portrait.Wrap(err, "cannot encode segment")
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO segments (id, body, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, d.ID, body, micros(d.UpdatedAt))
	if err != nil {
		return portrait.Wrap(err, "cannot save segment")
	}
	return nil
}

// DeleteSegment removes a definition; its history stays.
func (db *DB) DeleteSegment(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM segments WHERE id = $1`, id); err != nil {
		return portrait.Wrap(err, "cannot delete segment")
	}
	return nil
}

// Segments returns every definition.
func (db *DB) Segments(ctx context.Context) ([]*segment.Definition, error) {
	return configBodies[*segment.Definition](ctx, db, "cannot read segments", "corrupt segment",
		`SELECT body FROM segments ORDER BY id COLLATE "C"`)
}

// AppendSegmentEvents records the events that change the recorded
// membership, in one transaction, and sets their ids (segment.Store): each
// is numbered from the last version recorded for its (segment, profile)
// and written once (ON CONFLICT DO NOTHING on the unique version); one of
// the kind last recorded is skipped, its id left 0. Every writer holds
// lockSegmentEvents, so the last versions read here are those the insert
// follows. A first evaluation enters every member at once: the last
// versions are read with one statement and the rows written with another,
// from arrays.
func (db *DB) AppendSegmentEvents(ctx context.Context, evs []*segment.Event) error {
	if len(evs) == 0 {
		return nil
	}
	type pair struct{ seg, profile string }
	type last struct {
		version int64
		kind    string
	}
	var keep []*segment.Event
	var versions []int64
	ids := make([]int64, 0, len(evs))
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		keep, versions, ids = keep[:0], versions[:0], ids[:0]
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSegmentEvents); err != nil {
			return err
		}
		segs, profiles := make([]string, 0, len(evs)), make([]string, 0, len(evs))
		seen := make(map[pair]bool, len(evs))
		for _, e := range evs {
			if k := (pair{e.Segment, e.Profile}); !seen[k] {
				seen[k] = true
				segs, profiles = append(segs, e.Segment), append(profiles, e.Profile)
			}
		}
		rows, err := tx.Query(ctx, `SELECT u.s, u.p, l.version, l.kind FROM unnest($1::text[], $2::text[]) AS u(s, p)
			CROSS JOIN LATERAL (SELECT version, kind FROM segment_events e
				WHERE e.segment_id = u.s AND e.profile_id = u.p ORDER BY version DESC LIMIT 1) l`, segs, profiles)
		if err != nil {
			return err
		}
		lasts := make(map[pair]last, len(evs))
		for rows.Next() {
			var k pair
			var l last
			if err := rows.Scan(&k.seg, &k.profile, &l.version, &l.kind); err != nil {
				rows.Close()
				return err
			}
			lasts[k] = l
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range evs {
			k := pair{e.Segment, e.Profile}
			l := lasts[k]
			if l.kind == e.Kind {
				continue // recorded already (by this node or another): no change
			}
			l = last{l.version + 1, e.Kind}
			lasts[k] = l
			keep, versions = append(keep, e), append(versions, l.version)
		}
		if len(keep) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('segment_events', 'id')) FROM generate_series(1, $1)`, len(keep))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.Sort(ids)
		n := len(keep)
		cs, cp, ck := make([]string, n), make([]string, n), make([]string, n)
		cat := make([]int64, n)
		for i, e := range keep {
			cs[i], cp[i], ck[i], cat[i] = e.Segment, e.Profile, e.Kind, micros(e.At)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO segment_events (id, segment_id, profile_id, kind, at, version)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
			ON CONFLICT (segment_id, profile_id, version) DO NOTHING`, ids, cs, cp, ck, cat, versions)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(n) {
			// Only a writer not holding the lock (an older binary) can
			// have written these versions meanwhile: ids cannot be told
			// apart from the ones skipped, so none is set.
			ids = nil
		}
		return nil
	})
	if err != nil {
		return portrait.Wrap(err, "cannot record segment events")
	}
	if len(ids) == len(keep) {
		for i, e := range keep {
			e.ID = ids[i]
		}
	}
	return nil
}

// SegmentEventsAfter pages every segment's history after an event id,
// oldest first (segment.Outbox). Ids become visible in order
// (lockSegmentEvents), so a reader that has seen id n misses no smaller one.
func (db *DB) SegmentEventsAfter(ctx context.Context, after int64, limit int) ([]*segment.Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 500
	}
	return db.segmentEvents(ctx, `SELECT id, segment_id, profile_id, kind, at FROM segment_events
		WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// WebhookCursor returns the webhooks' position in the history, storing the
// history's end the first time (segment.Outbox).
func (db *DB) WebhookCursor(ctx context.Context) (int64, error) {
	var pos int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Under the writers' lock, so no id below the end read here is
		// still to commit.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSegmentEvents); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO segment_outbox (name, position)
			SELECT 'webhooks', coalesce(max(id), 0) FROM segment_events ON CONFLICT (name) DO NOTHING`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT position FROM segment_outbox WHERE name = 'webhooks'`).Scan(&pos)
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read the webhooks' cursor")
	}
	return pos, nil
}

// MoveWebhookCursor moves the webhooks' cursor from one id to a later one,
// only if it is still at from (segment.Outbox).
func (db *DB) MoveWebhookCursor(ctx context.Context, from, to int64) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE segment_outbox SET position = $2 WHERE name = 'webhooks' AND position = $1 AND $2 > $1`, from, to)
	if err != nil {
		return false, portrait.Wrap(err, "cannot move the webhooks' cursor")
	}
	return tag.RowsAffected() == 1, nil
}

// SegmentEvents pages a segment's history, oldest first, after an event id.
func (db *DB) SegmentEvents(ctx context.Context, segmentID string, after int64, limit int) ([]*segment.Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	return db.segmentEvents(ctx, `SELECT id, segment_id, profile_id, kind, at FROM segment_events
		WHERE segment_id = $1 AND id > $2 ORDER BY id LIMIT $3`, segmentID, after, limit)
}

func (db *DB) segmentEvents(ctx context.Context, query string, args ...any) ([]*segment.Event, error) {
	rows, err := db.pool.Query(ctx, query, args...)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read segment events")
	}
	return out, nil
}

// SaveWebhook stores a webhook (with its secret: deliveries are signed
// with it).
func (db *DB) SaveWebhook(ctx context.Context, w *segment.Webhook) error {
	body, err := json.Marshal(w)
	if err != nil {
		return portrait.Wrap(err, "cannot encode webhook")
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO segment_webhooks (id, body) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body`, w.ID, body); err != nil {
		return portrait.Wrap(err, "cannot save webhook")
	}
	return nil
}

// DeleteWebhook removes a webhook.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM segment_webhooks WHERE id = $1`, id); err != nil {
		return portrait.Wrap(err, "cannot delete webhook")
	}
	return nil
}

// Webhooks returns every webhook.
func (db *DB) Webhooks(ctx context.Context) ([]*segment.Webhook, error) {
	return configBodies[*segment.Webhook](ctx, db, "cannot read webhooks", "corrupt webhook",
		`SELECT body FROM segment_webhooks ORDER BY id COLLATE "C"`)
}

// SaveDeadLetter keeps a delivery that failed every attempt.
func (db *DB) SaveDeadLetter(ctx context.Context, d *segment.DeadLetter) error {
	err := db.pool.QueryRow(ctx, `INSERT INTO segment_dead_letters (webhook_id, body, error, attempts, at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		d.Webhook, db.sealer.SealBlob([]byte(d.Body), datakey.BlobDeadLetter), d.Error, d.Attempts, micros(d.At)).Scan(&d.ID) // body: sealing
	if err != nil {
		return portrait.Wrap(err, "cannot save dead letter")
	}
	return nil
}

// DeadLetters lists a webhook's dead letters, newest first.
func (db *DB) DeadLetters(ctx context.Context, webhookID string, limit int) ([]*segment.DeadLetter, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT id, webhook_id, body, error, attempts, at FROM segment_dead_letters
		WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`, webhookID, limit)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read dead letters")
	}
	return out, nil
}

// RecordedMembers are the profiles whose last recorded event in a segment is
// an enter.
func (db *DB) RecordedMembers(ctx context.Context, segmentID string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT profile_id FROM (
			SELECT DISTINCT ON (profile_id) profile_id, kind FROM segment_events
			WHERE segment_id = $1 ORDER BY profile_id, id DESC) last
		WHERE kind = 'enter'`, segmentID)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read segment history")
	}
	return out, nil
}

// behaviourPage is how many of a profile's events SegmentBehaviour reads at
// a time, and behaviourPages how many pages at most: the embedded store's
// figures, so both summarise the same events.
const (
	behaviourPage  = 1000
	behaviourPages = 50
)

// SegmentBehaviour builds a profile's behaviour summary from its events,
// newest first, stopping once every event name has its MaxRecent newest
// events (the exact totals come from the profile's track counts).
//
// The embedded store first waits for the state it writes behind; here a
// processor's commit has reached the database when it returns.
func (db *DB) SegmentBehaviour(ctx context.Context, p *portrait.Profile) (segment.Summary, error) {
	s := segment.Summary{}
	var rid string
	var exists bool
	// The profile's id after merges (as far as 32 renamings, as the
	// embedded store follows them), and whether it has a profile.
	err := db.pool.QueryRow(ctx, `WITH RECURSIVE chain(id, depth) AS (
			SELECT $1::text COLLATE "C", 0 -- the collation of aliases.new_id (002_state.sql)
			UNION ALL
			SELECT a.new_id, c.depth + 1 FROM aliases a JOIN chain c ON a.old_id = c.id WHERE c.depth < 32)
		SELECT id, EXISTS (SELECT 1 FROM profiles WHERE profiles.id = chain.id) FROM chain ORDER BY depth DESC LIMIT 1`, p.ID).Scan(&rid, &exists)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile")
	}
	if !exists {
		return s, nil
	}
	after := false
	var ts, seq int64
	for pages := 0; pages < behaviourPages; pages++ {
		q := `SELECT pe.ts, pe.seq, CASE WHEN e.type = 'track' THEN e.body END FROM profile_events pe JOIN events e ON e.seq = pe.seq
			WHERE pe.profile_id = $1 AND e.type <> $2`
		args := []any{rid, portrait.EventErased, behaviourPage}
		if after {
			q += ` AND (pe.ts, pe.seq) < ($4, $5)`
			args = append(args, ts, seq)
		}
		q += ` ORDER BY pe.ts DESC, pe.seq DESC LIMIT $3`
		rows, err := db.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read profile events")
		}
		n := 0
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&ts, &seq, &body); err != nil {
				rows.Close()
				return nil, portrait.Wrap(err, "cannot read profile events")
			}
			n++
			if body == nil {
				continue
			}
			e := &portrait.Event{}
			if err := db.decodeEvent(body, e); err != nil { // sealing
				rows.Close()
				return nil, err
			}
			e.Seq = seq
			if h := s[e.Name]; h == nil || h.Len() < segment.MaxRecent {
				s.AddEvent(e)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, portrait.Wrap(err, "cannot read profile events")
		}
		after = true
		full := true
		for name := range p.TrackCounts {
			if h := s[name]; h == nil || h.Len() < segment.MaxRecent {
				full = false
			}
		}
		if n < behaviourPage || full {
			break
		}
	}
	for name, n := range p.TrackCounts {
		if h := s[name]; h != nil && int(h.Total) < n {
			h.Total = uint32(n)
		}
	}
	return s, nil
}

// AllSegmentBehaviour builds every profile's behaviour summary in one pass
// over the track events, for building the segment index at start.
func (db *DB) AllSegmentBehaviour(ctx context.Context) (map[string]segment.Summary, error) {
	// Which profile each event landed on, first (events not applied to a
	// profile, or retracted, have none), then the track events in log order
	// along the log's primary key: joining the two in the database would
	// sort every track event's body by seq.
	owner := map[int64]string{}
	rows, err := db.pool.Query(ctx, `SELECT seq, profile_id FROM profile_events`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	for rows.Next() {
		var seq int64
		var pid string
		if err := rows.Scan(&seq, &pid); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot read profile events")
		}
		owner[seq] = pid
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	rows, err = db.pool.Query(ctx, `SELECT seq, body FROM events WHERE type = 'track' ORDER BY seq`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	defer rows.Close()
	out := map[string]segment.Summary{}
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, portrait.Wrap(err, "cannot read the event log")
		}
		pid, ok := owner[seq]
		if !ok {
			continue
		}
		e := &portrait.Event{}
		if err := db.decodeEvent(body, e); err != nil { // sealing
			return nil, err
		}
		e.Seq = seq
		s := out[pid]
		if s == nil {
			s = segment.Summary{}
			out[pid] = s
		}
		s.AddEvent(e)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	return out, nil
}
