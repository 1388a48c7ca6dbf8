package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/parallel"
)

var (
	_ portrait.EventLog        = (*DB)(nil)
	_ portrait.QuarantineStore = (*DB)(nil)
)

// appendReq is one caller's share of a group commit.
type appendReq struct {
	events   []*portrait.Event
	bodies   [][]byte // events encoded by the caller, off the committer's goroutine
	rejected []*portrait.Rejected
	res      portrait.AppendResult
	err      error
	done     chan struct{}
}

// committer is the group commit: concurrent Appends queue here and one
// goroutine writes whatever has gathered in a single transaction, so that
// one fsync acknowledges many requests.
type committer struct {
	db    *DB
	queue chan *appendReq
	wg    sync.WaitGroup
	// notify is closed-and-replaced after each commit, waking followers.
	mu     sync.Mutex
	notify chan struct{}
	// synced carries committed groups to syncLoop, in commit order.
	synced  chan []*appendReq
	walPath string
	sync    func() error // syncWAL; tests hold it back
	// durable is the last sequence number known to be on disk.
	durable atomic.Int64
	// inserts[k] inserts appendChunk>>k rows; prepared on the log's
	// connection at first use, used by the committer's goroutine only.
	inserts [8]*sql.Stmt
	args    []any
}

// tail keeps the most recently committed events in memory: the
// in-process queue between ingest and the processor. It holds every event
// with seq > from, so a reader caught up with the log never reads storage or
// decodes JSON again; one that fell behind reads the log.
type tail struct {
	mu     sync.Mutex
	from   int64
	events []*portrait.Event
	max    int
}

func (t *tail) add(evs []*portrait.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A group committed before a retention pass's own transaction may be
	// published after the pass moved the tail past it (skipTo): the log
	// serves those.
	for len(evs) > 0 && evs[0].Seq <= t.from {
		evs = evs[1:]
	}
	t.events = append(t.events, evs...)
	// Trimmed to max once it holds half as many again: trimming at every
	// commit group copied max pointers each time, which at a steady
	// stream cost the ack path more than writing the events did.
	if over := len(t.events) - t.max; over > t.max/2 {
		t.from = t.events[over-1].Seq
		t.events = append(make([]*portrait.Event, 0, t.max+t.max/2+len(evs)), t.events[over:]...)
	}
}

// drop removes erased events (sqlite/erase.go).
func (t *tail) drop(seqs map[int64]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.events[:0:0]
	for _, e := range t.events {
		if !seqs[e.Seq] {
			kept = append(kept, e)
		}
	}
	t.events = kept
}

// LimitTail makes the store keep at most about n recent events in memory
// (100,000 by default). A retention pass's scratch store appends every
// expired event and its processor reads them back once: kept, they would
// be the pass's largest memory, growing with the expired events up to the
// default (cmd/portrait opens the scratch store so).
func (db *DB) LimitTail(n int) {
	t := &db.tail
	t.mu.Lock()
	defer t.mu.Unlock()
	t.max = max(n, 1)
	if over := len(t.events) - t.max; over > 0 {
		t.from = t.events[over-1].Seq
		t.events = append([]*portrait.Event(nil), t.events[over:]...)
	}
}

// dropIf removes the events drop reports (expired events, sqlite/compact.go).
func (t *tail) dropIf(drop func(*portrait.Event) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.events[:0:0]
	for _, e := range t.events {
		if !drop(e) {
			kept = append(kept, e)
		}
	}
	t.events = kept
}

// read returns up to limit events after seq, and whether the tail could
// answer at all.
func (t *tail) read(after int64, limit int) ([]*portrait.Event, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if after < t.from {
		return nil, false
	}
	i := sort.Search(len(t.events), func(i int) bool { return t.events[i].Seq > after })
	n := min(limit, len(t.events)-i)
	return append([]*portrait.Event(nil), t.events[i:i+n]...), true
}

const (
	maxGroupRequests = 256
	maxGroupEvents   = 20000
)

// appendChunk is the most rows one INSERT statement carries; a group is
// written in statements of appendChunk rows and then of halving sizes, so
// eight prepared statements serve every group size.
const appendChunk = 128

func chunkIndex(n int) int {
	return bits.TrailingZeros(uint(appendChunk)) - bits.TrailingZeros(uint(n))
}

