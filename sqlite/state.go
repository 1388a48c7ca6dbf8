package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/parallel"
	"github.com/portrait-cdp/portrait/profile"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

var (
	_ profile.Store          = (*DB)(nil)
	_ profile.StateTx        = (*stateTx)(nil)
	_ portrait.ProfileReader = (*DB)(nil)
)

// Checkpoint returns a processor's position in the log.
func (db *DB) Checkpoint(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := db.stateR.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE name = ?`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read checkpoint")
	}
	return seq, nil
}

// LoadIdentities returns the whole identity graph if it has at most max
// identifiers, with when each was attached (where known).
func (db *DB) LoadIdentities(ctx context.Context, max int) (map[portrait.Identifier]string, map[portrait.Identifier]portrait.EventKey, bool, error) {
	var n int
	if err := db.stateR.QueryRowContext(ctx, `SELECT count(*) FROM identities`).Scan(&n); err != nil {
		return nil, nil, false, portrait.Wrap(err, "cannot count identities")
	}
	if n > max {
		return nil, nil, false, nil
	}
	rows, err := db.stateR.QueryContext(ctx, `SELECT type, value, profile_id, at_us, at_msg FROM identities`)
	if err != nil {
		return nil, nil, false, portrait.Wrap(err, "cannot read identities")
	}
	defer rows.Close()
	out := make(map[portrait.Identifier]string, n)
	at := make(map[portrait.Identifier]portrait.EventKey, n)
	for rows.Next() {
		var id portrait.Identifier
		var pid, msg string
		var us int64
		if err := rows.Scan(&id.Type, &id.Value, &pid, &us, &msg); err != nil {
			return nil, nil, false, portrait.Wrap(err, "cannot read identities")
		}
		if err := db.openIdentifier(&id); err != nil { // sealing
			return nil, nil, false, err
		}
		out[id] = pid
		if us != 0 || msg != "" {
			at[id] = portrait.EventKey{Time: time.UnixMicro(us).UTC(), MessageID: msg}
		}
	}
	return out, at, true, rows.Err()
}

// LoadRetracted returns the message ids of retracted events.
func (db *DB) LoadRetracted(ctx context.Context) ([]string, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT message_id FROM retracted`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read retracted events")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, portrait.Wrap(err, "cannot read retracted events")
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// LoadRefused returns every refused-identifier reference.
func (db *DB) LoadRefused(ctx context.Context) ([]profile.Ref, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT type, value, profile_id FROM refused`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read refused identifiers")
	}
	defer rows.Close()
	var out []profile.Ref
	for rows.Next() {
		var r profile.Ref
		if err := rows.Scan(&r.ID.Type, &r.ID.Value, &r.ProfileID); err != nil {
			return nil, portrait.Wrap(err, "cannot read refused identifiers")
		}
		if err := db.openIdentifier(&r.ID); err != nil { // sealing
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// stateTx is one transaction over the derived state.
//
// Writes are recorded, in order, and no SQLite transaction is open until
// the writes are handed to a background writer (see stateWriter): Commit
// hands them over and returns at once, so the processor computes its next
// batch while this one is written; on two cores that overlap is most of the
// processor's headroom. A read that must go to storage (a profile not in
// the processor's cache, a profile's event list for a re-ordering) waits
// for the transaction in flight, reads what is committed, and adds what
// this transaction recorded (the processor caches every identity and
// profile it writes; profile_events is modelled, see pe).
//
// Flush hands what was recorded so far to the writer, which starts writing
// it while the caller goes on (the processor flushes before enriching, then
// streams profiles as they are finished). After a flush the transaction can
// no longer read: its writes are in a SQLite transaction of the writer's.
type stateTx struct {
	db  *DB
	ctx context.Context
	job *writeJob // the writer's transaction, once flushed
	// mu guards ops and the gathered rows: PutProfile is called from
	// several goroutines at once.
	mu  sync.Mutex
	ops []stateOp
	// Hot-path inserts are gathered and written as multi-row statements,
	// which costs SQLite far less than a statement a row. Any other write
	// takes them first, so the order of writes is kept.
	pendIdent  []any // type, value, profile_id, at_us, at_msg
	pendEvents []pendEvent
	dropAlias  []any
	pendIssues []any // trait_issues rows, 7 columns
	pendProfs  []any // profiles rows, 3 columns
	done       bool
	// pe models what this transaction does to profile_events, so that a
	// transaction answers ProfileEventSeqs without writing
	// anything: the rows of the profiles named in stored (as committed
	// before it began) plus the seqs added since. A profile absent from pe
	// holds its own stored rows.
	// It is built at the first such read (most transactions never read):
	// until then the changes are only listed, in order.
	deleted map[string]bool // profiles this transaction deleted
	pe      map[string]*peNode
	peLog   []peChange
	peUsed  bool

	// pendOldForms are identifiers' other stored forms (type, value),
	// removed before pendIdent is written (sealing: seal.go).
	pendOldForms []any
}

// peChange is an add (seq > 0), a move (to != "") or a delete.
type peChange struct {
	pid, to string
	seq     int64
}

func (t *stateTx) peChange(c peChange) {
	if !t.peUsed {
		t.peLog = append(t.peLog, c)
		return
	}
	t.applyPE(c)
}

func (t *stateTx) applyPE(c peChange) {
	n := t.peNode(c.pid)
	switch {
	case c.seq > 0:
		n.added = append(n.added, c.seq)
	case c.to != "":
		if c.pid != c.to {
			m := t.peNode(c.to)
			m.stored = append(m.stored, n.stored...)
			m.added = append(m.added, n.added...)
			n.stored, n.added = nil, nil
		}
	default:
		n.stored, n.added = nil, nil
	}
}

type peNode struct {
	stored []string
	added  []int64
}

func (t *stateTx) peNode(pid string) *peNode {
	if t.pe == nil {
		t.pe = map[string]*peNode{}
	}
	n := t.pe[pid]
	if n == nil {
		n = &peNode{stored: []string{pid}}
		t.pe[pid] = n
	}
	return n
}

type stateOp func(x *stateExec) error

// stateExec runs recorded writes on an open SQLite transaction.
type stateExec struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

type pendEvent struct {
	profileID string
	ts        int64
	seq       int64
}

const flushRows = 256

func (x *stateExec) stmt(q string) (*sql.Stmt, error) {
	if s, ok := x.stmts[q]; ok {
		return s, nil
	}
	s, err := x.tx.PrepareContext(x.ctx, q)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot prepare statement")
	}
	x.stmts[q] = s
	return s, nil
}

func (x *stateExec) exec(q string, args ...any) error {
	s, err := x.stmt(q)
	if err != nil {
		return err
	}
	if _, err := s.ExecContext(x.ctx, args...); err != nil {
		return portrait.Wrap(err, "cannot write derived state")
	}
	return nil
}

// multiInsert writes rows (flattened args, width columns each) with one
// statement per chunk of flushRows rows.
func (x *stateExec) multiInsert(head, tail string, width int, args []any) error {
	row := "(" + placeholders(width) + ")"
	for len(args) > 0 {
		n := min(len(args)/width, flushRows)
		q := head + strings.TrimSuffix(strings.Repeat(row+",", n), ",") + tail
		var st *sql.Stmt
		var err error
		if n == flushRows {
			st, err = x.stmt(q) // the full-size statement is reused
		} else {
			st, err = x.tx.PrepareContext(x.ctx, q)
			if err == nil {
				defer st.Close()
			}
		}
		if err != nil {
			return portrait.Wrap(err, "cannot prepare statement")
		}
		if _, err := st.ExecContext(x.ctx, args[:n*width]...); err != nil {
			return portrait.Wrap(err, "cannot write derived state")
		}
		args = args[n*width:]
	}
	return nil
}

func (x *stateExec) close() {
	for _, s := range x.stmts {
		s.Close()
	}
}

// BeginState starts a transaction over the derived state. It reports a
// failed background commit of an earlier transaction: the caller's view of
// the state is then ahead of storage and must be read again.
func (db *DB) BeginState(ctx context.Context) (profile.StateTx, error) {
	if err := db.writer.err(); err != nil {
		return nil, err
	}
	return &stateTx{db: db, ctx: ctx}, nil
}

// WaitState waits until every handed-over state transaction is committed,
// and reports the first that failed.
func (db *DB) WaitState(ctx context.Context) error {
	if err := db.writer.wait(ctx); err != nil {
		return err
	}
	return db.writer.err()
}

// record adds a write, after the gathered rows before it.
func (t *stateTx) record(op stateOp) error {
	t.takeHot()
	t.ops = append(t.ops, op)
	return nil
}

// takeHot turns the gathered hot-path rows into recorded writes.
func (t *stateTx) takeHot() {
	if ids := t.dropAlias; len(ids) > 0 {
		t.dropAlias = nil
		t.ops = append(t.ops, func(x *stateExec) error {
			for len(ids) > 0 {
				n := min(len(ids), flushRows)
				if _, err := x.tx.ExecContext(x.ctx, `DELETE FROM aliases WHERE old_id IN (`+placeholders(n)+`)`, ids[:n]...); err != nil {
					return portrait.Wrap(err, "cannot write derived state")
				}
				ids = ids[n:]
			}
			return nil
		})
	}
	if args := t.pendIdent; len(args) > 0 {
		old := t.pendOldForms
		t.pendIdent, t.pendOldForms = nil, nil
		t.ops = append(t.ops, func(x *stateExec) error {
			if err := deleteForms(x, old); err != nil {
				return err
			}
			return x.multiInsert(`INSERT INTO identities (type, value, profile_id, at_us, at_msg) VALUES `,
				` ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id, at_us = excluded.at_us, at_msg = excluded.at_msg`, 5, args)
		})
	}
	if args := t.pendIssues; len(args) > 0 {
		t.pendIssues = nil
		t.ops = append(t.ops, func(x *stateExec) error {
			return x.multiInsert(`INSERT INTO trait_issues (message_id, trait, source, profile_id, value, reason, at) VALUES `, ` ON CONFLICT DO NOTHING`, 7, args)
		})
	}
	if pe := t.pendEvents; len(pe) > 0 {
		t.pendEvents = nil
		t.ops = append(t.ops, func(x *stateExec) error {
			// Written in key order, the rows of one profile land on the
			// same B-tree pages.
			sort.Slice(pe, func(i, j int) bool {
				if pe[i].profileID != pe[j].profileID {
					return pe[i].profileID < pe[j].profileID
				}
				if pe[i].ts != pe[j].ts {
					return pe[i].ts < pe[j].ts
				}
				return pe[i].seq < pe[j].seq
			})
			args := make([]any, 0, 3*len(pe))
			for _, r := range pe {
				args = append(args, r.profileID, r.ts, r.seq)
			}
			return x.multiInsert(`INSERT INTO profile_events (profile_id, ts, seq) VALUES `, ` ON CONFLICT DO NOTHING`, 3, args)
		})
	}
	if args := t.pendProfs; len(args) > 0 {
		t.pendProfs = nil
		t.ops = append(t.ops, func(x *stateExec) error {
			return x.multiInsert(`INSERT INTO profiles (id, doc, updated_at) VALUES `, ` ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`, 3, args)
		})
	}
}

// readable refuses a read once the transaction ended or was flushed.
func (t *stateTx) readable() error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	if t.job != nil {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction read after its writes were flushed")
	}
	return nil
}

// readCommitted readies a read of what is committed: it waits for the
// commit in flight (the previous batch). The processor caches every
// identity and profile it writes, so it asks only for ones this
// transaction has not written (a deleted profile excepted, see Profile).
func (t *stateTx) readCommitted() error {
	if err := t.readable(); err != nil {
		return err
	}
	return t.db.writer.wait(t.ctx)
}

func (t *stateTx) Identity(id portrait.Identifier) (string, error) {
	if err := t.readCommitted(); err != nil {
		return "", err
	}
	var pid string
	in, args := t.db.identifierForms(id) // sealing
	err := t.db.stateR.QueryRowContext(t.ctx, `SELECT profile_id FROM identities WHERE type = ? AND value IN `+in, args...).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", portrait.Wrap(err, "cannot read identity")
	}
	return pid, nil
}

func (t *stateTx) Profile(id string) (*portrait.Profile, error) {
	if err := t.readCommitted(); err != nil {
		return nil, err
	}
	if t.deleted[id] {
		return nil, nil
	}
	var doc []byte
	err := t.db.stateR.QueryRowContext(t.ctx, `SELECT doc FROM profiles WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile")
	}
	p, err := profiledoc.Decode(doc)
	if err != nil {
		return nil, portrait.Wrap(err, "corrupt profile "+id)
	}
	if err := t.db.sealer.OpenProfile(p); err != nil { // sealing
		return nil, err
	}
	return p, nil
}

