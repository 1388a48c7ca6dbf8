package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"sort"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/profile"
)

var _ profile.EraseStore = (*DB)(nil)

// EraseProfile removes a profile and everything derived from it from both
// files (see profile.EraseStore). The processor calls it with its lock held
// and its commits drained, so nothing writes the state meanwhile.
//
// The log is changed first: should the process die between the two files,
// the state's checkpoint names an event that is now a tombstone with
// another message id, so the next Open sets the state aside and rebuilds it
// from the log, which no longer has the person.
//
// Both transactions run with secure_delete, which zeroes what they free
// instead of leaving it in free pages, and the write-ahead logs are then
// checkpointed and truncated, so that the person's bytes are gone from the
// files, not merely unreachable.
func (db *DB) EraseProfile(ctx context.Context, req profile.Erasure) (*portrait.ErasureReceipt, error) {
	pid, err := db.resolve(ctx, req.ProfileID)
	if err != nil {
		return nil, err
	}
	pr, err := db.Profile(ctx, pid)
	if err != nil {
		return nil, err
	}
	pids := map[string]bool{pid: true}
	for _, id := range pr.MergedFrom {
		pids[id] = true
	}
	old, err := queryStrings(ctx, db.stateR, `SELECT old_id FROM aliases WHERE new_id = ?`, pid)
	if err != nil {
		return nil, err
	}
	for _, id := range old {
		pids[id] = true
	}
	ids := map[portrait.Identifier]bool{}
	for _, id := range pr.Identifiers {
		ids[id] = true
	}
	rows, err := db.stateR.QueryContext(ctx, `SELECT type, value FROM identities WHERE profile_id = ?`, pid)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read identities")
	}
	for rows.Next() {
		var id portrait.Identifier
		if err := rows.Scan(&id.Type, &id.Value); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot read identities")
		}
		if err := db.openIdentifier(&id); err != nil { // sealing
			rows.Close()
			return nil, err
		}
		ids[id] = true
	}
	rows.Close()
	seqs, err := querySeqs(ctx, db.stateR, pid)
	if err != nil {
		return nil, err
	}
	events, err := db.EventsBySeq(ctx, seqs)
	if err != nil {
		return nil, err
	}
	// Values the cleaners refused on its events (an invalid email) are
	// the person's too, and import summaries show such values as examples.
	issues, err := queryStrings(ctx, db.stateR, `SELECT value FROM trait_issues WHERE profile_id = ?`, pid)
	if err != nil {
		return nil, err
	}
	for i, v := range issues {
		if issues[i], err = db.sealer.OpenValue(v); err != nil { // sealing
			return nil, err
		}
	}
	needles := profile.Needles(ids, events, req.IdentifiersOf, issues)

	idList := profile.SortedIdentifiers(ids)
	rc := &portrait.ErasureReceipt{ID: req.ID, ProfileID: pid, At: req.At.UTC(), By: req.By, Reason: req.Reason, Removed: map[string]int{}}
	for k, n := range req.Removed { // erased outside the store (profile.Erasure.Removed)
		rc.Removed[k] = n
	}
	for id := range pids {
		if id != pid {
			rc.MergedIDs = append(rc.MergedIDs, id)
		}
	}
	sort.Strings(rc.MergedIDs)
	pidArgs := make([]any, 0, len(pids))
	for id := range pids {
		pidArgs = append(pidArgs, id)
	}
	// Erased message ids become a hash: the id a client chose may itself
	// carry personal data, and a re-sent event is stopped by suppression.
	renamed := make(map[string]string, len(events))

	err = db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		n := 0
		for _, e := range events {
			tomb := profile.TombstoneID(e.MessageID)
			renamed[e.MessageID] = tomb
			body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
			res, err := tx.ExecContext(ctx, `UPDATE events SET type = ?, source = ?, message_id = ?, ts = 0, received_at = 0, body = ? WHERE seq = ? AND type <> ?`,
				portrait.EventErased, portrait.EventErased, tomb, body, e.Seq, portrait.EventErased)
			if err != nil {
				return portrait.Wrap(err, "cannot erase events")
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		rc.Removed["events"] = n
		if k, err := db.eraseCarried(ctx, tx, req, idList); err != nil {
			return err
		} else if k > 0 {
			rc.Removed["carried_accounts"] = k
		}
		q := 0
		for _, quoted := range needles {
			res, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE instr(CAST(raw AS TEXT), ?) > 0`, string(quoted))
			if err != nil {
				return portrait.Wrap(err, "cannot erase quarantined records")
			}
			k, _ := res.RowsAffected()
			q += int(k)
		}
		// Sealed bodies cannot be searched by SQL: opened one by one.
		k, err := db.eraseSealedBlobs(ctx, tx, "quarantine", "raw", datakey.BlobQuarantine, needles, false)
		if err != nil {
			return err
		}
		q += k
		if _, err := tx.ExecContext(ctx, `DELETE FROM quarantine_keys WHERE quarantine_id NOT IN (SELECT id FROM quarantine)`); err != nil {
			return portrait.Wrap(err, "cannot erase quarantined records")
		}
		rc.Removed["quarantined"] = q
		// An import's summary keeps example values of the rows it
		// refused: the person's are replaced, the summary stays.
		for _, quoted := range needles {
			res, err := tx.ExecContext(ctx, `UPDATE imports SET summary = CAST(replace(CAST(summary AS TEXT), ?, '"[erased]"') AS BLOB) WHERE instr(CAST(summary AS TEXT), ?) > 0`, string(quoted), string(quoted))
			if err != nil {
				return portrait.Wrap(err, "cannot erase import examples")
			}
			k, _ := res.RowsAffected()
			rc.Removed["import_summaries"] += int(k)
		}
		k, err = db.eraseSealedBlobs(ctx, tx, "imports", "summary", datakey.BlobImport, needles, true)
		if err != nil {
			return err
		}
		rc.Removed["import_summaries"] += k
		// Examples of the person's rows whose value is not an identifier
		// (a refused city): found by the row's event.
		if k, err = db.eraseRowExamples(ctx, tx, events); err != nil {
			return err
		}
		if k > 0 {
			rc.Removed["import_examples"] = k
		}
		for _, step := range []struct{ what, query string }{
			{"segment_history", `DELETE FROM segment_events WHERE profile_id = ?`},
			{"linkage_decisions", `DELETE FROM linkage_decisions WHERE id IN (SELECT id FROM linkage_candidates WHERE instr(CAST(doc AS TEXT), ?) > 0)`},
			{"linkage_candidates", `DELETE FROM linkage_candidates WHERE instr(CAST(doc AS TEXT), ?) > 0`},
			{"dead_letters", `DELETE FROM segment_dead_letters WHERE instr(CAST(body AS TEXT), ?) > 0`},
		} {
			for _, id := range pidArgs {
				res, err := tx.ExecContext(ctx, step.query, id)
				if err != nil {
					return portrait.Wrap(err, "cannot erase "+step.what)
				}
				k, _ := res.RowsAffected()
				rc.Removed[step.what] += int(k)
			}
		}
		for _, quoted := range needles {
			res, err := tx.ExecContext(ctx, `DELETE FROM segment_dead_letters WHERE instr(CAST(body AS TEXT), ?) > 0`, string(quoted))
			if err != nil {
				return portrait.Wrap(err, "cannot erase dead letters")
			}
			k, _ := res.RowsAffected()
			rc.Removed["dead_letters"] += int(k)
		}
		k, err = db.eraseSealedBlobs(ctx, tx, "segment_dead_letters", "body", datakey.BlobDeadLetter, needles, false)
		if err != nil {
			return err
		}
		rc.Removed["dead_letters"] += k
		for _, id := range idList {
			sp := storeseal.Suppression(db.sealer, id) // keyed with a data key
			rc.Suppressed = append(rc.Suppressed, sp.Hash)
			if _, err := tx.ExecContext(ctx, `INSERT INTO suppressed (hash, type, erasure_id, at, key_id, sealed) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
				sp.Hash, id.Type, rc.ID, micros(rc.At), sp.KeyID, sp.Sealed); err != nil {
				return portrait.Wrap(err, "cannot suppress identifiers")
			}
		}
		rc.Removed["identifiers"] = len(idList)
		rc.Removed["profiles"] = len(pids)
		rc.Hash = profile.ReceiptHash(rc)
		doc, err := json.Marshal(rc)
		if err != nil {
			return portrait.Wrap(err, "cannot encode the receipt")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO erasures (id, profile_id, at, receipt) VALUES (?, ?, ?, ?)`, rc.ID, pid, micros(rc.At), doc); err != nil {
			return portrait.Wrap(err, "cannot keep the receipt")
		}
		// The audit record commits with the receipt (profile.Erasure.Audit).
		if req.Audit != nil {
			if err := db.appendAudit(ctx, tx, []portrait.AuditRecord{req.Audit(rc)}); err != nil {
				return err
			}
		}
		_, err = wipeFreePages(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The in-memory tail may hold the erased events.
	erased := make(map[int64]bool, len(events))
	for _, e := range events {
		erased[e.Seq] = true
	}
	db.tail.drop(erased)

	in := "(" + placeholders(len(pidArgs)) + ")"
	err = db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM profiles WHERE id IN ` + in,
			`DELETE FROM identities WHERE profile_id IN ` + in,
			`DELETE FROM refused WHERE profile_id IN ` + in,
			`DELETE FROM profile_events WHERE profile_id IN ` + in,
			`DELETE FROM aliases WHERE new_id IN ` + in,
			`DELETE FROM aliases WHERE old_id IN ` + in,
			`DELETE FROM merges WHERE into_id IN ` + in,
			`DELETE FROM merges WHERE from_id IN ` + in,
			`DELETE FROM trait_issues WHERE profile_id IN ` + in,
		} {
			if _, err := tx.ExecContext(ctx, q, pidArgs...); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
		}
		for _, id := range idList {
			// A merge entry of another profile may name the identifier
			// (a refused merge through it).
			forms, args := db.identifierForms(id) // sealing: every stored form
			if _, err := tx.ExecContext(ctx, `DELETE FROM identities WHERE type = ? AND value IN `+forms, args...); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
			if _, err := tx.ExecContext(ctx, `UPDATE merges SET id_value = '' WHERE id_type = ? AND id_value IN `+forms, args...); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
		}
		for from, to := range renamed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM retracted WHERE message_id = ?`, from); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
			if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET message_id = ? WHERE message_id = ?`, to, from); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM trait_issues WHERE message_id = ?`, from); err != nil {
				return portrait.Wrap(err, "cannot erase the derived state")
			}
		}
		_, err := wipeFreePages(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	db.truncateWALs(ctx)
	return rc, nil
}

// eraseRowExamples replaces the values of import examples that name one of
// events by its message id (profile.EraseRowExamples), in every summary,
// sealed or not; it returns the examples erased. The imports table holds a
// row per import, so it is read whole.
func (db *DB) eraseRowExamples(ctx context.Context, tx *sql.Tx, events []*portrait.Event) (int, error) {
	ids := make(map[string]bool, len(events))
	for _, e := range events {
		ids[e.MessageID] = true
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid, summary FROM imports`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	type upd struct {
		rowid int64
		doc   []byte
	}
	var ups []upd
	total := 0
	for rows.Next() {
		var rowid int64
		var stored []byte
		if err := rows.Scan(&rowid, &stored); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot erase import examples")
		}
		out, n, err := profile.EraseStoredRowExamples(db.sealer, stored, ids)
		if err != nil {
			rows.Close()
			return 0, err
		}
		if n > 0 {
			ups = append(ups, upd{rowid, out})
			total += n
		}
	}
	if err := rows.Close(); err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	for _, u := range ups {
		if _, err := tx.ExecContext(ctx, `UPDATE imports SET summary = ? WHERE rowid = ?`, u.doc, u.rowid); err != nil {
			return 0, portrait.Wrap(err, "cannot erase import examples")
		}
	}
	return total, nil
}

