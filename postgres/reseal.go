package postgres

import (
	"bytes"
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// Reseal rewrites every stored secret-level value under the sealer's
// current key, as the embedded store's Reseal does and through the same
// per-row code (internal/storeseal): values sealed with an older key are
// sealed again, values in clear whose name is now secret are sealed, what
// was sealed stays sealed.
//
// It is for `portrait keys rotate-data-key --store postgres://…` with every
// server stopped: a node still running with the old key file would write
// values this pass has already visited under the old key (they stay
// readable with the old key in the file, and a second pass seals them).
// Each batch is its own transaction; it can be interrupted and run again.
// PostgreSQL keeps the replaced row versions until VACUUM: the store runs
// VACUUM FULL on the rewritten tables at the end, so that the old
// ciphertexts leave the table files (not the WAL archive or backups). A
// session with a transaction open since before holds them: the pass waits
// for it (VacuumWait), and reports it in OldVersions if it is still open.
func (db *DB) Reseal(ctx context.Context) (*storeseal.Resealed, error) {
	s := db.sealer
	if !s.Active() {
		return nil, portrait.Errorf(portrait.EINVALID, "no data key is configured: nothing to seal with")
	}
	rs := storeseal.Resealer{S: s}
	n := &storeseal.Resealed{}
	// Events and profiles, in pages by key.
	type page struct {
		count *int
		table string
		q     string // the next page after $1
		up    string
		fn    func(key string, v []byte) ([]byte, bool, error)
	}
	for _, p := range []page{
		{&n.Events, "events", `SELECT seq::text, body FROM events WHERE seq > $1::int8 AND type <> '` + portrait.EventErased + `' ORDER BY seq LIMIT ` + itoa(storeseal.Batch),
			`UPDATE events SET body = $1 WHERE seq = $2::int8`, func(_ string, v []byte) ([]byte, bool, error) { return rs.Event(v) }},
		{&n.Profiles, "profiles", `SELECT id, doc FROM profiles WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT ` + itoa(storeseal.Batch),
			`UPDATE profiles SET doc = $1 WHERE id = $2`, rs.Profile},
		{&n.Candidates, "linkage_candidates", `SELECT id, doc FROM linkage_candidates WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT ` + itoa(storeseal.Batch),
			`UPDATE linkage_candidates SET doc = $1 WHERE id = $2`, rs.Candidate},
	} {
		after := ""
		if p.table == "events" {
			after = "0"
		}
		for {
			rows, err := db.pool.Query(ctx, p.q, after)
			if err != nil {
				return n, portrait.Wrap(err, "cannot read "+p.table)
			}
			var keys []string
			var vals [][]byte
			var k string
			var v []byte
			if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
				keys, vals = append(keys, k), append(vals, v)
				v = nil
				return nil
			}); err != nil {
				return n, portrait.Wrap(err, "cannot read "+p.table)
			}
			b := &pgx.Batch{}
			for i, key := range keys {
				out, ch, err := p.fn(key, vals[i])
				if err != nil {
					return n, err
				}
				if ch {
					b.Queue(p.up, out, key)
				}
			}
			if b.Len() > 0 {
				if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
					return n, portrait.Wrap(err, "cannot reseal "+p.table)
				}
				*p.count += b.Len()
			}
			if len(keys) < storeseal.Batch {
				break
			}
			after = keys[len(keys)-1]
		}
	}
	if err := db.resealIdentifiers(ctx, rs, n); err != nil {
		return n, err
	}
	for _, b := range sealedBlobs(n) {
		if err := db.resealBlobs(ctx, b); err != nil {
			return n, err
		}
	}
	// The suppression list re-keyed under the new key, so that the old
	// one can be retired without losing a suppression.
	var err error
	if n.Suppressions, err = db.RekeySuppressions(ctx); err != nil {
		return n, err
	}
	// The replaced versions leave the files only when no session holds
	// them (horizon.go): waited for, else reported.
	mark, err := db.horizonMark(ctx)
	if err != nil {
		return n, err
	}
	wait := db.VacuumWait
	if wait <= 0 {
		wait = DefaultVacuumWait
	}
	if n.OldVersions, err = db.vacuumHeld(ctx, "the rotation", `VACUUM FULL events, profiles, linkage_candidates, identities, refused, merges, trait_issues, splits,
		quarantine, imports, segment_dead_letters, account_edits, account_state, suppressed`, mark, wait); err != nil {
		return n, portrait.Wrap(err, "cannot vacuum the resealed tables")
	}
	return n, nil
}

