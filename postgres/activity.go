package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

// lockActivity serialises the advance of the per-source totals (migration
// 010): two nodes counting the same range at once would count it twice.
const lockActivity = int64(0x706f7274_0012) // "port" 0x12

// SourceActivity counts events (with the latest receipt) and quarantined
// records per source.
//
// Events are counted incrementally, as the embedded store does in memory,
// but in a table that every node shares: only events after the counted
// seq are read. Quarantined records are counted afresh each time: their
// ids come from a sequence, not from the log's lock, so an id can commit
// after a larger one and an incremental count could miss it; the count is
// a pass over the (source, id) index of a table kept small by its caps and
// retention. So Rejected is what the quarantine holds now, where the
// embedded store's count also keeps what retention purged since its start.
func (db *DB) SourceActivity(ctx context.Context) ([]portrait.SourceActivity, error) {
	if err := db.advanceActivity(ctx); err != nil {
		return nil, err
	}
	by := map[string]*portrait.SourceActivity{}
	get := func(s string) *portrait.SourceActivity {
		a := by[s]
		if a == nil {
			a = &portrait.SourceActivity{Source: s}
			by[s] = a
		}
		return a
	}
	rows, err := db.pool.Query(ctx, `SELECT source, events, last_event FROM source_activity`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count events by source")
	}
	for rows.Next() {
		var s string
		var n, at int64
		if err := rows.Scan(&s, &n, &at); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot count events by source")
		}
		a := get(s)
		a.Events, a.LastEvent = n, fromMicros(at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot count events by source")
	}
	rows, err = db.pool.Query(ctx, `SELECT source, count(*) FROM quarantine GROUP BY source`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the quarantine")
	}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot read the quarantine")
		}
		get(s).Rejected = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the quarantine")
	}
	out := make([]portrait.SourceActivity, 0, len(by))
	for _, a := range by {
		out = append(out, *a)
	}
	return out, nil
}

// advanceActivity brings the per-source totals up to the end of the log.
// A reader that sees seq n has seen every seq below it (db.go), so the
// range (mark, last] is complete when read.
func (db *DB) advanceActivity(ctx context.Context) error {
	var mark, last int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM source_activity_mark), 0), coalesce((SELECT max(seq) FROM events), 0)`).Scan(&mark, &last)
	if err != nil {
		return portrait.Wrap(err, "cannot count events by source")
	}
	if mark == last {
		return nil // nothing new: no lock, no write
	}
	return db.adminTx(ctx, "cannot count events by source", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockActivity); err != nil {
			return portrait.Wrap(err, "cannot count events by source")
		}
		// Read again under the lock: another node may have advanced them.
		err := tx.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM source_activity_mark), 0), coalesce((SELECT max(seq) FROM events), 0)`).Scan(&mark, &last)
		if err != nil {
			return portrait.Wrap(err, "cannot count events by source")
		}
		if last < mark {
			// A log emptied and filled again (a test, a fresh migrate):
			// count from the start.
			if _, err := tx.Exec(ctx, `DELETE FROM source_activity`); err != nil {
				return portrait.Wrap(err, "cannot count events by source")
			}
			mark = 0
		}
		if last == mark {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO source_activity (source, events, last_event)
			SELECT source, count(*), max(received_at) FROM events WHERE seq > $1 AND seq <= $2 GROUP BY source
			ON CONFLICT (source) DO UPDATE SET events = source_activity.events + excluded.events,
				last_event = greatest(source_activity.last_event, excluded.last_event)`, mark, last); err != nil {
			return portrait.Wrap(err, "cannot count events by source")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO source_activity_mark (id, seq) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`, last); err != nil {
			return portrait.Wrap(err, "cannot count events by source")
		}
		return nil
	})
}
