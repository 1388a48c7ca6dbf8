package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

var _ portrait.EventLog = (*DB)(nil)

// appendReq is one caller's share of a group commit.
type appendReq struct {
	events   []*portrait.Event
	bodies   [][]byte // nil where the messageId came earlier in the call
	rejected []*portrait.Rejected
	part     int // the bus partition the events came from; -1: none
	res      portrait.AppendResult
	err      error
	done     chan struct{} // closed when written (or failed)
	lead     chan struct{} // closed when this caller is to write the next group
}

// appendGroup is the group commit: concurrent Appends of one process
// queue, and one of them writes all that has gathered in one transaction
// (one lock, one WAL flush) while the others wait. There is no goroutine
// of its own: the caller whose request heads the queue leads, writes one
// group and hands the lead to the next waiting caller, so none waits
// behind more than the group before its own.
type appendGroup struct {
	mu    sync.Mutex
	queue []*appendReq
	busy  bool // a caller is writing a group
}

// appendGroups holds each DB's group while appends are in flight (DB is in
// db.go, the lead's); an idle group is dropped.
var appendGroups sync.Map // *DB → *appendGroup

// maxGroupEvents bounds the events of one group transaction.
const maxGroupEvents = 20_000

// Append writes events (deduplicated by messageId) and quarantined records
// durably, sharing the transaction with concurrent callers. Sequence
// numbers are handed out under lockAppend, held to commit, so that they
// are dense, commit in order across processes, and a reader that sees
// seq n has seen every seq below it.
func (db *DB) Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error) {
	return db.appendPart(ctx, -1, events, rejected)
}

// AppendPartition is Append for the events of bus partition p, recorded
// with them (partitioned application reads a partition's events back).
func (db *DB) AppendPartition(ctx context.Context, p int, events []*portrait.Event) (portrait.AppendResult, error) {
	if p < 0 || p > 32767 {
		return portrait.AppendResult{}, portrait.Errorf(portrait.EINVALID, "partition %d out of range", p)
	}
	return db.appendPart(ctx, p, events, nil)
}

func (db *DB) appendPart(ctx context.Context, part int, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error) {
	if len(events) == 0 && len(rejected) == 0 {
		return portrait.AppendResult{}, nil
	}
	// Encoding is the costly part and needs no lock: done here, on the
	// caller's goroutine.
	r := &appendReq{events: events, bodies: make([][]byte, len(events)), rejected: rejected, part: part, done: make(chan struct{}), lead: make(chan struct{})}
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		e.Seq = 0
		if seen[e.MessageID] {
			continue // twice in one call: the second is a duplicate
		}
		seen[e.MessageID] = true
		b, err := json.Marshal(e)
		if err != nil {
			return portrait.AppendResult{}, portrait.Wrap(err, "cannot encode event")
		}
		// sealing: secret-level values are stored sealed (seal.go)
		if b, err = db.sealer.SealEvent(b); err != nil {
			return portrait.AppendResult{}, err
		}
		r.bodies[i] = b
	}
	if ctx.Err() != nil {
		return portrait.AppendResult{}, portrait.Errorf(portrait.EUNAVAILABLE, "request cancelled before it was written")
	}
	v, _ := appendGroups.LoadOrStore(db, &appendGroup{})
	g := v.(*appendGroup)
	g.mu.Lock()
	g.queue = append(g.queue, r)
	leads := !g.busy
	g.busy = true
	g.mu.Unlock()
	// Once queued, the outcome is waited for even if the client goes: the
	// events may be committed, and the caller must know.
	if !leads {
		select {
		case <-r.done:
			return r.res, r.err
		case <-r.lead:
		}
	}
	g.mu.Lock()
	var group []*appendReq
	n := 0
	for len(g.queue) > 0 && (len(group) == 0 || n+len(g.queue[0].events) <= maxGroupEvents) {
		n += len(g.queue[0].events)
		group = append(group, g.queue[0])
		g.queue = g.queue[1:]
	}
	g.mu.Unlock()
	err := db.commitAppends(group)
	for _, q := range group {
		if err != nil {
			q.res, q.err = portrait.AppendResult{}, err
		}
		close(q.done)
	}
	if err == nil {
		// This process's waiters need not wait for the notification's
		// round trip.
		db.watch().fire()
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.busy = false
		appendGroups.CompareAndDelete(db, g)
	}
	g.mu.Unlock()
	<-r.done // in this group or, if the queue was long, an earlier one
	return r.res, r.err
}