// prepare makes sure the INSERT statements a group of n events is written
// with are prepared. Used in a transaction (tx.StmtContext) on the
// connection they were prepared on, they are only bound, not parsed again.
func (c *committer) prepare(ctx context.Context, n int) error {
	for size := appendChunk; n > 0; size /= 2 {
		if n < size {
			continue
		}
		n -= size * (n / size)
		if k := chunkIndex(size); c.inserts[k] == nil {
			q := `INSERT INTO events (message_id, type, source, ts, received_at, body) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?),", size), ",") + ` ON CONFLICT (message_id) DO NOTHING RETURNING seq, message_id`
			st, err := c.db.logW.PrepareContext(ctx, q)
			if err != nil {
				return portrait.Wrap(err, "cannot prepare append")
			}
			c.inserts[k] = st
		}
	}
	return nil
}

func newCommitter(db *DB) *committer {
	c := &committer{db: db, queue: make(chan *appendReq, 1024), synced: make(chan []*appendReq, 64), notify: make(chan struct{}),
		walPath: filepath.Join(db.Dir, "events.db-wal")}
	c.sync = c.syncWAL
	c.wg.Add(2)
	go c.run()
	go c.syncLoop()
	return c
}

func (c *committer) close() {
	close(c.queue) // run drains it, then closes synced, which syncLoop drains
	c.wg.Wait()
	for _, st := range c.inserts {
		if st != nil {
			st.Close()
		}
	}
}

// run writes each gathered group in one transaction that SQLite commits
// without waiting for the disk (synchronous=NORMAL for that transaction),
// and hands the group to syncLoop, which makes it durable and only then
// answers its callers. The next group is written while the last one's
// fsync is under way: the fsync left the committer's serial path, which
// every acknowledgement waits on.
func (c *committer) run() {
	defer c.wg.Done()
	defer close(c.synced)
	for first := range c.queue {
		group := make([]*appendReq, 1, 16)
		group[0] = first
		n := len(first.events) + len(first.rejected)
	gather:
		for len(group) < maxGroupRequests && n < maxGroupEvents {
			select {
			case r, ok := <-c.queue:
				if !ok {
					break gather
				}
				group = append(group, r)
				n += len(r.events) + len(r.rejected)
			default:
				break gather
			}
		}
		err := c.commit(group)
		c.db.health.note(&c.db.health.append, err)
		if err != nil {
			// Nothing of it was written: answered at once, in any order
			// with the groups still being synced.
			for _, r := range group {
				r.err = err
				close(r.done)
			}
			continue
		}
		c.synced <- group
	}
}

// syncLoop makes committed groups durable, in commit order: one fsync of
// the log's write-ahead log covers every group committed before it began,
// whoever wrote them. Only then are a group's events published to the
// tail and the followers, and its callers answered, so an acknowledged
// event is on disk, and the processor reads only events that are.
func (c *committer) syncLoop() {
	defer c.wg.Done()
	var groups [][]*appendReq
	for g := range c.synced {
		groups = append(groups[:0], g)
	more:
		for {
			select {
			case g, ok := <-c.synced:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		err := c.sync()
		if err != nil {
			c.db.health.note(&c.db.health.append, err)
		}
		var committed []*portrait.Event
		for _, g := range groups {
			for _, r := range g {
				for _, e := range r.events {
					if e.Seq > 0 {
						committed = append(committed, e)
					}
				}
			}
		}
		// Published even when the fsync failed: the events are in the
		// log for its readers either way, and the tail must not have a
		// gap. Their senders are told it failed and send them again; the
		// message ids make that harmless.
		c.db.tail.add(committed)
		if len(committed) > 0 {
			storeMax(&c.durable, committed[len(committed)-1].Seq)
		}
		for _, g := range groups {
			for _, r := range g {
				if err != nil {
					r.err = err
				}
				close(r.done)
			}
		}
		c.mu.Lock()
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
	}
}

// syncWAL flushes the log's write-ahead log to disk. It opens the file by
// name each time rather than keeping a descriptor: were every connection
// to the log closed, SQLite would checkpoint the log (durably) and delete
// the file, and a kept descriptor would then sync a file no one writes to.
// A missing file therefore means there is nothing to flush.
func (c *committer) syncWAL() error {
	f, err := os.OpenFile(c.walPath, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return portrait.Wrap(err, "cannot open the event log to sync it")
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return portrait.Wrap(err, "cannot sync the event log")
	}
	return nil
}

func (c *committer) commit(group []*appendReq) error {
	ctx := context.Background()
	type item struct {
		r    *appendReq
		e    *portrait.Event
		body []byte
	}
	var items []item
	for _, r := range group {
		r.res = portrait.AppendResult{}
		for i, e := range r.events {
			items = append(items, item{r, e, r.bodies[i]})
		}
	}
	// Before the transaction: the log has one connection, which the
	// transaction then holds.
	if err := c.prepare(ctx, len(items)); err != nil {
		return err
	}
	conn, err := c.db.logW.Conn(ctx)
	if err != nil {
		return portrait.Wrap(err, "cannot begin append")
	}
	defer conn.Close()
	// The log's connection syncs every commit (FULL), which other writers
	// of the log (keys, audit, sessions) rely on; the group commit syncs
	// on its own goroutine (syncLoop) and asks SQLite not to, for its own
	// transaction only.
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return portrait.Wrap(err, "cannot begin append")
	}
	defer func() {
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
			// Never hand the connection back unsynced: drop it.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot begin append")
	}
	defer tx.Rollback()
	// Multi-row statements: a statement per row costs more than the row.
	// RETURNING names what was inserted; a messageId already in the log
	// (or twice in the group) is a duplicate. The statements are prepared
	// once on the log's connection and only bound in each transaction:
	// preparing them again per commit was part of the committer's serial
	// work, which every acknowledgement waits on.
	for len(items) > 0 {
		n := appendChunk
		for n > len(items) {
			n /= 2
		}
		st := tx.StmtContext(ctx, c.inserts[chunkIndex(n)])
		args := c.args[:0]
		for _, it := range items[:n] {
			e := it.e
			args = append(args, e.MessageID, e.Type, e.Source, micros(e.Timestamp), micros(e.ReceivedAt), it.body)
		}
		rows, err := st.QueryContext(ctx, args...)
		clear(args) // the bodies are the callers'
		c.args = args
		if err != nil {
			return portrait.Wrap(err, "cannot append events")
		}
		seqs := make(map[string]int64, n)
		for rows.Next() {
			var seq int64
			var msg string
			if err := rows.Scan(&seq, &msg); err != nil {
				rows.Close()
				return portrait.Wrap(err, "cannot append events")
			}
			seqs[msg] = seq
		}
		if err := rows.Close(); err != nil {
			return portrait.Wrap(err, "cannot append events")
		}
		for _, it := range items[:n] {
			if seq, ok := seqs[it.e.MessageID]; ok {
				delete(seqs, it.e.MessageID)
				it.e.Seq = seq
				it.r.res.Accepted++
				it.r.res.LastSeq = max(it.r.res.LastSeq, seq)
			} else {
				it.e.Seq = 0
				it.r.res.Duplicates++
			}
		}
		items = items[n:]
	}
	rejected := false
	for _, r := range group {
		rejected = rejected || len(r.rejected) > 0
	}
	if !rejected {
		if err := tx.Commit(); err != nil {
			return portrait.Wrap(err, "cannot commit append")
		}
		return nil
	}
	quar, err := tx.PrepareContext(ctx, `INSERT INTO quarantine (source, idx, reason, raw, received_at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return portrait.Wrap(err, "cannot prepare quarantine")
	}
	defer quar.Close()
	claim, err := tx.PrepareContext(ctx, `INSERT INTO quarantine_keys (key, quarantine_id) VALUES (?, 0) ON CONFLICT DO NOTHING`)
	if err != nil {
		return portrait.Wrap(err, "cannot prepare quarantine")
	}
	defer claim.Close()
	for _, r := range group {
		for _, q := range r.rejected {
			if q.Key != "" {
				res, err := claim.ExecContext(ctx, q.Key)
				if err != nil {
					return portrait.Wrap(err, "cannot quarantine event")
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue // already quarantined under this key
				}
			}
			raw := q.Raw
			if raw == nil {
				raw = []byte{} // an empty body is still kept, as empty
			}
			raw = c.db.sealer.SealBlob(raw, datakey.BlobQuarantine) // sealing (rare: inside the commit)
			res, err := quar.ExecContext(ctx, q.Source, q.Index, q.Reason, raw, micros(q.ReceivedAt))
			if err != nil {
				return portrait.Wrap(err, "cannot quarantine event")
			}
			q.ID, _ = res.LastInsertId()
			if q.Key != "" {
				if _, err := tx.ExecContext(ctx, `UPDATE quarantine_keys SET quarantine_id = ? WHERE key = ?`, q.ID, q.Key); err != nil {
					return portrait.Wrap(err, "cannot quarantine event")
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot commit append")
	}
	return nil
}

// Append writes events (deduplicated by messageId) and quarantined records
// durably, sharing the commit with concurrent callers.
func (db *DB) Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (res portrait.AppendResult, err error) {
	if len(events) == 0 && len(rejected) == 0 {
		return res, nil
	}
	// Encoding is the costly part of an append and needs no lock: done
	// here, on the caller's goroutine, so the one committer only writes.
	bodies := make([][]byte, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return res, portrait.Wrap(err, "cannot encode event")
		}
		// sealing: secret-level values are stored sealed (seal.go)
		if b, err = db.sealer.SealEvent(b); err != nil {
			return res, err
		}
		bodies[i] = b
	}
	r := &appendReq{events: events, bodies: bodies, rejected: rejected, done: make(chan struct{})}
	defer func() {
		// The queue is closed on shutdown; refuse rather than panic.
		if recover() != nil {
			err = portrait.Errorf(portrait.EUNAVAILABLE, "the store is shutting down")
		}
	}()
	select {
	case db.committer.queue <- r:
	case <-ctx.Done():
		return res, portrait.Errorf(portrait.EUNAVAILABLE, "request cancelled before it was written")
	}
	// Once queued, the outcome is waited for even if the client has gone:
	// the events may be committed, and the caller must know.
	<-r.done
	return r.res, r.err
}

// Appended returns a channel closed after the next successful commit, so a
// processor can sleep until there is something new.
func (db *DB) Appended() <-chan struct{} {
	c := db.committer
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notify
}

// ReadLog returns up to limit events after seq, in log order.
func (db *DB) ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error) {
	if evs, ok := db.tail.read(after, limit); ok {
		return evs, nil
	}
	// Up to what is on disk: a group is visible in the file from its
	// commit, and on disk from its fsync (committer.syncLoop) a moment later.
	durable := db.committer.durable.Load()
	rows, err := db.logR.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq > ? AND seq <= ? AND type <> ? ORDER BY seq LIMIT ?`, after, durable, portrait.EventErased, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	defer rows.Close()
	return db.scanEvents(rows, limit)
}

// EventsBySeq returns the events with the given sequence numbers, in the
// order asked (missing ones are skipped).
func (db *DB) EventsBySeq(ctx context.Context, seqs []int64) ([]*portrait.Event, error) {
	out := make([]*portrait.Event, 0, len(seqs))
	bySeq := make(map[int64]*portrait.Event, len(seqs))
	for start := 0; start < len(seqs); start += 500 {
		end := min(start+500, len(seqs))
		args := make([]any, end-start)
		for i, s := range seqs[start:end] {
			args[i] = s
		}
		rows, err := db.logR.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq IN (`+placeholders(len(args))+`) AND type <> '`+portrait.EventErased+`'`, args...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read events")
		}
		evs, err := db.scanEvents(rows, len(args))
		rows.Close()
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			bySeq[e.Seq] = e
		}
	}
	for _, s := range seqs {
		if e, ok := bySeq[s]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func (db *DB) scanEvents(rows *sql.Rows, hint int) ([]*portrait.Event, error) {
	var seqs []int64
	var bodies [][]byte
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, portrait.Wrap(err, "cannot read the event log")
		}
		seqs = append(seqs, seq)
		bodies = append(bodies, body)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	// Decoding is the costly part and independent per event.
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
	var seq sql.NullInt64
	if err := db.logR.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&seq); err != nil {
		return 0, portrait.Wrap(err, "cannot read the event log")
	}
	return seq.Int64, nil
}

