package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/parallel"
	"github.com/portrait-cdp/portrait/internal/storeseal"
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
	err := db.pool.QueryRow(ctx, `SELECT seq FROM checkpoints WHERE name = $1`, name).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
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
	var out map[portrait.Identifier]string
	var at map[portrait.Identifier]portrait.EventKey
	complete := false
	// One snapshot for the count and the rows.
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM identities`).Scan(&n); err != nil {
			return err
		}
		if n > max {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT type, value, profile_id, at_us, at_msg FROM identities`)
		if err != nil {
			return err
		}
		out = make(map[portrait.Identifier]string, n)
		at = make(map[portrait.Identifier]portrait.EventKey, n)
		var id portrait.Identifier
		var pid, msg string
		var us int64
		_, err = pgx.ForEachRow(rows, []any{&id.Type, &id.Value, &pid, &us, &msg}, func() error {
			if err := db.openIdentifier(&id); err != nil { // sealing
				return err
			}
			out[id] = pid
			if us != 0 || msg != "" {
				at[id] = portrait.EventKey{Time: fromMicros(us), MessageID: msg}
			}
			return nil
		})
		complete = err == nil
		return err
	})
	if portrait.ErrorCode(err) == portrait.EUNAVAILABLE { // sealing: a data key is missing
		return nil, nil, false, err
	}
	if err != nil {
		return nil, nil, false, portrait.Wrap(err, "cannot read identities")
	}
	return out, at, complete, nil
}

// LoadRetracted returns the message ids of retracted events.
func (db *DB) LoadRetracted(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT message_id FROM retracted`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read retracted events")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read retracted events")
	}
	return out, nil
}

// LoadRefused returns every refused-identifier reference.
func (db *DB) LoadRefused(ctx context.Context) ([]profile.Ref, error) {
	rows, err := db.pool.Query(ctx, `SELECT type, value, profile_id FROM refused`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read refused identifiers")
	}
	var out []profile.Ref
	var r profile.Ref
	if _, err := pgx.ForEachRow(rows, []any{&r.ID.Type, &r.ID.Value, &r.ProfileID}, func() error {
		if err := db.openIdentifier(&r.ID); err != nil { // sealing
			return err
		}
		out = append(out, r)
		return nil
	}); err != nil {
		if portrait.ErrorCode(err) == portrait.EUNAVAILABLE {
			return nil, err
		}
		return nil, portrait.Wrap(err, "cannot read refused identifiers")
	}
	return out, nil
}

// LoadSplits returns the kept-apart decisions (undone identity merges).
func (db *DB) LoadSplits(ctx context.Context) ([]*profile.Split, error) {
	rows, err := db.pool.Query(ctx, `SELECT message_id, bridge, via_type, via_value, decided_by, side_a, side_b FROM splits ORDER BY message_id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read splits")
	}
	defer rows.Close()
	var out []*profile.Split
	for rows.Next() {
		s := &profile.Split{}
		var a, b string
		if err := rows.Scan(&s.MessageID, &s.Bridge, &s.Via.Type, &s.Via.Value, &s.By, &a, &b); err != nil {
			return nil, portrait.Wrap(err, "cannot read splits")
		}
		if err := json.Unmarshal([]byte(a), &s.A); err != nil {
			return nil, portrait.Wrap(err, "cannot read split "+s.MessageID)
		}
		if err := json.Unmarshal([]byte(b), &s.B); err != nil {
			return nil, portrait.Wrap(err, "cannot read split "+s.MessageID)
		}
		// sealing: identifier values are stored as seal.go stores them
		if err := db.openIdentifier(&s.Via); err != nil {
			return nil, err
		}
		if err := storeseal.OpenIdentifiers(db.sealer, s.A); err != nil {
			return nil, err
		}
		if err := storeseal.OpenIdentifiers(db.sealer, s.B); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read splits")
	}
	return out, nil
}

// stateTables are the derived state: what ResetState empties.
const stateTables = `profiles, identities, refused, profile_events, aliases, merges, checkpoints, trait_issues, retracted, splits, account_state, compacted`

