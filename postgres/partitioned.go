package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// Partitioned application (docs/scaling.md): the log records each event's
// bus partition (AppendPartition, migration 040), each partition has its
// own checkpoint, and a state transaction locks the identity rows and
// profiles of its batch before reading them (profile.Locker).

var (
	_ profile.Partitioned        = (*DB)(nil)
	_ profile.Locker             = (*stateTx)(nil)
	_ profile.SeqsOfMany         = (*stateTx)(nil)
	_ profile.ManyIdentities     = (*stateTx)(nil)
	_ profile.DecisionsVersioned = (*DB)(nil)
)

// partitionCond selects partition p's events (Direct: those without one).
func partitionCond(p int) (string, any) {
	if p == profile.Direct {
		return `partition IS NULL AND $1::int2 IS NULL`, nil
	}
	return `partition = $1`, int16(p)
}

// ReadPartition returns up to limit events of partition p after seq, in
// log order (erased events' tombstones left out).
func (db *DB) ReadPartition(ctx context.Context, p int, after int64, limit int) ([]*portrait.Event, error) {
	cond, arg := partitionCond(p)
	rows, err := db.pool.Query(ctx, `SELECT seq, body FROM events WHERE `+cond+` AND seq > $2 AND type <> $3 ORDER BY seq LIMIT $4`,
		arg, after, portrait.EventErased, sqlLimit(limit))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	return db.scanEvents(rows)
}

// PartitionCheckpoint is partition p's position; before its first batch,
// the one applier's.
func (db *DB) PartitionCheckpoint(ctx context.Context, p int) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM checkpoints WHERE name = $1), (SELECT seq FROM checkpoints WHERE name = $2), 0)`,
		profile.PartitionCheckpointName(p), profile.CheckpointName).Scan(&seq)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read checkpoint")
	}
	return seq, nil
}

// bumpDecisions raises the version of the retractions and splits where
// migration 041's triggers do not: after a truncation.
const bumpDecisions = `INSERT INTO config_versions (kind, version) VALUES ('state:decisions', 1)
	ON CONFLICT (kind) DO UPDATE SET version = config_versions.version + 1`

// DecisionsVersion is the version of the retractions and splits
// (profile.DecisionsVersioned): raised by a trigger on either table in the
// transaction that writes it (migration 041), and by ResetState.
func (db *DB) DecisionsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM config_versions WHERE kind = 'state:decisions'), 0)`).Scan(&v); err != nil {
		return 0, portrait.Wrap(err, "cannot read the version of the retractions and splits")
	}
	return v, nil
}

// AppliedThrough is how far the log is applied under partitioned
// application with n partitions: the seq before the first event some
// partition (or the events without one) has yet to apply, else the log's
// end. One index probe per partition.
func (db *DB) AppliedThrough(ctx context.Context, n int) (int64, error) {
	parts := make([]int32, 0, n+1)
	for p := profile.Direct; p < n; p++ {
		parts = append(parts, int32(p))
	}
	// Each partition's first unapplied event is one probe of the
	// (partition, seq) index: partition = p, and IS NULL for Direct (IS
	// NOT DISTINCT FROM would not use the index).
	var seq int64
	err := db.pool.QueryRow(ctx, `WITH base AS (SELECT coalesce((SELECT seq FROM checkpoints WHERE name = $2), 0) AS seq),
		cps AS (SELECT p, coalesce((SELECT c.seq FROM checkpoints c WHERE c.name = CASE WHEN p < 0 THEN $2 || '/direct' ELSE $2 || '/p' || p END), (SELECT seq FROM base)) AS cp
			FROM unnest($1::int4[]) AS u(p)),
		firsts AS (
			SELECT (SELECT e.seq FROM events e WHERE e.partition = cps.p::int2 AND e.seq > cps.cp ORDER BY e.seq LIMIT 1) AS s FROM cps WHERE cps.p >= 0
			UNION ALL
			SELECT (SELECT e.seq FROM events e WHERE e.partition IS NULL AND e.seq > cps.cp ORDER BY e.seq LIMIT 1) FROM cps WHERE cps.p < 0)
		SELECT coalesce((SELECT min(s) - 1 FROM firsts), (SELECT coalesce(max(seq), 0) FROM events))`,
		parts, profile.CheckpointName).Scan(&seq)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read the partitions' checkpoints")
	}
	return seq, nil
}

