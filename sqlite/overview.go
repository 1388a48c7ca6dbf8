package sqlite

import (
	"context"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
)

// activityCache keeps per-source totals and per-minute counts of the log
// up to a seq, and per-source rejections up to an id of the quarantine.
// Both are append-only, so each refresh reads only the rows added since
// the last: the overview asks on every visit, and a grouped pass over the
// whole log takes a good part of a second on a hundred thousand events.
type activityCache struct {
	mu       sync.Mutex
	seq, qid int64
	by       map[string]*portrait.SourceActivity
	minutes  map[int64]int64 // minute (unix) → events received in it
}

// minutesKept is how far back per-minute counts are kept.
const minutesKept = 24 * time.Hour

// refreshActivity brings the cache up to the end of the log and the
// quarantine; c.mu is held.
func (db *DB) refreshActivity(ctx context.Context) error {
	c := &db.activity
	last, err := db.LastSeq(ctx)
	if err != nil {
		return err
	}
	if c.by == nil || last < c.seq { // first call, or a log rebuilt from scratch
		c.by, c.minutes, c.seq, c.qid = map[string]*portrait.SourceActivity{}, map[int64]int64{}, 0, 0
	}
	// work on copies: a failed read leaves the cache as it was
	by := make(map[string]*portrait.SourceActivity, len(c.by))
	for k, v := range c.by {
		cp := *v
		by[k] = &cp
	}
	oldest := db.Now().Add(-minutesKept).Unix() / 60
	minutes := make(map[int64]int64, len(c.minutes))
	for m, n := range c.minutes {
		if m >= oldest {
			minutes[m] = n
		}
	}
	get := func(s string) *portrait.SourceActivity {
		a := by[s]
		if a == nil {
			a = &portrait.SourceActivity{Source: s}
			by[s] = a
		}
		return a
	}
	rows, err := db.logR.QueryContext(ctx, `SELECT source, received_at / 60000000, count(*), max(received_at) FROM events
		WHERE seq > ? AND seq <= ? GROUP BY 1, 2`, c.seq, last)
	if err != nil {
		return portrait.Wrap(err, "cannot count events by source")
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var m, n, at int64
		if err := rows.Scan(&s, &m, &n, &at); err != nil {
			return portrait.Wrap(err, "cannot count events by source")
		}
		a := get(s)
		a.Events += n
		if t := fromMicros(at); t.After(a.LastEvent) {
			a.LastEvent = t
		}
		if m >= oldest {
			minutes[m] += n
		}
	}
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot count events by source")
	}
	var qid int64
	if err := db.logR.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM quarantine`).Scan(&qid); err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	if qid < c.qid {
		return portrait.Errorf(portrait.EINTERNAL, "the quarantine shrank: %d after %d", qid, c.qid)
	}
	qrows, err := db.logR.QueryContext(ctx, `SELECT source, count(*) FROM quarantine WHERE id > ? AND id <= ? GROUP BY source`, c.qid, qid)
	if err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	defer qrows.Close()
	for qrows.Next() {
		var s string
		var n int64
		if err := qrows.Scan(&s, &n); err != nil {
			return portrait.Wrap(err, "cannot read the quarantine")
		}
		get(s).Rejected += n
	}
	if err := qrows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read the quarantine")
	}
	c.by, c.minutes, c.seq, c.qid = by, minutes, last, qid
	return nil
}

// SourceActivity counts events (with the latest receipt) and quarantined
// records per source.
func (db *DB) SourceActivity(ctx context.Context) ([]portrait.SourceActivity, error) {
	c := &db.activity
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := db.refreshActivity(ctx); err != nil {
		return nil, err
	}
	out := make([]portrait.SourceActivity, 0, len(c.by))
	for _, a := range c.by {
		out = append(out, *a)
	}
	return out, nil
}

// EventsPerMinute counts the events received in each minute from since on
// (at most a day back: older minutes are not kept), keyed by the minute's
// start.
func (db *DB) EventsPerMinute(ctx context.Context, since time.Time) (map[time.Time]int64, error) {
	c := &db.activity
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := db.refreshActivity(ctx); err != nil {
		return nil, err
	}
	from := since.Unix() / 60
	if since.Unix()%60 != 0 && since.Unix() > 0 {
		from++ // a partial first minute is not counted whole
	}
	out := map[time.Time]int64{}
	for m, n := range c.minutes {
		if m >= from {
			out[time.Unix(m*60, 0).UTC()] = n
		}
	}
	return out, nil
}

// RecentMerges lists the latest merges (two profiles became one), newest
// first.
func (db *DB) RecentMerges(ctx context.Context, limit int) ([]*portrait.MergeEntry, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT id, kind, into_id, from_id, id_type, id_value, message_id, reason, at
		FROM merges WHERE kind = ? ORDER BY id DESC LIMIT ?`, portrait.MergeMerged, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the merge journal")
	}
	defer rows.Close()
	var out []*portrait.MergeEntry
	for rows.Next() {
		m := new(portrait.MergeEntry)
		var at int64
		if err := rows.Scan(&m.ID, &m.Kind, &m.Into, &m.From, &m.Identifier.Type, &m.Identifier.Value, &m.MessageID, &m.Reason, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot read the merge journal")
		}
		m.At = fromMicros(at)
		if err := db.openIdentifier(&m.Identifier); err != nil { // sealing
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