// ResetState deletes all derived state, for a rebuild from the log. The
// change feed reports every profile deleted, so a follower's cursor taken
// before the reset stays good.
func (db *DB) ResetState(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var base int64
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockChanges)
		b.Queue(`SELECT coalesce(max(seq), 0) FROM profile_changes`).QueryRow(func(r pgx.Row) error { return r.Scan(&base) })
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		b = &pgx.Batch{}
		b.Queue(`INSERT INTO profile_changes (seq, profile_id, deleted, at)
			SELECT $1 + row_number() OVER (ORDER BY id), id, true, $2 FROM profiles`, base, micros(db.Now()))
		b.Queue(`TRUNCATE ` + stateTables)
		b.Queue(bumpDecisions) // the retractions and splits are gone (migration 041)
		b.Queue(`SELECT pg_notify('portrait_changes', '')`)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return portrait.Wrap(err, "cannot reset the derived state")
	}
	return nil
}

// AddTraitIssues records refused values (each once: keyed by event and
// trait, so replays add nothing).
func (db *DB) AddTraitIssues(ctx context.Context, issues []*portrait.TraitIssue) error {
	if len(issues) == 0 {
		return nil
	}
	var rows issueRows
	for _, i := range issues {
		rows.add(db.sealer, i)
	}
	st := rows.stmt()
	if _, err := db.pool.Exec(ctx, st.sql, st.args...); err != nil {
		return portrait.Wrap(err, "cannot record trait issues")
	}
	return nil
}

// SaveAccountState replaces the accounts' checkpoint.
func (db *DB) SaveAccountState(ctx context.Context, seq int64, body []byte) error {
	if body == nil {
		body = []byte{}
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO account_state (id, seq, body) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, body = excluded.body`, seq, db.sealer.SealBlob(body, datakey.BlobAccountState)); err != nil { // body: sealing
		return portrait.Wrap(err, "cannot save the accounts checkpoint")
	}
	return nil
}

// AccountState returns the accounts' checkpoint (seq 0, nil: none).
func (db *DB) AccountState(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT seq, body FROM account_state WHERE id = 1`).Scan(&seq, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, portrait.Wrap(err, "cannot read the accounts checkpoint")
	}
	if body, err = db.sealer.OpenBlob(body, datakey.BlobAccountState); err != nil { // sealing
		return 0, nil, err
	}
	return seq, body, nil
}

// BeginState starts a transaction over the derived state. Its commit is
// synchronous: WaitState has nothing to wait for.
func (db *DB) BeginState(ctx context.Context) (profile.StateTx, error) {
	return &stateTx{db: db, ctx: ctx}, nil
}

var _ profile.Fenced = (*DB)(nil)

// BeginStateTerm is BeginState for the applier of term: the transaction's
// first statement raises the fence's row to term, or finds a later term
// there and refuses; the row stays locked to the commit, so the check and
// the writes are one (profile.Fenced).
func (db *DB) BeginStateTerm(ctx context.Context, term profile.Term) (profile.StateTx, error) {
	if term.Fence == "" || term.N == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "an applier term needs a fence and a number above 0")
	}
	return &stateTx{db: db, ctx: ctx, term: term}, nil
}

// ClaimTerm raises the fence's row to term in a transaction of its own:
// it waits for the row's lock, which a state transaction of the term
// before holds to its commit (profile.Fenced).
func (db *DB) ClaimTerm(ctx context.Context, term profile.Term) error {
	if term.Fence == "" || term.N == 0 {
		return portrait.Errorf(portrait.EINVALID, "an applier term needs a fence and a number above 0")
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return raiseTerm(ctx, tx, term) })
}