// CountEvents counts the events in the log.
func (db *DB) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := db.logR.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE type <> ?`, portrait.EventErased).Scan(&n); err != nil {
		return 0, portrait.Wrap(err, "cannot count events")
	}
	return n, nil
}

// ListQuarantine lists quarantined records, oldest first, after a cursor.
func (db *DB) ListQuarantine(ctx context.Context, f portrait.QuarantineFilter) ([]*portrait.Rejected, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := `SELECT id, source, idx, reason, raw, received_at FROM quarantine WHERE id > ?`
	args := []any{f.After}
	if f.Source != "" {
		q += ` AND source = ?`
		args = append(args, f.Source)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.logR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list the quarantine")
	}
	defer rows.Close()
	var out []*portrait.Rejected
	for rows.Next() {
		r := new(portrait.Rejected)
		var at int64
		if err := rows.Scan(&r.ID, &r.Source, &r.Index, &r.Reason, &r.Raw, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot list the quarantine")
		}
		var err error
		if r.Raw, err = db.sealer.OpenBlob(r.Raw, datakey.BlobQuarantine); err != nil { // sealing
			return nil, err
		}
		r.ReceivedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReceivedAt returns when the event at seq was received (zero if none).
func (db *DB) ReceivedAt(ctx context.Context, seq int64) (time.Time, error) {
	var at int64
	err := db.logR.QueryRowContext(ctx, `SELECT received_at FROM events WHERE seq = ?`, seq).Scan(&at)
	if err == sql.ErrNoRows {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, portrait.Wrap(err, "cannot read the event log")
	}
	return fromMicros(at), nil
}

// EventByMessageID finds a logged event (nil when absent).
func (db *DB) EventByMessageID(ctx context.Context, messageID string) (*portrait.Event, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT seq, body FROM events WHERE message_id = ?`, messageID)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	defer rows.Close()
	evs, err := db.scanEvents(rows, 1)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}