// stateErr wraps a failed statement of a state transaction: one that met
// another transaction (deadlock, serialisation failure, a unique key
// inserted by it) is ECONFLICT, which partitioned application retries.
func stateErr(err error, msg string) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "40001", "40P01", "23505":
			return &portrait.Error{Code: portrait.ECONFLICT, Message: msg + ": it met another node's batch (" + pg.Code + "), apply it again", Err: err}
		}
	}
	if portrait.ErrorCode(err) != portrait.EINTERNAL { // already ours (a refused term)
		return err
	}
	return portrait.Wrap(err, msg)
}

// lockBegin opens the PostgreSQL transaction for a locking batch.
func (t *stateTx) lockBegin() error {
	if err := t.readable(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.begin(); err != nil {
		return err
	}
	t.locked = true
	return nil
}

// LockIdentities claims the absent identifiers of ids (rows with no owner,
// inserted in key order: a second batch inserting one waits for this
// one's commit) and locks every row of ids in key order, reading what it
// holds and the profiles it is kept apart from (profile.Locker).
func (t *stateTx) LockIdentities(ids []portrait.Identifier) (map[portrait.Identifier]profile.LockedIdentity, error) {
	if err := t.lockBegin(); err != nil {
		return nil, err
	}
	type key struct{ typ, value string }
	of := map[key]portrait.Identifier{} // every stored form (sealing)
	var newT, newV, allT, allV []string
	for _, id := range ids {
		stored := t.db.sealer.StoreIdentifier(id)
		newT, newV = append(newT, id.Type), append(newV, stored)
		of[key{id.Type, stored}] = id
		for _, f := range t.db.identifierForms(id) {
			of[key{id.Type, f}] = id
			allT, allV = append(allT, id.Type), append(allV, f)
		}
	}
	out := make(map[portrait.Identifier]profile.LockedIdentity, len(ids))
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO identities (type, value, profile_id)
		SELECT t, v, '' FROM unnest($1::text[], $2::text[]) AS u(t, v) ORDER BY t, v
		ON CONFLICT (type, value) DO NOTHING RETURNING type, value`, newT, newV).Query(func(rows pgx.Rows) error {
		var k key
		_, err := pgx.ForEachRow(rows, []any{&k.typ, &k.value}, func() error {
			t.claimed[0], t.claimed[1] = append(t.claimed[0], k.typ), append(t.claimed[1], k.value)
			return nil
		})
		return err
	})
	b.Queue(`SELECT type, value, profile_id, at_us, at_msg FROM identities
		WHERE (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY type, value FOR UPDATE`, allT, allV).Query(func(rows pgx.Rows) error {
		var k key
		var pid, msg string
		var us int64
		_, err := pgx.ForEachRow(rows, []any{&k.typ, &k.value, &pid, &us, &msg}, func() error {
			id, ok := of[k]
			if !ok {
				return nil
			}
			cur, seen := out[id]
			if seen && cur.ProfileID != "" {
				return nil // an older stored form's claim beside the owned row
			}
			r := profile.LockedIdentity{ProfileID: pid}
			if us != 0 || msg != "" {
				r.Attached = portrait.EventKey{Time: fromMicros(us), MessageID: msg}
			}
			out[id] = r
			return nil
		})
		return err
	})
	b.Queue(`SELECT type, value, profile_id FROM refused WHERE (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY 1, 2, 3`, allT, allV).Query(func(rows pgx.Rows) error {
		var k key
		var pid string
		_, err := pgx.ForEachRow(rows, []any{&k.typ, &k.value, &pid}, func() error {
			if id, ok := of[k]; ok {
				r := out[id]
				r.Refused = append(r.Refused, pid)
				out[id] = r
			}
			return nil
		})
		return err
	})
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return nil, stateErr(err, "cannot lock identities")
	}
	return out, nil
}

// LockProfiles locks and reads profiles in id order (profile.Locker).
func (t *stateTx) LockProfiles(ids []string) ([]*portrait.Profile, error) {
	if err := t.lockBegin(); err != nil {
		return nil, err
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	rows, err := t.tx.Query(t.ctx, `SELECT id, doc FROM profiles WHERE id = ANY($1) ORDER BY id FOR UPDATE`, slices.Compact(sorted))
	if err != nil {
		return nil, stateErr(err, "cannot lock profiles")
	}
	var docs [][]byte
	var id string
	var doc []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &doc}, func() error {
		if !t.deleted[id] {
			docs = append(docs, doc)
		}
		doc = nil
		return nil
	}); err != nil {
		return nil, stateErr(err, "cannot lock profiles")
	}
	out := make([]*portrait.Profile, 0, len(docs))
	for _, d := range docs {
		p, err := profiledoc.Decode(d)
		if err != nil {
			return nil, portrait.Wrap(err, "corrupt profile")
		}
		if err := t.db.sealer.OpenProfile(p); err != nil { // sealing
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Refused reads the profiles id is kept apart from (profile.Locker).
func (t *stateTx) Refused(id portrait.Identifier) ([]string, error) {
	if err := t.readable(); err != nil {
		return nil, err
	}
	rows, err := t.querier().Query(t.ctx, `SELECT profile_id FROM refused WHERE type = $1 AND value = ANY($2) ORDER BY 1`, id.Type, t.db.identifierForms(id))
	if err != nil {
		return nil, stateErr(err, "cannot read refused identifiers")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, stateErr(err, "cannot read refused identifiers")
	}
	return out, nil
}

// WaitWriters returns once every transaction of this database that held a
// transaction id when it was called (one that has written or locked a
// row: every batch of partitioned application, once it holds its locks)
// has ended, on whichever node it runs. It is the processor's Sync for
// partitioned application, where the batches in flight are other
// processes' (traits.Service.Settle): a profile written by a batch that
// began before the call is committed, or rolled back, when it returns.
// Transactions of other databases of the server are not waited for.
func (db *DB) WaitWriters(ctx context.Context) error {
	rows, err := db.pool.Query(ctx, `SELECT pid, backend_xid::text FROM pg_stat_activity
		WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()`)
	if err != nil {
		return portrait.Wrap(err, "cannot list the transactions in flight")
	}
	var pids []int32
	var xids []string
	var pid int32
	var xid string
	if _, err := pgx.ForEachRow(rows, []any{&pid, &xid}, func() error {
		pids, xids = append(pids, pid), append(xids, xid)
		return nil
	}); err != nil {
		return portrait.Wrap(err, "cannot list the transactions in flight")
	}
	// A backend runs one transaction at a time: the same pid with the
	// same xid is the same transaction, still running.
	wait := time.Millisecond
	for len(pids) > 0 {
		var left int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity a
			JOIN unnest($1::int4[], $2::text[]) AS w(pid, xid) ON a.pid = w.pid AND a.backend_xid::text = w.xid`, pids, xids).Scan(&left); err != nil {
			return portrait.Wrap(err, "cannot follow the transactions in flight")
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	return nil
}

// IdentitiesOf is Identity and Refused for several identifiers in one
// round trip (profile.ManyIdentities): a replay's closure reaches the
// identifiers of the histories it reads, which the batch did not lock at
// its start, and read one by one they cost two round trips each while the
// batch holds its locks. Owned rows are locked in key order, as Identity
// locks them.
func (t *stateTx) IdentitiesOf(ids []portrait.Identifier) (owners map[portrait.Identifier]string, refused map[portrait.Identifier][]string, err error) {
	if err := t.readable(); err != nil {
		return nil, nil, err
	}
	type key struct{ typ, value string }
	of := map[key]portrait.Identifier{}
	var ts, vs []string
	for _, id := range ids {
		for _, f := range t.db.identifierForms(id) { // sealing
			of[key{id.Type, f}] = id
			ts, vs = append(ts, id.Type), append(vs, f)
		}
	}
	owners = make(map[portrait.Identifier]string, len(ids))
	refused = map[portrait.Identifier][]string{}
	b := &pgx.Batch{}
	b.Queue(`SELECT type, value, profile_id FROM identities
		WHERE (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND profile_id <> '' ORDER BY type, value`+t.forUpdate(), ts, vs).Query(func(rows pgx.Rows) error {
		var k key
		var pid string
		_, err := pgx.ForEachRow(rows, []any{&k.typ, &k.value, &pid}, func() error {
			if id, ok := of[k]; ok {
				if _, seen := owners[id]; !seen {
					owners[id] = pid
				}
			}
			return nil
		})
		return err
	})
	b.Queue(`SELECT type, value, profile_id FROM refused WHERE (type, value) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY 1, 2, 3`, ts, vs).Query(func(rows pgx.Rows) error {
		var k key
		var pid string
		_, err := pgx.ForEachRow(rows, []any{&k.typ, &k.value, &pid}, func() error {
			if id, ok := of[k]; ok {
				refused[id] = append(refused[id], pid)
			}
			return nil
		})
		return err
	})
	var br pgx.BatchResults
	if t.locked {
		br = t.tx.SendBatch(t.ctx, b)
	} else {
		br = t.db.pool.SendBatch(t.ctx, b)
	}
	if err := br.Close(); err != nil {
		return nil, nil, stateErr(err, "cannot read identities")
	}
	return owners, refused, nil
}