// raiseTerm sets the fence's term to term unless a later one is recorded
// (ECONFLICT); ON CONFLICT locks the row either way, to the end of tx.
func raiseTerm(ctx context.Context, tx pgx.Tx, term profile.Term) error {
	var got int64
	err := tx.QueryRow(ctx, `INSERT INTO applier_terms (fence, term) VALUES ($1, $2)
		ON CONFLICT (fence) DO UPDATE SET term = excluded.term WHERE applier_terms.term <= excluded.term
		RETURNING term`, term.Fence, int64(term.N)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		var later int64
		tx.QueryRow(ctx, `SELECT term FROM applier_terms WHERE fence = $1`, term.Fence).Scan(&later)
		return portrait.Errorf(portrait.ECONFLICT, "applier term %d is over: term %d has begun, another node applies now", term.N, later)
	}
	if err != nil {
		return portrait.Wrap(err, "cannot check the applier term")
	}
	return nil
}

// WaitState returns at once: Commit returns when the transaction is
// committed, and reports its failure itself.
func (db *DB) WaitState(ctx context.Context) error { return ctx.Err() }

// stmt is one recorded write.
type stmt struct {
	sql  string
	args []any
	scan func(pgx.Row) error // reads the one row it returns, if set
}

// stateTx is one transaction over the derived state.
//
// Writes are recorded, in order, and sent to PostgreSQL at Flush and
// Commit (a pgx.Batch: one round trip for many statements); the rows of
// the hot paths (identities, profile events, trait issues, profiles) are
// gathered and written as one statement per few thousand rows, through
// unnest. No PostgreSQL transaction is open until the first Flush or the
// Commit, so reads (Identity, Profile, ProfileEventSeqs) see what is
// committed, and ProfileEventSeqs adds what this transaction recorded (pe,
// as in the embedded store). After a Flush the transaction can no longer
// read: its writes are in a transaction of its own, which a Flush sends on
// a goroutine while the caller goes on (Commit and Rollback wait for it).
type stateTx struct {
	db  *DB
	ctx context.Context
	// term, when set, is checked and raised by the transaction's first
	// statement (BeginStateTerm).
	term profile.Term
	// mu guards what PutProfile touches: it runs on several goroutines.
	mu   sync.Mutex
	ops  []stmt
	done bool

	pendIdent identRows
	// pendOld are the other stored forms of identifiers put (sealing):
	// types and values, removed before the identities are written.
	pendOld    [2][]string
	pendEvents eventRows
	pendIssues issueRows
	pendProfs  profileRows
	dropAlias  []string

	// changes are the profiles written (false) or deleted (true), for the
	// change feed.
	changes map[string]bool
	deleted map[string]bool // profiles this transaction deleted

	tx      pgx.Tx // open from the first Flush, or the first lock
	flushed bool   // Flush was called: no more reads
	// locked: the batch locked its rows (partitioned application), so its
	// reads go through tx and lock what they read; claimed are the
	// identities it claimed (rows inserted unowned), removed at commit
	// where the batch gave them no owner.
	locked  bool
	claimed [2][]string
	sending chan error // the send in flight, if any
	sendErr error      // the first send that failed
	pe      map[string]*peNode
	peLog   []peChange
	peUsed  bool
}

// chunkRows bounds the rows of one statement (a few MB of documents).
const chunkRows = 2000

// flushProfiles is how many profiles put after a Flush are sent at once.
const flushProfiles = 1000

type identRows struct {
	types, values, pids, msgs []string
	us                        []int64
}

func (r *identRows) stmts() []stmt {
	// One statement must not name a key twice for DO UPDATE: the last
	// write of each identifier wins, as it would row by row.
	seen := make(map[[2]string]bool, len(r.types))
	var keep []int
	for i := len(r.types) - 1; i >= 0; i-- {
		k := [2]string{r.types[i], r.values[i]}
		if !seen[k] {
			seen[k] = true
			keep = append(keep, i)
		}
	}
	var out []stmt
	for len(keep) > 0 {
		n := min(len(keep), chunkRows)
		var c identRows
		for _, i := range keep[:n] {
			c.types, c.values, c.pids, c.us, c.msgs = append(c.types, r.types[i]), append(c.values, r.values[i]), append(c.pids, r.pids[i]), append(c.us, r.us[i]), append(c.msgs, r.msgs[i])
		}
		out = append(out, stmt{sql: `INSERT INTO identities (type, value, profile_id, at_us, at_msg)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[])
			ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id, at_us = excluded.at_us, at_msg = excluded.at_msg`,
			args: []any{c.types, c.values, c.pids, c.us, c.msgs}})
		keep = keep[n:]
	}
	*r = identRows{}
	return out
}