// commitAppends writes a group of requests in one transaction and sets
// their results.
func (db *DB) commitAppends(group []*appendReq) error {
	ctx := context.Background()
	var msgs, types, sources []string
	var ts, recv []int64
	var parts []int32
	var bodies [][]byte
	inGroup := map[string]bool{}
	for _, r := range group {
		for i, e := range r.events {
			if r.bodies[i] == nil || inGroup[e.MessageID] {
				continue // a duplicate within the group
			}
			inGroup[e.MessageID] = true
			msgs, types, sources = append(msgs, e.MessageID), append(types, e.Type), append(sources, e.Source)
			ts, recv, bodies = append(ts, micros(e.Timestamp)), append(recv, micros(e.ReceivedAt)), append(bodies, r.bodies[i])
			parts = append(parts, int32(r.part))
		}
	}
	seqs := map[string]int64{}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockAppend)
		if len(msgs) > 0 {
			// Under the lock nobody else inserts: the ids already logged
			// are left out before numbering, so the numbers stay dense.
			// row_number runs after WHERE.
			b.Queue(`INSERT INTO events (seq, message_id, type, source, ts, received_at, body, partition)
				SELECT (SELECT coalesce(max(seq), 0) FROM events) + row_number() OVER (ORDER BY u.ord), u.m, u.t, u.s, u.ts, u.r, u.b, nullif(u.p, -1)::int2
				FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::bytea[], $7::int4[]) WITH ORDINALITY AS u(m, t, s, ts, r, b, p, ord)
				WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = u.m)
				ORDER BY u.ord
				ON CONFLICT (message_id) DO NOTHING RETURNING seq, message_id`,
				msgs, types, sources, ts, recv, bodies, parts).Query(func(rows pgx.Rows) error {
				var seq int64
				var m string
				_, err := pgx.ForEachRow(rows, []any{&seq, &m}, func() error {
					seqs[m] = seq
					return nil
				})
				return err
			})
			b.Queue(`SELECT pg_notify('portrait_log', '')`)
		}
		for _, r := range group {
			for _, q := range r.rejected {
				raw := q.Raw
				if raw == nil {
					raw = []byte{} // an empty body is still kept, as empty
				}
				raw = db.sealer.SealBlob(raw, datakey.BlobQuarantine) // sealing (rare: inside the commit)
				q.ID = 0
				scan := func(row pgx.Row) error {
					err := row.Scan(&q.ID)
					if errors.Is(err, pgx.ErrNoRows) {
						return nil // already quarantined under this key
					}
					return err
				}
				if q.Key == "" {
					b.Queue(`INSERT INTO quarantine (source, idx, reason, raw, received_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
						q.Source, q.Index, q.Reason, raw, micros(q.ReceivedAt)).QueryRow(scan)
					continue
				}
				// A key claimed before (by this group or an earlier one)
				// is not quarantined again; the lock keeps the check and
				// the claim together.
				b.Queue(`WITH ins AS (
						INSERT INTO quarantine (source, idx, reason, raw, received_at)
						SELECT $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM quarantine_keys WHERE key = $1) RETURNING id)
					INSERT INTO quarantine_keys (key, quarantine_id) SELECT $1, id FROM ins RETURNING quarantine_id`,
					q.Key, q.Source, q.Index, q.Reason, raw, micros(q.ReceivedAt)).QueryRow(scan)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		for _, r := range group {
			for _, e := range r.events {
				e.Seq = 0
			}
			for _, q := range r.rejected {
				q.ID = 0
			}
		}
		return portrait.Wrap(err, "cannot append events")
	}
	// The first of a messageId in the group is the one accepted (if the
	// log did not have it); every other is a duplicate.
	for _, r := range group {
		r.res = portrait.AppendResult{}
		for _, e := range r.events {
			if seq, ok := seqs[e.MessageID]; ok {
				delete(seqs, e.MessageID)
				e.Seq = seq
				r.res.Accepted++
				r.res.LastSeq = max(r.res.LastSeq, seq)
			} else {
				r.res.Duplicates++
			}
		}
	}
	return nil
}

// Appended returns a channel closed after the log next grows, through
// this DB or any other process appending to the same database (LISTEN on
// portrait_log), and after a state commit that changed profiles (on
// portrait_changes), so that a follower of ProfileChanges on an API node
// sleeps on it as the processor does; the processor pays one empty read
// of the log for such a wake. It may also close when nothing happened
// (the listener (re)connecting): a waiter reads and looks again.
func (db *DB) Appended() <-chan struct{} { return db.watch().wait() }

// ReadLog returns up to limit events after seq, in log order (erased
// events' tombstones left out).
func (db *DB) ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, body FROM events WHERE seq > $1 AND type <> $2 ORDER BY seq LIMIT $3`, after, portrait.EventErased, sqlLimit(limit))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	return db.scanEvents(rows)
}

// EventsBySeq returns the events with the given sequence numbers, in the
// order asked (missing ones are skipped).
func (db *DB) EventsBySeq(ctx context.Context, seqs []int64) ([]*portrait.Event, error) {
	if len(seqs) == 0 {
		return []*portrait.Event{}, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT seq, body FROM events WHERE seq = ANY($1) AND type <> $2`, seqs, portrait.EventErased)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read events")
	}
	evs, err := db.scanEvents(rows)
	if err != nil {
		return nil, err
	}
	bySeq := make(map[int64]*portrait.Event, len(evs))
	for _, e := range evs {
		bySeq[e.Seq] = e
	}
	out := make([]*portrait.Event, 0, len(seqs))
	for _, s := range seqs {
		if e, ok := bySeq[s]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// scanEvents reads (seq, body) rows and decodes them in parallel.
func (db *DB) scanEvents(rows pgx.Rows) ([]*portrait.Event, error) {
	var seqs []int64
	var bodies [][]byte
	var seq int64
	var body []byte
	_, err := pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
		seqs = append(seqs, seq)
		bodies = append(bodies, body)
		body = nil // Scan into a nil slice allocates: each row keeps its own
		return nil
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	out := make([]*portrait.Event, len(seqs))
	errs := make([]error, len(seqs))
	parallel.For(len(seqs), func(i int) {
		e := new(portrait.Event)
		e.Seq = seqs[i]
		out[i] = e
		body, err := db.sealer.OpenEvent(bodies[i]) // sealing
		if err != nil {
			errs[i] = err
			return
		}
		errs[i] = json.Unmarshal(body, e)
	})
	for i, err := range errs {
		if portrait.ErrorCode(err) == portrait.EUNAVAILABLE { // sealing: a data key is missing
			return nil, err
		}
		if err != nil {
			return nil, portrait.Wrap(err, "corrupt event "+strconv.FormatInt(seqs[i], 10))
		}
	}
	return out, nil
}

// LastSeq is the sequence number of the newest event (0 when empty).
func (db *DB) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		return 0, portrait.Wrap(err, "cannot read the event log")
	}
	return seq, nil
}

// CountEvents counts the events in the log.
func (db *DB) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type <> $1`, portrait.EventErased).Scan(&n); err != nil {
		return 0, portrait.Wrap(err, "cannot count events")
	}
	return n, nil
}

// ReceivedAt returns when the event at seq was received (zero if none).
func (db *DB) ReceivedAt(ctx context.Context, seq int64) (time.Time, error) {
	var at int64
	err := db.pool.QueryRow(ctx, `SELECT received_at FROM events WHERE seq = $1`, seq).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, portrait.Wrap(err, "cannot read the event log")
	}
	return fromMicros(at), nil
}

