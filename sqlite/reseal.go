package sqlite

import (
	"bytes"
	"context"
	"database/sql"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// Resealed counts what Reseal rewrote, by table.
type Resealed = storeseal.Resealed

const resealBatch = storeseal.Batch

// Reseal rewrites every stored secret-level value under the sealer's
// current key, with the levels as they are now: values sealed with an
// older key are sealed again, values in clear whose name is now secret are
// sealed, values whose name is no longer secret are left sealed (they read
// back the same). Afterwards nothing needs the older keys.
//
// What was sealed stays sealed (datakey.Sticky), whatever the levels at
// hand say: an offline command knows the explicit classifications and the
// defaults, not a computed trait's classification in the trait schema.
//
// It is for `portrait keys rotate-data-key`, on a store nobody else writes
// (the data directory's LOCK held). Each batch is its own transaction, with
// secure_delete, so what it replaces is zeroed rather than left in free
// pages; it can be interrupted and run again. It ends with a VACUUM of
// both files (Compact), which needs room for a copy of the larger one.
func (db *DB) Reseal(ctx context.Context) (*Resealed, error) {
	s := db.sealer
	if !s.Active() {
		return nil, portrait.Errorf(portrait.EINVALID, "no data key is configured: nothing to seal with")
	}
	n := &Resealed{}
	if err := db.resealEvents(ctx, s, n); err != nil {
		return n, err
	}
	if err := db.resealProfiles(ctx, s, n); err != nil {
		return n, err
	}
	if err := db.resealIdentifiers(ctx, s, n); err != nil {
		return n, err
	}
	if err := db.resealCandidates(ctx, s, n); err != nil {
		return n, err
	}
	for _, b := range []struct {
		d                 *sql.DB
		table, col, label string
		count             *int
	}{
		{db.logW, "quarantine", "raw", datakey.BlobQuarantine, &n.Quarantined},
		{db.logW, "imports", "summary", datakey.BlobImport, &n.ImportSummaries},
		{db.logW, "segment_dead_letters", "body", datakey.BlobDeadLetter, &n.DeadLetters},
		{db.logW, "account_edits", "body", datakey.BlobAccountEdit, &n.AccountEdits},
		{db.stateW, "account_state", "body", datakey.BlobAccountState, &n.AccountState},
	} {
		if err := db.resealBlobs(ctx, b.d, b.table, b.col, b.label, b.count); err != nil {
			return n, err
		}
	}
	// The suppression list re-keyed under the new key, so that the old
	// one can be retired without losing a suppression.
	var err error
	if n.Suppressions, err = db.RekeySuppressions(ctx); err != nil {
		return n, err
	}
	// The live rows are now under the new key, but not every old byte
	// is gone: secure_delete zeroes what this pass replaces, not what the
	// processor and rebuilds replaced before without it (the hot path
	// leaves old cells in the unused space of live pages, and a free page
	// reused keeps what it held). Those are old-key ciphertexts of old
	// versions: VACUUM writes both files afresh, from zeroed pages
	// (TestRotationLeavesNoOldKeyBytes), and the WALs are truncated.
	if err := db.Compact(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func (db *DB) resealEvents(ctx context.Context, s *datakey.Sealer, n *Resealed) error {
	rs := storeseal.Resealer{S: s}
	for after := int64(0); ; {
		rows, err := db.logW.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq > ? AND type <> ? ORDER BY seq LIMIT ?`, after, portrait.EventErased, resealBatch)
		if err != nil {
			return portrait.Wrap(err, "cannot read the event log")
		}
		type row struct {
			seq  int64
			body []byte
		}
		var todo []row
		read := 0
		for rows.Next() {
			var seq int64
			var body []byte
			if err := rows.Scan(&seq, &body); err != nil {
				rows.Close()
				return portrait.Wrap(err, "cannot read the event log")
			}
			read++
			after = seq
			sealed, ch, err := rs.Event(body)
			if err != nil {
				rows.Close()
				return err
			}
			if ch {
				todo = append(todo, row{seq, sealed})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot read the event log")
		}
		if len(todo) > 0 {
			err := db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
				for _, r := range todo {
					if _, err := tx.ExecContext(ctx, `UPDATE events SET body = ? WHERE seq = ?`, r.body, r.seq); err != nil {
						return portrait.Wrap(err, "cannot reseal events")
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			n.Events += len(todo)
		}
		if read < resealBatch {
			return nil
		}
	}
}

func (db *DB) resealProfiles(ctx context.Context, s *datakey.Sealer, n *Resealed) error {
	rs := storeseal.Resealer{S: s}
	for after := ""; ; {
		rows, err := db.stateW.QueryContext(ctx, `SELECT id, doc FROM profiles WHERE id > ? ORDER BY id LIMIT ?`, after, resealBatch)
		if err != nil {
			return portrait.Wrap(err, "cannot read profiles")
		}
		type row struct {
			id  string
			doc []byte
		}
		var todo []row
		read := 0
		for rows.Next() {
			var id string
			var doc []byte
			if err := rows.Scan(&id, &doc); err != nil {
				rows.Close()
				return portrait.Wrap(err, "cannot read profiles")
			}
			read++
			after = id
			out, ch, err := rs.Profile(id, doc)
			if err != nil {
				rows.Close()
				return err
			}
			if ch {
				todo = append(todo, row{id, out})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot read profiles")
		}
		if len(todo) > 0 {
			err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
				for _, r := range todo {
					if _, err := tx.ExecContext(ctx, `UPDATE profiles SET doc = ? WHERE id = ?`, r.doc, r.id); err != nil {
						return portrait.Wrap(err, "cannot reseal profiles")
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			n.Profiles += len(todo)
		}
		if read < resealBatch {
			return nil
		}
	}
}

// resealIdentifiers reseals the smaller tables of the state in one
// transaction each: identities, refused, merges, trait issues, splits.
func (db *DB) resealIdentifiers(ctx context.Context, s *datakey.Sealer, n *Resealed) error {
	type update struct {
		q    string
		args []any
	}
	// collect reads a table and returns the updates its rows need.
	collect := func(q string, fn func(sc func(...any) error) (*update, error)) ([]update, error) {
		rows, err := db.stateW.QueryContext(ctx, q)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read the state")
		}
		defer rows.Close()
		var out []update
		for rows.Next() {
			u, err := fn(rows.Scan)
			if err != nil {
				return nil, err
			}
			if u != nil {
				out = append(out, *u)
			}
		}
		return out, rows.Err()
	}
	rs := storeseal.Resealer{S: s}
	reseal := rs.Identifier
	steps := []struct {
		count *int
		q     string
		fn    func(sc func(...any) error) (*update, error)
	}{
		{&n.Identifiers, `SELECT type, value FROM identities`, func(sc func(...any) error) (*update, error) {
			var typ, v string
			if err := sc(&typ, &v); err != nil {
				return nil, err
			}
			now, ch, err := reseal(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{`UPDATE OR REPLACE identities SET value = ? WHERE type = ? AND value = ?`, []any{now, typ, v}}, nil
		}},
		{&n.Refused, `SELECT type, value, profile_id FROM refused`, func(sc func(...any) error) (*update, error) {
			var typ, v, pid string
			if err := sc(&typ, &v, &pid); err != nil {
				return nil, err
			}
			now, ch, err := reseal(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{`UPDATE OR REPLACE refused SET value = ? WHERE type = ? AND value = ? AND profile_id = ?`, []any{now, typ, v, pid}}, nil
		}},
		{&n.Merges, `SELECT id, id_type, id_value FROM merges WHERE id_value <> ''`, func(sc func(...any) error) (*update, error) {
			var id int64
			var typ, v string
			if err := sc(&id, &typ, &v); err != nil {
				return nil, err
			}
			now, ch, err := reseal(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{`UPDATE merges SET id_value = ? WHERE id = ?`, []any{now, id}}, nil
		}},
		{&n.TraitIssues, `SELECT message_id, trait, value FROM trait_issues`, func(sc func(...any) error) (*update, error) {
			var msg, trait, v string
			if err := sc(&msg, &trait, &v); err != nil {
				return nil, err
			}
			now, ch, err := rs.Value(trait, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{`UPDATE trait_issues SET value = ? WHERE message_id = ? AND trait = ?`, []any{now, msg, trait}}, nil
		}},
		{&n.Splits, `SELECT message_id, via_type, via_value, side_a, side_b FROM splits`, func(sc func(...any) error) (*update, error) {
			var msg, typ, v, a, b string
			if err := sc(&msg, &typ, &v, &a, &b); err != nil {
				return nil, err
			}
			via, ch, err := reseal(typ, v)
			if err != nil {
				return nil, err
			}
			sides := [2]string{a, b}
			for i, side := range sides {
				now, c, err := rs.SplitSide(msg, side)
				if err != nil {
					return nil, err
				}
				sides[i], ch = now, ch || c
			}
			if !ch {
				return nil, nil
			}
			return &update{`UPDATE splits SET via_value = ?, side_a = ?, side_b = ? WHERE message_id = ?`, []any{via, sides[0], sides[1], msg}}, nil
		}},
	}
	for _, st := range steps {
		ups, err := collect(st.q, st.fn)
		if err != nil {
			return err
		}
		for len(ups) > 0 {
			batch := ups[:min(len(ups), resealBatch)]
			ups = ups[len(batch):]
			err := db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
				for _, u := range batch {
					if _, err := tx.ExecContext(ctx, u.q, u.args...); err != nil {
						return portrait.Wrap(err, "cannot reseal the state")
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			*st.count += len(batch)
		}
	}
	return nil
}

// resealCandidates reseals the linkage candidates' compared values.
func (db *DB) resealCandidates(ctx context.Context, s *datakey.Sealer, n *Resealed) error {
	rs := storeseal.Resealer{S: s}
	rows, err := db.logW.QueryContext(ctx, `SELECT id, doc FROM linkage_candidates`)
	if err != nil {
		return portrait.Wrap(err, "cannot read linkage candidates")
	}
	type row struct {
		id  string
		doc []byte
	}
	var todo []row
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			rows.Close()
			return portrait.Wrap(err, "cannot read linkage candidates")
		}
		out, ch, err := rs.Candidate(id, doc)
		if err != nil {
			rows.Close()
			return err
		}
		if ch {
			todo = append(todo, row{id, out})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read linkage candidates")
	}
	if len(todo) == 0 {
		return nil
	}
	err = db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		for _, r := range todo {
			if _, err := tx.ExecContext(ctx, `UPDATE linkage_candidates SET doc = ? WHERE id = ?`, r.doc, r.id); err != nil {
				return portrait.Wrap(err, "cannot reseal linkage candidates")
			}
		}
		return nil
	})
	if err == nil {
		n.Candidates = len(todo)
	}
	return err
}

// resealBlobs seals every blob of table.col under the current key: sealed
// ones under an older key are opened and sealed again, clear ones (written
// before a key was configured) are sealed. A blob already under the current
// key is left alone, so a second run rewrites nothing.
func (db *DB) resealBlobs(ctx context.Context, d *sql.DB, table, col, label string, count *int) error {
	s := db.sealer
	current := []byte(datakey.Prefix + s.Ring.Current() + ":")
	for after := int64(-1 << 63); ; {
		rows, err := d.QueryContext(ctx, `SELECT rowid, `+col+` FROM `+table+` WHERE rowid > ? ORDER BY rowid LIMIT ?`, after, resealBatch)
		if err != nil {
			return portrait.Wrap(err, "cannot read "+table)
		}
		type row struct {
			rowid int64
			blob  []byte
		}
		var todo []row
		read := 0
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.rowid, &r.blob); err != nil {
				rows.Close()
				return portrait.Wrap(err, "cannot read "+table)
			}
			read++
			after = r.rowid
			if bytes.HasPrefix(r.blob, current) {
				continue
			}
			plain, err := s.OpenBlob(r.blob, label)
			if err != nil {
				rows.Close()
				return err
			}
			r.blob = s.SealBlob(plain, label)
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot read "+table)
		}
		if len(todo) > 0 {
			err := db.secureTx(ctx, d, func(tx *sql.Tx) error {
				for _, r := range todo {
					if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+col+` = ? WHERE rowid = ?`, r.blob, r.rowid); err != nil {
						return portrait.Wrap(err, "cannot reseal "+table)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			*count += len(todo)
		}
		if read < resealBatch {
			return nil
		}
	}
}
