package sqlite

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
)

// SourceActivity counts events (with the latest receipt) and quarantined
// records per source: two grouped queries.
func (db *DB) SourceActivity(ctx context.Context) ([]portrait.SourceActivity, error) {
	by := map[string]*portrait.SourceActivity{}
	get := func(s string) *portrait.SourceActivity {
		a := by[s]
		if a == nil {
			a = &portrait.SourceActivity{Source: s}
			by[s] = a
		}
		return a
	}
	rows, err := db.logR.QueryContext(ctx, `SELECT source, count(*), max(received_at) FROM events GROUP BY source`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count events by source")
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n, last int64
		if err := rows.Scan(&s, &n, &last); err != nil {
			return nil, portrait.Wrap(err, "cannot count events by source")
		}
		a := get(s)
		a.Events, a.LastEvent = n, fromMicros(last)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot count events by source")
	}
	rej, err := countBy(ctx, db.logR, `SELECT source, count(*) FROM quarantine GROUP BY source`)
	if err != nil {
		return nil, err
	}
	for s, n := range rej {
		get(s).Rejected = n
	}
	out := make([]portrait.SourceActivity, 0, len(by))
	for _, a := range by {
		out = append(out, *a)
	}
	return out, nil
}

// EventsPerMinute counts the events received in each minute from since on,
// keyed by the minute's start. The log is appended in order of receipt, so
// the first event received a day before since is found by a binary search
// on seq (a few primary-key reads), and only the rows after it are
// counted: no index on received_at, no full scan. The day of slack covers
// what is appended out of order (an import resumed later keeps the time it
// was first received); only an import resumed more than a day after it
// started could hide, from this count, events received just before it.
func (db *DB) EventsPerMinute(ctx context.Context, since time.Time) (map[time.Time]int64, error) {
	last, err := db.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	cut := since.UnixMicro()
	bound := since.Add(-24 * time.Hour).UnixMicro()
	lo, hi := int64(1), last+1 // first seq received at or after cut, in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at int64
		err := db.logR.QueryRowContext(ctx, `SELECT received_at FROM events WHERE seq >= ? ORDER BY seq LIMIT 1`, mid).Scan(&at)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read the event log")
		}
		if at >= bound {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	rows, err := db.logR.QueryContext(ctx, `SELECT received_at / 60000000, count(*) FROM events WHERE seq >= ? AND received_at >= ? GROUP BY 1`, lo, cut)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count recent events")
	}
	defer rows.Close()
	out := map[time.Time]int64{}
	for rows.Next() {
		var m, n int64
		if err := rows.Scan(&m, &n); err != nil {
			return nil, portrait.Wrap(err, "cannot count recent events")
		}
		out[time.Unix(m*60, 0).UTC()] = n
	}
	return out, rows.Err()
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
		out = append(out, m)
	}
	return out, rows.Err()
}