type eventRows struct {
	pids     []string
	ts, seqs []int64
}

func (r *eventRows) stmts() []stmt {
	var out []stmt
	for i := 0; i < len(r.pids); i += chunkRows {
		j := min(i+chunkRows, len(r.pids))
		out = append(out, stmt{sql: `INSERT INTO profile_events (profile_id, ts, seq)
			SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) ON CONFLICT DO NOTHING`,
			args: []any{r.pids[i:j], r.ts[i:j], r.seqs[i:j]}})
	}
	*r = eventRows{}
	return out
}

type issueRows struct {
	msgs, traits, sources, pids, values, reasons []string
	at                                           []int64
}

func (r *issueRows) add(s *datakey.Sealer, i *portrait.TraitIssue) {
	r.msgs, r.traits, r.sources, r.pids = append(r.msgs, i.MessageID), append(r.traits, i.Trait), append(r.sources, i.Source), append(r.pids, i.ProfileID)
	r.values, r.reasons, r.at = append(r.values, s.StoreValue(i.Trait, i.Value)), append(r.reasons, i.Reason), append(r.at, micros(i.Time)) // value: sealing
}

// stmt writes every gathered issue; DO NOTHING takes a key named twice.
func (r *issueRows) stmt() stmt {
	return stmt{sql: `INSERT INTO trait_issues (message_id, trait, source, profile_id, value, reason, at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[]) ON CONFLICT DO NOTHING`,
		args: []any{r.msgs, r.traits, r.sources, r.pids, r.values, r.reasons, r.at}}
}

type profileRows struct {
	ids  []string
	docs [][]byte
	at   []int64
}

func (r *profileRows) stmts() []stmt {
	seen := make(map[string]bool, len(r.ids))
	var keep []int
	for i := len(r.ids) - 1; i >= 0; i-- {
		if !seen[r.ids[i]] {
			seen[r.ids[i]] = true
			keep = append(keep, i)
		}
	}
	var out []stmt
	for len(keep) > 0 {
		n := min(len(keep), chunkRows)
		var c profileRows
		for _, i := range keep[:n] {
			c.ids, c.docs, c.at = append(c.ids, r.ids[i]), append(c.docs, r.docs[i]), append(c.at, r.at[i])
		}
		out = append(out, stmt{sql: `INSERT INTO profiles (id, doc, updated_at)
			SELECT * FROM unnest($1::text[], $2::bytea[], $3::int8[])
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			args: []any{c.ids, c.docs, c.at}})
		keep = keep[n:]
	}
	*r = profileRows{}
	return out
}

// record adds a write, after the gathered rows before it.
func (t *stateTx) record(sql string, args ...any) error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.takeHot()
	t.ops = append(t.ops, stmt{sql: sql, args: args})
	return nil
}

// takeHot turns the gathered hot-path rows into recorded writes, in the
// embedded store's order.
func (t *stateTx) takeHot() {
	if ids := t.dropAlias; len(ids) > 0 {
		t.dropAlias = nil
		t.ops = append(t.ops, stmt{sql: `DELETE FROM aliases WHERE old_id = ANY($1)`, args: []any{ids}})
	}
	if len(t.pendIdent.types) > 0 {
		if old := t.pendOld; len(old[0]) > 0 {
			t.pendOld = [2][]string{}
			t.ops = append(t.ops, stmt{sql: `DELETE FROM identities WHERE (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, args: []any{old[0], old[1]}})
		}
		t.ops = append(t.ops, t.pendIdent.stmts()...)
	}
	if len(t.pendIssues.msgs) > 0 {
		t.ops = append(t.ops, t.pendIssues.stmt())
		t.pendIssues = issueRows{}
	}
	if len(t.pendEvents.pids) > 0 {
		t.ops = append(t.ops, t.pendEvents.stmts()...)
	}
	if len(t.pendProfs.ids) > 0 {
		t.ops = append(t.ops, t.pendProfs.stmts()...)
	}
}