func (t *stateTx) ProfileEventSeqs(profileID string) ([]int64, error) {
	// What is committed, read beside the writer once it is done, and what
	// this transaction did since.
	if err := t.readCommitted(); err != nil {
		return nil, err
	}
	if !t.peUsed {
		t.peUsed = true
		for _, c := range t.peLog {
			t.applyPE(c)
		}
		t.peLog = nil
	}
	n := t.pe[profileID]
	if n == nil {
		n = &peNode{stored: []string{profileID}}
	}
	seen := map[int64]bool{}
	var out []int64
	for _, pid := range n.stored {
		s, err := querySeqs(t.ctx, t.db.stateR, pid)
		if err != nil {
			return nil, err
		}
		for _, q := range s {
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	for _, q := range n.added {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func querySeqs(ctx context.Context, db querier, profileID string) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq FROM profile_events WHERE profile_id = ?`, profileID)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, portrait.Wrap(err, "cannot read profile events")
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t *stateTx) PutIdentity(id portrait.Identifier, profileID string, attached portrait.EventKey) error {
	var us int64
	if !attached.Time.IsZero() || attached.MessageID != "" {
		us = attached.Time.UnixMicro()
	}
	// sealing: a secret identifier is stored sealed; its other forms (in
	// clear from before a key, under an older key) are removed.
	stored := t.db.sealer.StoreIdentifier(id)
	if t.db.sealer.HasRing() {
		for _, f := range t.db.sealer.IdentifierForms(id) {
			if f != stored {
				t.pendOldForms = append(t.pendOldForms, id.Type, f)
			}
		}
	}
	t.pendIdent = append(t.pendIdent, id.Type, stored, profileID, us, attached.MessageID)
	return nil
}

func (t *stateTx) DeleteIdentity(id portrait.Identifier) error {
	in, args := t.db.identifierForms(id) // sealing
	return t.record(func(x *stateExec) error {
		return x.exec(`DELETE FROM identities WHERE type = ? AND value IN `+in, args...)
	})
}

func (t *stateTx) PutRefused(r profile.Ref) error {
	return t.record(func(x *stateExec) error {
		return x.exec(`INSERT INTO refused (type, value, profile_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, r.ID.Type, t.db.sealer.StoreIdentifier(r.ID), r.ProfileID) // sealing
	})
}

func (t *stateTx) MoveRefused(from, to string) error {
	return t.record(func(x *stateExec) error {
		if err := x.exec(`INSERT INTO refused (type, value, profile_id) SELECT r.type, r.value, ? FROM refused r WHERE r.profile_id = ?
		AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.type = r.type AND i.value = r.value AND i.profile_id = ?) ON CONFLICT DO NOTHING`, to, from, to); err != nil {
			return err
		}
		return x.exec(`DELETE FROM refused WHERE profile_id = ?`, from)
	})
}

func (t *stateTx) DeleteRefused(profileID string) error {
	return t.record(func(x *stateExec) error { return x.exec(`DELETE FROM refused WHERE profile_id = ?`, profileID) })
}

// PutProfiles encodes the profiles now, in parallel (they change as soon
// as the caller goes on), and records their rows.
func (t *stateTx) PutProfiles(ps []*portrait.Profile) error {
	errs := make([]error, len(ps))
	parallel.For(len(ps), func(i int) { errs[i] = t.PutProfile(ps[i]) })
	return errors.Join(errs...)
}

// PutProfile encodes p now and records its row. It may run on several
// goroutines at once. Once the transaction was flushed, every flushRows
// profiles go to the writer as they come, so that SQLite writes them
// while the caller finishes the next ones.
func (t *stateTx) PutProfile(p *portrait.Profile) error {
	stored, err := t.db.sealer.SealProfile(p) // sealing
	if err != nil {
		return err
	}
	doc, err := profiledoc.Encode(stored)
	if err != nil {
		return portrait.Wrap(err, "cannot encode profile "+p.ID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	delete(t.deleted, p.ID)
	t.pendProfs = append(t.pendProfs, p.ID, doc, micros(p.UpdatedAt))
	if t.job != nil && len(t.pendProfs) >= 3*flushRows {
		return t.handOver(endNone)
	}
	return nil
}

// Flush hands what was recorded to the writer now (see stateTx).
func (t *stateTx) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	return t.handOver(endNone)
}

// handOver sends what was recorded to the writer, starting the writer's
// transaction first if this is the first part; end says whether the
// transaction ends with it.
func (t *stateTx) handOver(end int) error {
	t.takeHot()
	if t.job == nil {
		job, err := t.db.writer.start(t.ctx)
		if err != nil {
			return err
		}
		t.job = job
	}
	ops := t.ops
	t.ops = nil
	return t.job.send(t.ctx, ops, end)
}

func (t *stateTx) DeleteProfile(id string) error {
	if t.deleted == nil {
		t.deleted = map[string]bool{}
	}
	t.deleted[id] = true
	return t.record(func(x *stateExec) error { return x.exec(`DELETE FROM profiles WHERE id = ?`, id) })
}

func (t *stateTx) PutAlias(oldID, newID string) error {
	return t.record(func(x *stateExec) error {
		if oldID == newID {
			return x.exec(`DELETE FROM aliases WHERE old_id = ?`, oldID)
		}
		return x.exec(`INSERT INTO aliases (old_id, new_id) VALUES (?, ?) ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id`, oldID, newID)
	})
}

func (t *stateTx) DropAlias(id string) error {
	t.dropAlias = append(t.dropAlias, id)
	return nil
}

func (t *stateTx) AddProfileEvent(profileID string, e *portrait.Event) error {
	// Gathered until the next recorded write (at commit, mostly).
	t.pendEvents = append(t.pendEvents, pendEvent{profileID, micros(e.Timestamp), e.Seq})
	t.peChange(peChange{pid: profileID, seq: e.Seq})
	return nil
}

func (t *stateTx) MoveProfileEvents(from, to string) error {
	t.peChange(peChange{pid: from, to: to})
	return t.record(func(x *stateExec) error {
		return x.exec(`UPDATE profile_events SET profile_id = ? WHERE profile_id = ?`, to, from)
	})
}

func (t *stateTx) DeleteProfileEvents(profileID string) error {
	t.peChange(peChange{pid: profileID})
	return t.record(func(x *stateExec) error { return x.exec(`DELETE FROM profile_events WHERE profile_id = ?`, profileID) })
}

func (t *stateTx) AppendMerge(m *portrait.MergeEntry) error {
	args := []any{m.Kind, m.Into, m.From, m.Identifier.Type, t.db.sealer.StoreIdentifier(m.Identifier), m.MessageID, m.EventSeq, m.Reason, micros(m.At)}
	return t.record(func(x *stateExec) error {
		return x.exec(`INSERT INTO merges (kind, into_id, from_id, id_type, id_value, message_id, event_seq, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	})
}

func (t *stateTx) AddTraitIssue(i *portrait.TraitIssue) error {
	t.pendIssues = append(t.pendIssues, i.MessageID, i.Trait, i.Source, i.ProfileID, t.db.sealer.StoreValue(i.Trait, i.Value), i.Reason, micros(i.Time))
	return nil
}

func (t *stateTx) PutRetracted(messageID string) error {
	return t.record(func(x *stateExec) error {
		return x.exec(`INSERT INTO retracted (message_id) VALUES (?) ON CONFLICT DO NOTHING`, messageID)
	})
}

// SetCheckpoint records the position with the messageId of the event at
// it, so that Open can tell a log that lost its tail and reused the
// numbers from the log the state was built from.
func (t *stateTx) SetCheckpoint(name string, seq int64) error {
	msg, err := t.db.messageIDAt(t.ctx, seq)
	if err != nil {
		return err
	}
	return t.record(func(x *stateExec) error {
		return x.exec(`INSERT INTO checkpoints (name, seq, message_id) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, message_id = excluded.message_id`, name, seq, msg)
	})
}

// Commit hands the transaction to the background writer (WaitState and
// the next BeginState report its fate).
func (t *stateTx) Commit() error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.done = true
	return t.handOver(endCommit)
}

func (t *stateTx) Rollback() error {
	if t.done {
		return nil
	}
	t.done = true
	t.ops, t.pendIdent, t.pendEvents, t.dropAlias, t.pendIssues, t.pendProfs = nil, nil, nil, nil, nil, nil
	t.pendOldForms = nil
	if t.job != nil {
		return t.job.send(t.ctx, nil, endRollback)
	}
	return nil
}

// stateWriter writes handed-over state transactions one at a time, in
// order, on its own goroutine, at most one in flight: the next one starts
// when it is done. A transaction arrives in parts (see stateTx.Flush) and
// ends with a commit or a rollback. A failure is kept until reported, and
// every transaction handed over after a failure is dropped, since it was
// computed on top of the one that failed.
type stateWriter struct {
	db     *DB
	mu     sync.Mutex
	busy   chan struct{} // closed when the transaction in flight ends; nil when idle
	failed error
}

// writeJob is the transaction in flight: its parts, in order.
type writeJob struct {
	parts chan writePart
}

// How a part ends the transaction.
const (
	endNone = iota
	endCommit
	endRollback
)

type writePart struct {
	ops []stateOp
	end int
}

// send hands the writer a part. The writer always drains its parts, so
// this waits only while it is behind by a few; the wait ends with ctx
// only if the caller gives up (the writer then still gets the end the
// caller's Rollback sends).
func (j *writeJob) send(ctx context.Context, ops []stateOp, end int) error {
	if len(ops) == 0 && end == endNone {
		return nil
	}
	select {
	case j.parts <- writePart{ops, end}:
		return nil
	case <-ctx.Done():
		if end != endNone {
			j.parts <- writePart{ops, end} // the end must arrive
		}
		return ctx.Err()
	}
}

func (w *stateWriter) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.failed
	w.failed = nil
	return err
}

// wait waits for the transaction in flight, if any.
func (w *stateWriter) wait(ctx context.Context) error {
	w.mu.Lock()
	busy := w.busy
	w.mu.Unlock()
	if busy == nil {
		return nil
	}
	select {
	case <-busy:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start waits for the transaction in flight and begins the next, which
// the writer writes as its parts arrive.
func (w *stateWriter) start(ctx context.Context) (*writeJob, error) {
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failed; err != nil {
		w.failed = nil
		return nil, err
	}
	done := make(chan struct{})
	w.busy = done
	// Room for 64 parts (16,384 profiles, some 40 MB of documents):
	// with less, the enrichers waited on the writer at the end of a large
	// batch, while at the start of the next one a core is idle (the
	// sequential part); room lets the writer's work move there. 16 parts
	// measured 5 % slower, bare and enriched alike.
	job := &writeJob{parts: make(chan writePart, 64)}
	// The write must finish even when the caller's context ends (a
	// shutdown): Close waits for it, and what it writes is consistent.
	wctx := context.WithoutCancel(ctx)
	go func() {
		err := w.write(wctx, job)
		w.db.health.note(&w.db.health.state, err)
		w.mu.Lock()
		if err != nil && w.failed == nil {
			w.failed = err
		}
		w.busy = nil
		w.mu.Unlock()
		close(done)
	}()
	return job, nil
}

// write runs a job's parts as they arrive, on one SQLite transaction
// opened with the first write. After a failed write it only drains the
// parts until the end, and reports the failure unless the job rolls back
// (the caller then knows its transaction did not happen).
func (w *stateWriter) write(ctx context.Context, job *writeJob) error {
	var x *stateExec
	var failed error
	defer func() {
		if x != nil {
			x.close()
		}
	}()
	for part := range job.parts {
		if failed == nil && part.end != endRollback {
			for _, op := range part.ops {
				if x == nil {
					tx, err := w.db.stateW.BeginTx(ctx, nil)
					if err != nil {
						failed = portrait.Wrap(err, "cannot begin state transaction")
						break
					}
					x = &stateExec{ctx: ctx, tx: tx, stmts: map[string]*sql.Stmt{}}
				}
				if failed = op(x); failed != nil {
					break
				}
			}
		}
		switch part.end {
		case endNone:
			continue
		case endCommit:
			if failed == nil && x != nil {
				if err := x.tx.Commit(); err != nil {
					return portrait.Wrap(err, "cannot commit derived state")
				}
				return nil
			}
		}
		if x != nil {
			x.tx.Rollback()
		}
		if part.end == endRollback {
			return nil
		}
		return failed
	}
	return nil
}