// secureDeleteMode is every connection's secure_delete. FAST zeroes what
// a write frees within the pages it writes anyway (a profile document
// replaced by its next version, the cells a page split moves away), at no
// extra I/O; pages it frees whole (overflow pages of a long document) keep
// their bytes on the free list, which an erasure overwrites
// (wipeFreePages). With it off, every earlier version of an erased
// person's document stayed in the files until a VACUUM
// (TestEraseLeavesNoEarlierVersions).
const secureDeleteMode = "FAST"

// WipeFreePages overwrites the free pages of both files with zeros
// (wipeFreePages): after an erasure, what a rewritten checkpoint of a
// model derived from the erased events (the accounts) freed.
func (db *DB) WipeFreePages(ctx context.Context) error {
	for _, d := range []*sql.DB{db.logW, db.stateW} {
		if err := db.secureTx(ctx, d, func(tx *sql.Tx) error {
			_, err := wipeFreePages(ctx, tx)
			return err
		}); err != nil {
			return err
		}
	}
	db.truncateWALs(ctx)
	return nil
}

// wipeFreePages overwrites every page on the file's free list with zeros,
// within tx (which must run with secure_delete on): a table of zero blobs
// takes the free pages (SQLite reuses them before it grows the file) and
// is dropped again, its pages zeroed as they are freed. The free list
// holds what earlier writes freed whole without zeroing it; the cost is
// one write per free page, not per page of the file as a VACUUM is.
func wipeFreePages(ctx context.Context, tx *sql.Tx) (int, error) {
	var free, size int
	if err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return 0, portrait.Wrap(err, "cannot count free pages")
	}
	if free == 0 {
		return 0, nil
	}
	if err := tx.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		return 0, portrait.Wrap(err, "cannot read the page size")
	}
	// Rows of 256 overflow pages each (an overflow page holds size-4
	// bytes), so no blob larger than about a megabyte is built.
	const perRow = 256
	rows := (free + perRow - 1) / perRow
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DROP TABLE IF EXISTS portrait_wipe`, nil},
		{`CREATE TABLE portrait_wipe (b BLOB)`, nil},
		{`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO portrait_wipe SELECT zeroblob(?) FROM n`, []any{rows, perRow * (size - 4)}},
		{`DROP TABLE portrait_wipe`, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return 0, portrait.Wrap(err, "cannot wipe free pages")
		}
	}
	return free, nil
}

// secureTx runs fn in a transaction on d's one writing connection with
// secure_delete on: freed cells and pages are overwritten with zeros.
func (db *DB) secureTx(ctx context.Context, d *sql.DB, fn func(*sql.Tx) error) error {
	conn, err := d.Conn(ctx)
	if err != nil {
		return portrait.Wrap(err, "cannot open a connection")
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return portrait.Wrap(err, "cannot turn on secure_delete")
	}
	// Off again for the connection's other users (the hot paths): zeroing
	// every page freed by ordinary updates costs writes.
	defer conn.ExecContext(context.Background(), `PRAGMA secure_delete = `+secureDeleteMode)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot begin")
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot commit")
	}
	return nil
}

// truncateWALs copies both write-ahead logs into their databases and cuts
// them to zero length, so that no earlier page image of erased rows stays in
// them. A reader in the middle of a long read can hold it back: then the WAL
// is overwritten from its start by the next writes.
func (db *DB) truncateWALs(ctx context.Context) {
	for _, d := range []*sql.DB{db.logW, db.stateW} {
		d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
}

// Compact checkpoints and truncates both write-ahead logs and rewrites both
// files (VACUUM), leaving no free page behind. It takes both write locks
// for as long as the rewrite lasts: an operator's step, not a hot path.
func (db *DB) Compact(ctx context.Context) error {
	db.writer.wait(ctx)
	for _, d := range []*sql.DB{db.logW, db.stateW} {
		if _, err := d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return portrait.Wrap(err, "cannot checkpoint")
		}
		if _, err := d.ExecContext(ctx, `VACUUM`); err != nil {
			return portrait.Wrap(err, "cannot vacuum")
		}
		if _, err := d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return portrait.Wrap(err, "cannot checkpoint")
		}
	}
	return nil
}

// eraseCarried rewrites the accounts records retention carried forward
// without the person (profile.Erasure.Carried), in the erasure's log
// transaction: the expired events that made them are tombstones, so the
// records are the only place the log still holds the person's part in
// the accounts, and a rebuild installs them. Every events pass's record
// still in the log is rewritten (a later pass supersedes it, but a
// shorter cut-off may leave it unexpired), found by its message id.
func (db *DB) eraseCarried(ctx context.Context, tx *sql.Tx, req profile.Erasure, ids []portrait.Identifier) (int, error) {
	if req.Carried == nil {
		return 0, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT before FROM retention_runs WHERE kind = 'events'`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read retention runs")
	}
	var befores []time.Time
	for rows.Next() {
		var us int64
		if err := rows.Scan(&us); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot read retention runs")
		}
		befores = append(befores, fromMicros(us))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, portrait.Wrap(err, "cannot read retention runs")
	}
	n := 0
	for _, id := range profile.CarriedAccountIDs(befores) {
		rows, err := tx.QueryContext(ctx, `SELECT seq, body FROM events WHERE message_id = ?`, id)
		if err != nil {
			return 0, portrait.Wrap(err, "cannot read the event log")
		}
		evs, err := db.scanEvents(rows, 1)
		rows.Close()
		if err != nil {
			return 0, err
		}
		for _, e := range evs {
			changed, err := profile.ForgetCarried(e, ids, req.Carried)
			if err != nil {
				return 0, err
			}
			if !changed {
				continue
			}
			seq := e.Seq
			e.Seq = 0
			b, err := json.Marshal(e)
			if err != nil {
				return 0, portrait.Wrap(err, "cannot encode carried-forward accounts")
			}
			if b, err = db.sealer.SealEvent(b); err != nil { // sealing
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE events SET body = ? WHERE seq = ?`, b, seq); err != nil {
				return 0, portrait.Wrap(err, "cannot rewrite carried-forward accounts")
			}
			n++
		}
	}
	return n, nil
}

// Erasures lists the receipts, newest first.
func (db *DB) Erasures(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.logR.QueryContext(ctx, `SELECT receipt FROM erasures ORDER BY at DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read erasures")
	}
	defer rows.Close()
	var out []*portrait.ErasureReceipt
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, portrait.Wrap(err, "cannot read erasures")
		}
		rc := new(portrait.ErasureReceipt)
		if err := json.Unmarshal(b, rc); err != nil {
			return nil, portrait.Wrap(err, "corrupt erasure receipt")
		}
		out = append(out, rc)
	}
	return out, rows.Err()
}