// readable refuses a read once the transaction ended or was flushed.
func (t *stateTx) readable() error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	if t.flushed || (t.tx != nil && !t.locked) {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction read after its writes were flushed")
	}
	return nil
}

// querier is what the transaction reads through: what is committed, or,
// once it locked, its own PostgreSQL transaction.
func (t *stateTx) querier() interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
} {
	if t.locked {
		return t.tx
	}
	return t.db.pool
}

// forUpdate is the locking clause of a locked transaction's reads.
func (t *stateTx) forUpdate() string {
	if t.locked {
		return ` FOR UPDATE`
	}
	return ``
}

func (t *stateTx) Identity(id portrait.Identifier) (string, error) {
	if err := t.readable(); err != nil {
		return "", err
	}
	var pid string
	err := t.querier().QueryRow(t.ctx, `SELECT profile_id FROM identities WHERE type = $1 AND value = ANY($2) AND profile_id <> ''`+t.forUpdate(), id.Type, t.db.identifierForms(id)).Scan(&pid) // sealing
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", stateErr(err, "cannot read identity")
	}
	return pid, nil
}

func (t *stateTx) Profile(id string) (*portrait.Profile, error) {
	if err := t.readable(); err != nil {
		return nil, err
	}
	if t.deleted[id] {
		return nil, nil
	}
	var doc []byte
	err := t.querier().QueryRow(t.ctx, `SELECT doc FROM profiles WHERE id = $1`+t.forUpdate(), id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, stateErr(err, "cannot read profile")
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

// peChange is an add (seq > 0), a move (to != "") or a delete of a
// profile's events, as the embedded store models them.
type peChange struct {
	pid, to string
	seq     int64
}

type peNode struct {
	stored []string // profiles whose committed rows this one holds now
	added  []int64
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

func (t *stateTx) ProfileEventSeqs(profileID string) ([]int64, error) {
	if err := t.readable(); err != nil {
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
	if len(n.stored) > 0 {
		rows, err := t.querier().Query(t.ctx, `SELECT seq FROM profile_events WHERE profile_id = ANY($1)`, n.stored)
		if err != nil {
			return nil, stateErr(err, "cannot read profile events")
		}
		var q int64
		if _, err := pgx.ForEachRow(rows, []any{&q}, func() error {
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
			return nil
		}); err != nil {
			return nil, stateErr(err, "cannot read profile events")
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

// ProfileEventSeqsOf is ProfileEventSeqs for several profiles in one
// round trip (profile.SeqsOfMany): a batch's replay reads the histories
// of its late events' profiles together, not two round trips each while
// it holds its locks.
func (t *stateTx) ProfileEventSeqsOf(profileIDs []string) (map[string][]int64, error) {
	if err := t.readable(); err != nil {
		return nil, err
	}
	if !t.peUsed {
		t.peUsed = true
		for _, c := range t.peLog {
			t.applyPE(c)
		}
		t.peLog = nil
	}
	nodes := make(map[string]*peNode, len(profileIDs))
	holders := map[string][]string{} // stored profile -> the asked profiles holding its rows
	var stored []string
	for _, pid := range profileIDs {
		if _, ok := nodes[pid]; ok {
			continue
		}
		n := t.pe[pid]
		if n == nil {
			n = &peNode{stored: []string{pid}}
		}
		nodes[pid] = n
		for _, sp := range n.stored {
			if holders[sp] == nil {
				stored = append(stored, sp)
			}
			holders[sp] = append(holders[sp], pid)
		}
	}
	out := make(map[string][]int64, len(nodes))
	seen := make(map[string]map[int64]bool, len(nodes))
	add := func(pid string, q int64) {
		s := seen[pid]
		if s == nil {
			s = map[int64]bool{}
			seen[pid] = s
		}
		if !s[q] {
			s[q] = true
			out[pid] = append(out[pid], q)
		}
	}
	if len(stored) > 0 {
		rows, err := t.querier().Query(t.ctx, `SELECT profile_id, seq FROM profile_events WHERE profile_id = ANY($1)`, stored)
		if err != nil {
			return nil, stateErr(err, "cannot read profile events")
		}
		var sp string
		var q int64
		if _, err := pgx.ForEachRow(rows, []any{&sp, &q}, func() error {
			for _, pid := range holders[sp] {
				add(pid, q)
			}
			return nil
		}); err != nil {
			return nil, stateErr(err, "cannot read profile events")
		}
	}
	for pid, n := range nodes {
		for _, q := range n.added {
			add(pid, q)
		}
	}
	return out, nil
}

func (t *stateTx) PutIdentity(id portrait.Identifier, profileID string, attached portrait.EventKey) error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	var us int64
	if !attached.Time.IsZero() || attached.MessageID != "" {
		us = attached.Time.UnixMicro()
	}
	// sealing: a secret identifier is stored sealed; its other forms (in
	// clear from before a key, under an older key) are removed.
	stored := t.db.sealer.StoreIdentifier(id)
	if t.db.sealer.HasRing() {
		for _, f := range t.db.identifierForms(id) {
			if f != stored {
				t.pendOld[0], t.pendOld[1] = append(t.pendOld[0], id.Type), append(t.pendOld[1], f)
			}
		}
	}
	r := &t.pendIdent
	r.types, r.values, r.pids, r.us, r.msgs = append(r.types, id.Type), append(r.values, stored), append(r.pids, profileID), append(r.us, us), append(r.msgs, attached.MessageID)
	return nil
}

func (t *stateTx) DeleteIdentity(id portrait.Identifier) error {
	return t.record(`DELETE FROM identities WHERE type = $1 AND value = ANY($2)`, id.Type, t.db.identifierForms(id)) // sealing
}

func (t *stateTx) PutRefused(r profile.Ref) error {
	return t.record(`INSERT INTO refused (type, value, profile_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, r.ID.Type, t.db.sealer.StoreIdentifier(r.ID), r.ProfileID) // sealing
}

func (t *stateTx) MoveRefused(from, to string) error {
	if err := t.record(`INSERT INTO refused (type, value, profile_id) SELECT r.type, r.value, $1 FROM refused r WHERE r.profile_id = $2
		AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.type = r.type AND i.value = r.value AND i.profile_id = $1) ON CONFLICT DO NOTHING`, to, from); err != nil {
		return err
	}
	return t.record(`DELETE FROM refused WHERE profile_id = $1`, from)
}

func (t *stateTx) DeleteRefused(profileID string) error {
	return t.record(`DELETE FROM refused WHERE profile_id = $1`, profileID)
}

// PutProfiles encodes the profiles now, in parallel (they change as soon
// as the caller goes on), and records their rows.
func (t *stateTx) PutProfiles(ps []*portrait.Profile) error {
	errs := make([]error, len(ps))
	parallel.For(len(ps), func(i int) { errs[i] = t.PutProfile(ps[i]) })
	return errors.Join(errs...)
}

// PutProfile encodes p now, on the caller's goroutine and under no lock,
// and records its row. It may run on several goroutines at once. After a
// Flush, every flushProfiles profiles are sent as they come, so that
// PostgreSQL writes them while the caller finishes the next ones.
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
	if t.changes == nil {
		t.changes = map[string]bool{}
	}
	t.changes[p.ID] = false
	r := &t.pendProfs
	r.ids, r.docs, r.at = append(r.ids, p.ID), append(r.docs, doc), append(r.at, micros(p.UpdatedAt))
	if t.flushed && len(r.ids) >= flushProfiles {
		return t.handOver()
	}
	return nil
}

// Flush sends what was recorded to PostgreSQL now, on a goroutine (see
// stateTx).
func (t *stateTx) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.flushed = true
	return t.handOver()
}

// handOver begins the PostgreSQL transaction if needed and sends what was
// recorded, after the send in flight; t.mu is held.
func (t *stateTx) handOver() error {
	t.takeHot()
	if err := t.begin(); err != nil {
		return err
	}
	if err := t.waitSend(); err != nil {
		return err
	}
	ops := t.ops
	t.ops = nil
	if len(ops) == 0 {
		return nil
	}
	ch := make(chan error, 1)
	t.sending = ch
	go func() { ch <- t.exec(ops) }()
	return nil
}

func (t *stateTx) begin() error {
	if t.tx != nil {
		return nil
	}
	// The derived state is replayed from the log, as the embedded store's
	// synchronous=NORMAL assumes: its commit need not wait for the WAL's
	// flush. A crash loses at most the last few commits whole (the
	// checkpoint is in the same transaction), which a restart replays.
	tx, err := t.db.pool.BeginTx(t.ctx, pgx.TxOptions{BeginQuery: `BEGIN; SET LOCAL synchronous_commit = off`})
	if err != nil {
		return portrait.Wrap(err, "cannot begin state transaction")
	}
	if t.term.N != 0 {
		// First, so that a stale applier writes nothing, and the row lock
		// covers the whole transaction.
		if err := raiseTerm(t.ctx, tx, t.term); err != nil {
			tx.Rollback(context.WithoutCancel(t.ctx))
			return err
		}
	}
	t.tx = tx
	return nil
}

// waitSend waits for the send in flight and returns the first failure.
func (t *stateTx) waitSend() error {
	if t.sending != nil {
		if err := <-t.sending; err != nil && t.sendErr == nil {
			t.sendErr = err
		}
		t.sending = nil
	}
	return t.sendErr
}

// maxBatch bounds the statements of one pgx.Batch: the replies of a
// batch wait in the socket until it is all written.
const maxBatch = 256

// exec runs recorded writes on the open transaction.
func (t *stateTx) exec(ops []stmt) error {
	for len(ops) > 0 {
		n := min(len(ops), maxBatch)
		b := &pgx.Batch{}
		for _, op := range ops[:n] {
			q := b.Queue(op.sql, op.args...)
			if op.scan != nil {
				q.QueryRow(op.scan)
			}
		}
		if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
			return stateErr(err, "cannot write derived state")
		}
		ops = ops[n:]
	}
	return nil
}

func (t *stateTx) DeleteProfile(id string) error {
	if t.deleted == nil {
		t.deleted = map[string]bool{}
	}
	t.deleted[id] = true
	if t.changes == nil {
		t.changes = map[string]bool{}
	}
	t.changes[id] = true
	return t.record(`DELETE FROM profiles WHERE id = $1`, id)
}

func (t *stateTx) PutAlias(oldID, newID string) error {
	if oldID == newID {
		return t.record(`DELETE FROM aliases WHERE old_id = $1`, oldID)
	}
	return t.record(`INSERT INTO aliases (old_id, new_id) VALUES ($1, $2) ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id`, oldID, newID)
}

func (t *stateTx) DropAlias(id string) error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.dropAlias = append(t.dropAlias, id)
	return nil
}

func (t *stateTx) AddProfileEvent(profileID string, e *portrait.Event) error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	r := &t.pendEvents
	r.pids, r.ts, r.seqs = append(r.pids, profileID), append(r.ts, micros(e.Timestamp)), append(r.seqs, e.Seq)
	t.peChange(peChange{pid: profileID, seq: e.Seq})
	return nil
}

func (t *stateTx) MoveProfileEvents(from, to string) error {
	t.peChange(peChange{pid: from, to: to})
	return t.record(`UPDATE profile_events SET profile_id = $1 WHERE profile_id = $2`, to, from)
}

func (t *stateTx) DeleteProfileEvents(profileID string) error {
	t.peChange(peChange{pid: profileID})
	return t.record(`DELETE FROM profile_events WHERE profile_id = $1`, profileID)
}

func (t *stateTx) AppendMerge(m *portrait.MergeEntry) error {
	return t.record(`INSERT INTO merges (kind, into_id, from_id, id_type, id_value, message_id, event_seq, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		m.Kind, m.Into, m.From, m.Identifier.Type, t.db.sealer.StoreIdentifier(m.Identifier), m.MessageID, m.EventSeq, m.Reason, micros(m.At))
}

func (t *stateTx) AddTraitIssue(i *portrait.TraitIssue) error {
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.pendIssues.add(t.db.sealer, i)
	return nil
}

func (t *stateTx) PutRetracted(messageID string) error {
	return t.record(`INSERT INTO retracted (message_id) VALUES ($1) ON CONFLICT DO NOTHING`, messageID)
}

func (t *stateTx) PutSplit(s *profile.Split) error {
	a, err := t.db.storeSplitSide(s.A) // sealing
	if err != nil {
		return err
	}
	b, err := t.db.storeSplitSide(s.B)
	if err != nil {
		return err
	}
	return t.record(`INSERT INTO splits (message_id, bridge, via_type, via_value, decided_by, side_a, side_b) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (message_id) DO UPDATE SET side_a = excluded.side_a, side_b = excluded.side_b`,
		s.MessageID, s.Bridge, s.Via.Type, t.db.sealer.StoreIdentifier(s.Via), s.By, a, b)
}

func (t *stateTx) DeleteSplit(messageID string) error {
	return t.record(`DELETE FROM splits WHERE message_id = $1`, messageID)
}

func orEmpty(ids []portrait.Identifier) []portrait.Identifier {
	if ids == nil {
		return []portrait.Identifier{}
	}
	return ids
}

// SetCheckpoint records the position with the messageId of the event at
// it, as the embedded store does (a log that lost its tail and reused the
// numbers can then be told apart).
func (t *stateTx) SetCheckpoint(name string, seq int64) error {
	// The messageId is read in the statement: no round trip of its own.
	return t.record(`INSERT INTO checkpoints (name, seq, message_id)
		VALUES ($1, $2, coalesce((SELECT message_id FROM events WHERE seq = $2), ''))
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, message_id = excluded.message_id`, name, seq)
}

// Commit writes what is left, appends the changed profiles to the change
// feed and commits; it returns when the transaction is committed.
func (t *stateTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return portrait.Errorf(portrait.EINTERNAL, "state transaction already ended")
	}
	t.done = true
	t.takeHot()
	if t.tx == nil && len(t.ops) == 0 && len(t.changes) == 0 {
		return nil // nothing written
	}
	err := t.finish()
	if err != nil && t.tx != nil {
		t.tx.Rollback(context.WithoutCancel(t.ctx))
	}
	return err
}

func (t *stateTx) finish() error {
	if err := t.begin(); err != nil {
		return err
	}
	if err := t.waitSend(); err != nil {
		return err
	}
	var changed, deleted []string
	for id, del := range t.changes {
		if del {
			deleted = append(deleted, id)
		} else {
			changed = append(changed, id)
		}
	}
	// The feed's rows go in the last batch with the last writes: its lock
	// is held from there to the commit only.
	feed, prune := t.db.changeStmts(changed, deleted)
	ops := t.ops
	if c := t.claimed; len(c[0]) > 0 {
		// Claims the batch gave no owner (an identifier a limit kept off)
		// go: no row names no one.
		ops = append(ops, stmt{sql: `DELETE FROM identities WHERE profile_id = '' AND (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, args: []any{c[0], c[1]}})
	}
	ops = append(ops, feed...)
	t.ops = nil
	if err := t.exec(ops); err != nil {
		return err
	}
	if err := prune(t.ctx, t.tx); err != nil {
		return err
	}
	if err := t.tx.Commit(t.ctx); err != nil {
		return stateErr(err, "cannot commit derived state")
	}
	return nil
}

func (t *stateTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	t.done = true
	t.ops, t.dropAlias = nil, nil
	t.pendIdent, t.pendEvents, t.pendIssues, t.pendProfs = identRows{}, eventRows{}, issueRows{}, profileRows{}
	t.pendOld = [2][]string{}
	if t.tx == nil {
		return nil
	}
	t.waitSend() // its failure no longer matters
	if err := t.tx.Rollback(context.WithoutCancel(t.ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return portrait.Wrap(err, "cannot roll back derived state")
	}
	return nil
}