// resealIdentifiers reseals the smaller tables of the state, a batch of
// rows a transaction: identities, refused, merges, trait issues, splits.
func (db *DB) resealIdentifiers(ctx context.Context, rs storeseal.Resealer, n *storeseal.Resealed) error {
	// An update is a statement, after a removal when pre is set.
	type update struct {
		pre, q        string
		preArgs, args []any
	}
	steps := []struct {
		count *int
		q     string
		fn    func(pgx.Rows) (*update, error)
	}{
		{&n.Identifiers, `SELECT type, value FROM identities`, func(r pgx.Rows) (*update, error) {
			var typ, v string
			if err := r.Scan(&typ, &v); err != nil {
				return nil, err
			}
			now, ch, err := rs.Identifier(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			// Two forms of one identifier (clear and sealed) become one
			// row: the other form's row goes, as UPDATE OR REPLACE does.
			return &update{`DELETE FROM identities WHERE type = $1 AND value = $2`, `UPDATE identities SET value = $1 WHERE type = $2 AND value = $3`,
				[]any{typ, now}, []any{now, typ, v}}, nil
		}},
		{&n.Refused, `SELECT type, value, profile_id FROM refused`, func(r pgx.Rows) (*update, error) {
			var typ, v, pid string
			if err := r.Scan(&typ, &v, &pid); err != nil {
				return nil, err
			}
			now, ch, err := rs.Identifier(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{`DELETE FROM refused WHERE type = $1 AND value = $2 AND profile_id = $3`, `UPDATE refused SET value = $1 WHERE type = $2 AND value = $3 AND profile_id = $4`,
				[]any{typ, now, pid}, []any{now, typ, v, pid}}, nil
		}},
		{&n.Merges, `SELECT id, id_type, id_value FROM merges WHERE id_value <> ''`, func(r pgx.Rows) (*update, error) {
			var id int64
			var typ, v string
			if err := r.Scan(&id, &typ, &v); err != nil {
				return nil, err
			}
			now, ch, err := rs.Identifier(typ, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{q: `UPDATE merges SET id_value = $1 WHERE id = $2`, args: []any{now, id}}, nil
		}},
		{&n.TraitIssues, `SELECT message_id, trait, value FROM trait_issues`, func(r pgx.Rows) (*update, error) {
			var msg, trait, v string
			if err := r.Scan(&msg, &trait, &v); err != nil {
				return nil, err
			}
			now, ch, err := rs.Value(trait, v)
			if err != nil || !ch {
				return nil, err
			}
			return &update{q: `UPDATE trait_issues SET value = $1 WHERE message_id = $2 AND trait = $3`, args: []any{now, msg, trait}}, nil
		}},
		{&n.Splits, `SELECT message_id, via_type, via_value, side_a, side_b FROM splits`, func(r pgx.Rows) (*update, error) {
			var msg, typ, v, a, b string
			if err := r.Scan(&msg, &typ, &v, &a, &b); err != nil {
				return nil, err
			}
			via, ch, err := rs.Identifier(typ, v)
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
			return &update{q: `UPDATE splits SET via_value = $1, side_a = $2, side_b = $3 WHERE message_id = $4`, args: []any{via, sides[0], sides[1], msg}}, nil
		}},
	}
	for _, st := range steps {
		rows, err := db.pool.Query(ctx, st.q)
		if err != nil {
			return portrait.Wrap(err, "cannot read the state")
		}
		var ups []update
		for rows.Next() {
			u, err := st.fn(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if u != nil {
				ups = append(ups, *u)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot read the state")
		}
		for len(ups) > 0 {
			batch := ups[:min(len(ups), storeseal.Batch)]
			ups = ups[len(batch):]
			b := &pgx.Batch{}
			for _, u := range batch {
				if u.pre != "" {
					b.Queue(u.pre, u.preArgs...)
				}
				b.Queue(u.q, u.args...)
			}
			if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
				return portrait.Wrap(err, "cannot reseal the state")
			}
			*st.count += len(batch)
		}
	}
	return nil
}

// sealedBlob is a column of documents sealed whole (datakey.SealBlob).
type sealedBlob struct {
	table, key, keyType, col string
	text                     bool // a TEXT column (else BYTEA)
	label                    string
	count                    *int
}

// sealedBlobs are the columns the store seals whole, as the embedded store
// does, with the counters of n they add to.
func sealedBlobs(n *storeseal.Resealed) []sealedBlob {
	return []sealedBlob{
		{"quarantine", "id", "int8", "raw", false, datakey.BlobQuarantine, &n.Quarantined},
		{"imports", "id", "text", "summary", false, datakey.BlobImport, &n.ImportSummaries},
		{"segment_dead_letters", "id", "int8", "body", false, datakey.BlobDeadLetter, &n.DeadLetters},
		{"account_edits", "id", "int8", "body", true, datakey.BlobAccountEdit, &n.AccountEdits},
		{"account_state", "id", "int4", "body", false, datakey.BlobAccountState, &n.AccountState},
	}
}

// resealBlobs seals every blob of a column under the current key: sealed
// ones under an older key are opened and sealed again, clear ones (written
// before a key was configured) are sealed. A blob already under the
// current key is left alone, so a second run rewrites nothing.
func (db *DB) resealBlobs(ctx context.Context, b sealedBlob) error {
	s := db.sealer
	current := []byte(datakey.Prefix + s.Ring.Current() + ":")
	order := b.key
	if b.keyType == "text" {
		order += ` COLLATE "C"`
	}
	q := `SELECT ` + b.key + `::text, ` + b.col + ` FROM ` + b.table + ` WHERE $1::text IS NULL OR ` + order + ` > $1::text::` + b.keyType +
		` ORDER BY ` + order + ` LIMIT ` + itoa(storeseal.Batch)
	up := `UPDATE ` + b.table + ` SET ` + b.col + ` = $1 WHERE ` + b.key + ` = $2::text::` + b.keyType
	var after *string
	for {
		rows, err := db.pool.Query(ctx, q, after)
		if err != nil {
			return portrait.Wrap(err, "cannot read "+b.table)
		}
		batch := &pgx.Batch{}
		read := 0
		var k string
		var blob []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &blob}, func() error {
			read++
			key := k
			after = &key
			if bytes.HasPrefix(blob, current) {
				return nil
			}
			plain, err := s.OpenBlob(blob, b.label)
			if err != nil {
				return err
			}
			var v any = s.SealBlob(plain, b.label)
			if b.text {
				v = string(v.([]byte))
			}
			batch.Queue(up, v, key)
			return nil
		})
		if err != nil {
			return portrait.Wrap(err, "cannot read "+b.table)
		}
		if batch.Len() > 0 {
			if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, batch).Close() }); err != nil {
				return portrait.Wrap(err, "cannot reseal "+b.table)
			}
			*b.count += batch.Len()
		}
		if read < storeseal.Batch {
			return nil
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