// Suppressions lists the suppressed identifiers (by hash).
func (db *DB) Suppressions(ctx context.Context) ([]*portrait.Suppression, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT hash, type, erasure_id, at, dropped, key_id FROM suppressed ORDER BY at, hash`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read suppressions")
	}
	defer rows.Close()
	var out []*portrait.Suppression
	for rows.Next() {
		s := new(portrait.Suppression)
		var at int64
		if err := rows.Scan(&s.Hash, &s.Type, &s.ErasureID, &at, &s.Dropped, &s.KeyID); err != nil {
			return nil, portrait.Wrap(err, "cannot read suppressions")
		}
		s.At = fromMicros(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// RekeySuppressions brings every suppression under the current data key
// (storeseal.RekeySuppressions): unkeyed rows written before a key was
// configured are upgraded in place, rows under an older key re-keyed from
// their sealed inner hash. It returns how many rows it rewrote; a second
// run rewrites none. Nothing without a data key. The list is bounded by
// the erased identifiers, so it is read whole and rewritten in one
// transaction with secure_delete (the unkeyed hashes are what it removes).
func (db *DB) RekeySuppressions(ctx context.Context) (int, error) {
	if !db.sealer.HasRing() {
		return 0, nil
	}
	rows, err := db.logW.QueryContext(ctx, `SELECT hash, key_id, sealed FROM suppressed`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read suppressions")
	}
	var list []datakey.SuppressedRow
	for rows.Next() {
		var r datakey.SuppressedRow
		if err := rows.Scan(&r.Hash, &r.KeyID, &r.Sealed); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot read suppressions")
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, portrait.Wrap(err, "cannot read suppressions")
	}
	ch, err := storeseal.RekeySuppressions(db.sealer, list)
	if err != nil || len(ch) == 0 {
		return 0, err
	}
	n := 0
	err = db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
		for _, c := range ch {
			// Conditional on the row as read (another process may have
			// re-keyed it); the same identifier kept twice merges its
			// counters.
			res, err := tx.ExecContext(ctx, `INSERT INTO suppressed (hash, type, erasure_id, at, dropped, key_id, sealed)
				SELECT ?, type, erasure_id, at, dropped, ?, ? FROM suppressed WHERE hash = ? AND key_id = ?
				ON CONFLICT (hash) DO UPDATE SET dropped = suppressed.dropped + excluded.dropped`,
				c.New.Hash, c.New.KeyID, c.New.Sealed, c.Old.Hash, c.Old.KeyID)
			if err != nil {
				return portrait.Wrap(err, "cannot re-key suppressions")
			}
			if k, _ := res.RowsAffected(); k == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM suppressed WHERE hash = ? AND key_id = ?`, c.Old.Hash, c.Old.KeyID); err != nil {
				return portrait.Wrap(err, "cannot re-key suppressions")
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Unsuppress lifts a suppression; false when there was none.
func (db *DB) Unsuppress(ctx context.Context, hash string) (bool, error) {
	res, err := db.logW.ExecContext(ctx, `DELETE FROM suppressed WHERE hash = ?`, hash)
	if err != nil {
		return false, portrait.Wrap(err, "cannot unsuppress")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// CountSuppressed adds to the dropped counters of suppressions.
func (db *DB) CountSuppressed(ctx context.Context, dropped map[string]int64) error {
	for h, n := range dropped {
		if _, err := db.logW.ExecContext(ctx, `UPDATE suppressed SET dropped = dropped + ? WHERE hash = ?`, n, h); err != nil {
			return portrait.Wrap(err, "cannot count suppressed events")
		}
	}
	return nil
}

func queryStrings(ctx context.Context, d *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the store")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, portrait.Wrap(err, "cannot read the store")
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// eraseSealedBlobs does for sealed blobs what the instr() statements of
// Erase do for clear ones, which SQL cannot search: each sealed blob of
// table.col is opened, and one that holds a needle (quoted as a JSON
// string, profile.Needles) is
// deleted, or, with replace, has the needles replaced by "[erased]" and is
// sealed again. The tables are bounded (the quarantine's cap, one summary
// per import, dead letters per webhook), and erasures are rare.
func (db *DB) eraseSealedBlobs(ctx context.Context, tx *sql.Tx, table, col, label string, quoted [][]byte, replace bool) (int, error) {
	if !db.sealer.HasRing() {
		return 0, nil // nothing was sealed without a ring, or it cannot be opened (and Erase's reads failed already)
	}
	rows, err := tx.QueryContext(ctx, `SELECT rowid, `+col+` FROM `+table+` WHERE hex(substr(`+col+`, 1, 8)) = hex('`+datakey.Prefix+`')`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase from "+table)
	}
	type hit struct {
		rowid int64
		doc   []byte
	}
	var hits []hit
	for rows.Next() {
		var h hit
		var stored []byte
		if err := rows.Scan(&h.rowid, &stored); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot erase from "+table)
		}
		doc, err := db.sealer.OpenBlob(stored, label)
		if err != nil {
			rows.Close()
			return 0, err
		}
		found := false
		for _, q := range quoted {
			if bytes.Contains(doc, q) {
				found = true
				if !replace {
					break
				}
				doc = bytes.ReplaceAll(doc, q, []byte(`"[erased]"`))
			}
		}
		if found {
			h.doc = doc
			hits = append(hits, h)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, portrait.Wrap(err, "cannot erase from "+table)
	}
	for _, h := range hits {
		if replace {
			_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET `+col+` = ? WHERE rowid = ?`, db.sealer.SealBlob(h.doc, label), h.rowid)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE rowid = ?`, h.rowid)
		}
		if err != nil {
			return 0, portrait.Wrap(err, "cannot erase from "+table)
		}
	}
	return len(hits), nil
}