// EventByMessageID finds a logged event (nil when absent).
func (db *DB) EventByMessageID(ctx context.Context, messageID string) (*portrait.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, body FROM events WHERE message_id = $1`, messageID)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	evs, err := db.scanEvents(rows)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// minutesKept is how far back EventsPerMinute counts, as in the embedded
// store (which keeps only that much in memory).
const minutesKept = 24 * time.Hour

// EventsPerMinute counts the events received in each minute from since on
// (at most a day back), keyed by the minute's start.
func (db *DB) EventsPerMinute(ctx context.Context, since time.Time) (map[time.Time]int64, error) {
	from := since.Unix() / 60
	if since.Unix()%60 != 0 && since.Unix() > 0 {
		from++ // a partial first minute is not counted whole
	}
	from = max(from, db.Now().Add(-minutesKept).Unix()/60)
	rows, err := db.pool.Query(ctx, `SELECT received_at / 60000000, count(*) FROM events WHERE received_at >= $1 GROUP BY 1`, from*60_000_000)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count events by minute")
	}
	out := map[time.Time]int64{}
	var m, n int64
	_, err = pgx.ForEachRow(rows, []any{&m, &n}, func() error {
		out[time.Unix(m*60, 0).UTC()] = n
		return nil
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count events by minute")
	}
	return out, nil
}

// EventCountsBySource counts logged events per source.
func (db *DB) EventCountsBySource(ctx context.Context) (map[string]int64, error) {
	return db.countBy(ctx, `SELECT source, count(*) FROM events WHERE type <> $1 GROUP BY source`, portrait.EventErased)
}

func (db *DB) countBy(ctx context.Context, q string, args ...any) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot count")
	}
	out := map[string]int64{}
	var k string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error {
		out[k] = n
		return nil
	}); err != nil {
		return nil, portrait.Wrap(err, "cannot count")
	}
	return out, nil
}

// TrackEvents calls fn for every track event of that name with the profile
// it landed on, in log order. Events not applied to a profile yet (or
// retracted) are skipped.
func (db *DB) TrackEvents(ctx context.Context, name string, fn func(profileID string, e *portrait.Event) error) error {
	if name == "" {
		return portrait.Errorf(portrait.EINVALID, "an event name is required")
	}
	// One profile per event (an event is on one profile; DISTINCT ON only
	// guards against a row left twice).
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT ON (e.seq) e.seq, pe.profile_id, e.body
		FROM events e JOIN profile_events pe ON pe.seq = e.seq
		WHERE e.type = 'track' AND convert_from(e.body, 'UTF8')::jsonb ->> 'event' = $1
		ORDER BY e.seq`, name)
	if err != nil {
		return portrait.Wrap(err, "cannot read the event log")
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var pid string
		var body []byte
		if err := rows.Scan(&seq, &pid, &body); err != nil {
			return portrait.Wrap(err, "cannot read the event log")
		}
		e := &portrait.Event{}
		if err := db.decodeEvent(body, e); err != nil { // sealing
			return err
		}
		e.Seq = seq
		if err := fn(pid, e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read the event log")
	}
	return nil
}

// DataVersion returns a token that changes whenever anything was committed
// since the previous call, by this process or another: the server's
// current snapshot (xmin:xmax:in-progress ids). Only writing transactions
// are given ids, so two equal snapshots mean no write committed in
// between. The snapshot is the whole server's: a write to another
// database there changes it too, which costs a cache miss, never a stale
// answer.
func (db *DB) DataVersion(ctx context.Context) (string, error) {
	var v string
	if err := db.pool.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&v); err != nil {
		return "", portrait.Wrap(err, "cannot read the data version")
	}
	return v, nil
}
