package postgres

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/profile"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

var _ profile.EraseStore = (*DB)(nil)

// erasedTables are the tables an erasure deletes from or rewrites, which
// it vacuums afterwards.
var erasedTables = []string{
	"events", "quarantine", "quarantine_keys", "imports", "segment_events", "linkage_decisions",
	"linkage_candidates", "segment_dead_letters", "profiles", "identities", "refused",
	"profile_events", "aliases", "merges", "trait_issues", "retracted", "checkpoints",
}

// EraseProfile removes a profile and everything derived from it (see
// profile.EraseStore and sqlite/erase.go, which it follows table by
// table). Unlike the embedded store, whose log and state are two files,
// everything here is one transaction: the tombstones, the deletions, the
// suppressions and the receipt commit together or not at all.
//
// Afterwards the touched tables are vacuumed, outside the transaction:
// VACUUM makes the erased rows' space reusable and removes their index
// entries; it does not overwrite the bytes at once (docs/erasure.md,
// "PostgreSQL"). A failed VACUUM does not undo the erasure, which has
// committed; autovacuum gets there later.
func (db *DB) EraseProfile(ctx context.Context, req profile.Erasure) (*portrait.ErasureReceipt, error) {
	var rc *portrait.ErasureReceipt
	err := db.adminTx(ctx, "cannot erase the profile", func(tx pgx.Tx) error {
		var err error
		rc, err = db.eraseIn(ctx, tx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	db.vacuumErased(ctx)
	return rc, nil
}

// eraseCarried rewrites the accounts records retention carried forward
// without the person (profile.Erasure.Carried), in the erasure's
// transaction, as the embedded store does (sqlite eraseCarried): every
// events pass's record the log still holds, found by its message id.
func (db *DB) eraseCarried(ctx context.Context, tx pgx.Tx, req profile.Erasure, ids []portrait.Identifier) (int, error) {
	if req.Carried == nil {
		return 0, nil
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT before FROM retention_runs WHERE kind = 'events'`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read retention runs")
	}
	var befores []time.Time
	var us int64
	if _, err := pgx.ForEachRow(rows, []any{&us}, func() error {
		befores = append(befores, fromMicros(us))
		return nil
	}); err != nil {
		return 0, portrait.Wrap(err, "cannot read retention runs")
	}
	n := 0
	for _, id := range profile.CarriedAccountIDs(befores) {
		rows, err := tx.Query(ctx, `SELECT seq, body FROM events WHERE message_id = $1`, id)
		if err != nil {
			return 0, portrait.Wrap(err, "cannot read the event log")
		}
		evs, err := db.scanEvents(rows)
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
			if _, err := tx.Exec(ctx, `UPDATE events SET body = $1 WHERE seq = $2`, b, seq); err != nil {
				return 0, portrait.Wrap(err, "cannot rewrite carried-forward accounts")
			}
			n++
		}
	}
	return n, nil
}

// vacuumErased vacuums the tables an erasure touches. A session holding
// the erased rows' versions (horizon.go) is logged, not waited for: the
// erasure is a request someone waits on, and has committed.
func (db *DB) vacuumErased(ctx context.Context) error {
	mark, err := db.horizonMark(ctx)
	if err != nil {
		return err
	}
	_, err = db.vacuumHeld(ctx, "an erasure", "VACUUM "+strings.Join(erasedTables, ", "), mark, 0)
	return err
}

func (db *DB) eraseIn(ctx context.Context, tx pgx.Tx, req profile.Erasure) (*portrait.ErasureReceipt, error) {
	pid, err := eraseResolve(ctx, tx, req.ProfileID)
	if err != nil {
		return nil, err
	}
	// Under partitioned application other nodes apply events meanwhile:
	// the profile's identity rows and then its row are locked as a batch
	// locks them (identities in key order first), so the erasure waits
	// for a batch on this person and the next batch finds them gone.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM identities WHERE profile_id = $1 ORDER BY type, value FOR UPDATE`, pid); err != nil {
		return nil, portrait.Wrap(err, "cannot lock identities")
	}
	var doc []byte
	err = tx.QueryRow(ctx, `SELECT doc FROM profiles WHERE id = $1 FOR UPDATE`, pid).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no profile %q", req.ProfileID)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile")
	}
	pr, err := profiledoc.Decode(doc)
	if err != nil {
		return nil, portrait.Wrap(err, "corrupt profile")
	}
	if err := db.sealer.OpenProfile(pr); err != nil { // sealing
		return nil, err
	}
	pids := map[string]bool{pid: true}
	for _, id := range pr.MergedFrom {
		pids[id] = true
	}
	old, err := eraseStrings(ctx, tx, `SELECT old_id FROM aliases WHERE new_id = $1`, pid)
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
	rows, err := tx.Query(ctx, `SELECT type, value FROM identities WHERE profile_id = $1`, pid)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read identities")
	}
	events, err := db.eraseEvents(ctx, tx, pid)
	if err != nil {
		return nil, err
	}
	// Values the cleaners refused on its events are the person's too, and
	// import summaries show such values as examples.
	issues, err := eraseStrings(ctx, tx, `SELECT value FROM trait_issues WHERE profile_id = $1`, pid)
	if err != nil {
		return nil, err
	}
	for i, v := range issues {
		if issues[i], err = db.sealer.OpenValue(v); err != nil { // sealing
			return nil, err
		}
	}
	quoted := profile.Needles(ids, events, req.IdentifiersOf, issues)

	idList := profile.SortedIdentifiers(ids)
	rc := &portrait.ErasureReceipt{ID: req.ID, ProfileID: pid, At: req.At.UTC(), By: req.By, Reason: req.Reason, Removed: map[string]int{}}
	for k, n := range req.Removed { // erased outside the store (profile.Erasure.Removed)
		rc.Removed[k] = n
	}
	pidList := make([]string, 0, len(pids))
	for id := range pids {
		pidList = append(pidList, id)
		if id != pid {
			rc.MergedIDs = append(rc.MergedIDs, id)
		}
	}
	sort.Strings(pidList)
	sort.Strings(rc.MergedIDs)

	// The log: each event becomes a tombstone, its message id a hash (the
	// id a client chose may itself carry personal data).
	renamed := make(map[string]string, len(events))
	b := &pgx.Batch{}
	for _, e := range events {
		tomb := profile.TombstoneID(e.MessageID)
		renamed[e.MessageID] = tomb
		body, _ := json.Marshal(map[string]any{"messageId": tomb, "type": portrait.EventErased, "source": portrait.EventErased, "timestamp": time.Unix(0, 0).UTC(), "receivedAt": time.Unix(0, 0).UTC()})
		b.Queue(`UPDATE events SET type = $1, source = $1, message_id = $2, ts = 0, received_at = 0, body = $3 WHERE seq = $4 AND type <> $1`,
			portrait.EventErased, tomb, body, e.Seq)
	}
	n, err := sendCounting(ctx, tx, b, "cannot erase events")
	if err != nil {
		return nil, err
	}
	rc.Removed["events"] = int(n)
	if k, err := db.eraseCarried(ctx, tx, req, idList); err != nil {
		return nil, err
	} else if k > 0 {
		rc.Removed["carried_accounts"] = k
	}

	b = &pgx.Batch{}
	for _, q := range quoted {
		b.Queue(`DELETE FROM quarantine WHERE position($1::bytea IN raw) > 0`, q)
	}
	if n, err = sendCounting(ctx, tx, b, "cannot erase quarantined records"); err != nil {
		return nil, err
	}
	rc.Removed["quarantined"] = int(n)
	// Sealed bodies cannot be searched by SQL: opened one by one.
	k, err := db.eraseSealedBlobs(ctx, tx, "quarantine", "id", "int8", "raw", datakey.BlobQuarantine, quoted, false)
	if err != nil {
		return nil, err
	}
	rc.Removed["quarantined"] += k
	if _, err := tx.Exec(ctx, orphanQuarantineKeys); err != nil {
		return nil, portrait.Wrap(err, "cannot erase quarantined records")
	}

	// An import's summary keeps example values of the rows it refused: the
	// person's are replaced, the summary stays. Replaced here rather than
	// in SQL, so that the bytes need not be valid in the database's
	// encoding.
	n, err = eraseImportExamples(ctx, tx, quoted)
	if err != nil {
		return nil, err
	}
	rc.Removed["import_summaries"] = int(n)
	if k, err = db.eraseSealedBlobs(ctx, tx, "imports", "id", "text", "summary", datakey.BlobImport, quoted, true); err != nil {
		return nil, err
	}
	rc.Removed["import_summaries"] += k
	// Examples of the person's rows whose value is not an identifier (a
	// refused city): found by the row's event.
	if k, err = db.eraseRowExamples(ctx, tx, events); err != nil {
		return nil, err
	}
	if k > 0 {
		rc.Removed["import_examples"] = k
	}

	for _, step := range []struct{ what, query string }{
		{"segment_history", `DELETE FROM segment_events WHERE profile_id = $1`},
		{"linkage_decisions", `DELETE FROM linkage_decisions WHERE id IN (SELECT id FROM linkage_candidates WHERE position(convert_to($1, 'UTF8') IN doc) > 0)`},
		{"linkage_candidates", `DELETE FROM linkage_candidates WHERE position(convert_to($1, 'UTF8') IN doc) > 0`},
		{"dead_letters", `DELETE FROM segment_dead_letters WHERE position(convert_to($1, 'UTF8') IN body) > 0`},
	} {
		b = &pgx.Batch{}
		for _, id := range pidList {
			b.Queue(step.query, id)
		}
		if n, err = sendCounting(ctx, tx, b, "cannot erase "+step.what); err != nil {
			return nil, err
		}
		rc.Removed[step.what] += int(n)
	}
	b = &pgx.Batch{}
	for _, q := range quoted {
		b.Queue(`DELETE FROM segment_dead_letters WHERE position($1::bytea IN body) > 0`, q)
	}
	if n, err = sendCounting(ctx, tx, b, "cannot erase dead letters"); err != nil {
		return nil, err
	}
	rc.Removed["dead_letters"] += int(n)
	// A sealed dead letter is found by the person's values or profile ids.
	letterNeedles := slices.Clone(quoted)
	for _, id := range pidList {
		q, _ := json.Marshal(id)
		letterNeedles = append(letterNeedles, q)
	}
	if k, err = db.eraseSealedBlobs(ctx, tx, "segment_dead_letters", "id", "int8", "body", datakey.BlobDeadLetter, letterNeedles, false); err != nil {
		return nil, err
	}
	rc.Removed["dead_letters"] += k

	b = &pgx.Batch{}
	for _, id := range idList {
		sp := storeseal.Suppression(db.sealer, id) // keyed with a data key
		rc.Suppressed = append(rc.Suppressed, sp.Hash)
		b.Queue(`INSERT INTO suppressed (hash, type, erasure_id, at, key_id, sealed) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (hash) DO NOTHING`,
			sp.Hash, id.Type, rc.ID, micros(rc.At), sp.KeyID, sp.Sealed)
	}
	if _, err := sendCounting(ctx, tx, b, "cannot suppress identifiers"); err != nil {
		return nil, err
	}
	rc.Removed["identifiers"] = len(idList)
	rc.Removed["profiles"] = len(pids)
	rc.Hash = profile.ReceiptHash(rc)
	receipt, err := json.Marshal(rc)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot encode the receipt")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO erasures (id, profile_id, at, receipt) VALUES ($1, $2, $3, $4)`, rc.ID, pid, micros(rc.At), receipt); err != nil {
		return nil, portrait.Wrap(err, "cannot keep the receipt")
	}

	// The derived state, in the same transaction.
	b = &pgx.Batch{}
	for _, q := range []string{
		`DELETE FROM profiles WHERE id = ANY($1)`,
		`DELETE FROM identities WHERE profile_id = ANY($1)`,
		`DELETE FROM refused WHERE profile_id = ANY($1)`,
		`DELETE FROM profile_events WHERE profile_id = ANY($1)`,
		`DELETE FROM aliases WHERE new_id = ANY($1)`,
		`DELETE FROM aliases WHERE old_id = ANY($1)`,
		`DELETE FROM merges WHERE into_id = ANY($1)`,
		`DELETE FROM merges WHERE from_id = ANY($1)`,
		`DELETE FROM trait_issues WHERE profile_id = ANY($1)`,
	} {
		b.Queue(q, pidList)
	}
	for _, id := range idList {
		// A merge entry of another profile may name the identifier (a
		// refused merge through it).
		// sealing: every stored form of it.
		forms := db.identifierForms(id)
		b.Queue(`DELETE FROM identities WHERE type = $1 AND value = ANY($2)`, id.Type, forms)
		b.Queue(`UPDATE merges SET id_value = '' WHERE id_type = $1 AND id_value = ANY($2)`, id.Type, forms)
	}
	for _, from := range slices.Sorted(maps.Keys(renamed)) {
		to := renamed[from]
		b.Queue(`DELETE FROM retracted WHERE message_id = $1`, from)
		b.Queue(`UPDATE checkpoints SET message_id = $1 WHERE message_id = $2`, to, from)
		b.Queue(`DELETE FROM trait_issues WHERE message_id = $1`, from)
	}
	if _, err := sendCounting(ctx, tx, b, "cannot erase the derived state"); err != nil {
		return nil, err
	}
	// API nodes drop the erased profiles from their indexes: the change
	// feed hears of them in the erasure's own transaction.
	if err := db.recordChanges(ctx, tx, nil, pidList); err != nil {
		return nil, err
	}
	// The audit record commits with the receipt (profile.Erasure.Audit);
	// last, as the chain's lock is held to the commit.
	if req.Audit != nil {
		if err := db.appendAudit(ctx, tx, []portrait.AuditRecord{req.Audit(rc)}); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// sendCounting runs a batch of statements in order and sums the rows they
// affected.
func sendCounting(ctx context.Context, tx pgx.Tx, b *pgx.Batch, msg string) (int64, error) {
	if b.Len() == 0 {
		return 0, nil
	}
	res := tx.SendBatch(ctx, b)
	var n int64
	for i := 0; i < b.Len(); i++ {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return 0, portrait.Wrap(err, msg)
		}
		n += tag.RowsAffected()
	}
	if err := res.Close(); err != nil {
		return 0, portrait.Wrap(err, msg)
	}
	return n, nil
}

// eraseResolve follows merges from id to the profile that holds it now.
func eraseResolve(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	for range 32 {
		var next string
		err := tx.QueryRow(ctx, `SELECT new_id FROM aliases WHERE old_id = $1`, id).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			return id, nil
		}
		if err != nil {
			return "", portrait.Wrap(err, "cannot read aliases")
		}
		id = next
	}
	return id, nil
}

// eraseEvents reads the profile's logged events (tombstones aside), in
// the order of their sequence numbers.
func (db *DB) eraseEvents(ctx context.Context, tx pgx.Tx, pid string) ([]*portrait.Event, error) {
	rows, err := tx.Query(ctx, `SELECT e.seq, e.body FROM events e
		WHERE e.seq IN (SELECT seq FROM profile_events WHERE profile_id = $1) AND e.type <> $2 ORDER BY e.seq`, pid, portrait.EventErased)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read events")
	}
	defer rows.Close()
	var out []*portrait.Event
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, portrait.Wrap(err, "cannot read events")
		}
		e := new(portrait.Event)
		if err := db.decodeEvent(body, e); err != nil { // sealing
			return nil, err
		}
		e.Seq = seq
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read events")
	}
	return out, nil
}

// eraseImportExamples replaces each quoted needle in the import summaries
// with "[erased]", counting (as the embedded store does) one per needle
// and summary that held it.
// eraseRowExamples replaces the values of import examples that name one of
// events by its message id (profile.EraseRowExamples), in every summary,
// sealed or not; it returns the examples erased. The imports table holds a
// row per import, so it is read whole.
func (db *DB) eraseRowExamples(ctx context.Context, tx pgx.Tx, events []*portrait.Event) (int, error) {
	ids := make(map[string]bool, len(events))
	for _, e := range events {
		ids[e.MessageID] = true
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, summary FROM imports`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	type upd struct {
		id  string
		doc []byte
	}
	var ups []upd
	total := 0
	for rows.Next() {
		var id string
		var stored []byte
		if err := rows.Scan(&id, &stored); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot erase import examples")
		}
		out, n, err := profile.EraseStoredRowExamples(db.sealer, stored, ids)
		if err != nil {
			rows.Close()
			return 0, err
		}
		if n > 0 {
			ups = append(ups, upd{id, out})
			total += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	for _, u := range ups {
		if _, err := tx.Exec(ctx, `UPDATE imports SET summary = $1 WHERE id = $2`, u.doc, u.id); err != nil {
			return 0, portrait.Wrap(err, "cannot erase import examples")
		}
	}
	return total, nil
}

func eraseImportExamples(ctx context.Context, tx pgx.Tx, quoted [][]byte) (int64, error) {
	if len(quoted) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, summary FROM imports i
		WHERE EXISTS (SELECT 1 FROM unnest($1::bytea[]) n WHERE position(n IN i.summary) > 0)`, quoted)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	type imp struct {
		id      string
		summary []byte
	}
	var hit []imp
	for rows.Next() {
		var x imp
		if err := rows.Scan(&x.id, &x.summary); err != nil {
			rows.Close()
			return 0, portrait.Wrap(err, "cannot erase import examples")
		}
		hit = append(hit, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, portrait.Wrap(err, "cannot erase import examples")
	}
	var n int64
	b := &pgx.Batch{}
	for _, x := range hit {
		for _, q := range quoted {
			if bytes.Contains(x.summary, q) {
				x.summary = bytes.ReplaceAll(x.summary, q, []byte(`"[erased]"`))
				n++
			}
		}
		b.Queue(`UPDATE imports SET summary = $1 WHERE id = $2`, x.summary, x.id)
	}
	if _, err := sendCounting(ctx, tx, b, "cannot erase import examples"); err != nil {
		return 0, err
	}
	return n, nil
}

// eraseSealedBlobs does for sealed blobs what the position() statements
// of eraseIn do for clear ones, which SQL cannot search (the embedded
// store's eraseSealedBlobs): each sealed blob of table.col is opened, and
// one that holds a needle (quoted as a JSON string, profile.Needles) is
// deleted, or, with replace, has the needles replaced by "[erased]" and is
// sealed again. The tables are bounded (the quarantine's cap, one summary
// per import, dead letters per webhook), and erasures are rare.
//
// key is the table's key column, read as text and compared as keyType.
func (db *DB) eraseSealedBlobs(ctx context.Context, tx pgx.Tx, table, key, keyType, col, label string, quoted [][]byte, replace bool) (int, error) {
	if !db.sealer.HasRing() || len(quoted) == 0 {
		return 0, nil // nothing was sealed without a ring, or it cannot be opened (and eraseIn's reads failed already)
	}
	rows, err := tx.Query(ctx, `SELECT `+key+`::text, `+col+`::bytea FROM `+table+` WHERE substring(`+col+`::bytea FROM 1 FOR $1) = $2::bytea`,
		len(datakey.Prefix), []byte(datakey.Prefix))
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase from "+table)
	}
	type hit struct {
		key string
		doc []byte
	}
	var hits []hit
	var k string
	var stored []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &stored}, func() error {
		doc, err := db.sealer.OpenBlob(stored, label)
		if err != nil {
			return err
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
			hits = append(hits, hit{k, doc})
		}
		return nil
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot erase from "+table)
	}
	b := &pgx.Batch{}
	for _, h := range hits {
		if replace {
			b.Queue(`UPDATE `+table+` SET `+col+` = $1 WHERE `+key+` = $2::text::`+keyType, db.sealer.SealBlob(h.doc, label), h.key)
		} else {
			b.Queue(`DELETE FROM `+table+` WHERE `+key+` = $1::text::`+keyType, h.key)
		}
	}
	if _, err := sendCounting(ctx, tx, b, "cannot erase from "+table); err != nil {
		return 0, err
	}
	return len(hits), nil
}

// Compact rewrites every table and its indexes (VACUUM FULL) and refreshes
// the planner's statistics. It is the embedded store's Compact: a plain
// VACUUM, which the erasure runs, makes dead rows' space reusable but
// leaves their bytes in the pages until new rows overwrite them; the
// rewrite leaves none behind in the tables' files (TestCompactLeavesNoBytes).
// Each table is locked against reads and writes while it is rewritten: an
// operator's step, not a hot path.
func (db *DB) Compact(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, `VACUUM (FULL, ANALYZE)`); err != nil {
		return portrait.Wrap(err, "cannot vacuum")
	}
	return nil
}

// Erasures lists the receipts, newest first.
func (db *DB) Erasures(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT receipt FROM erasures ORDER BY at DESC, id COLLATE "C" LIMIT $1`, limit)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read erasures")
	}
	return out, nil
}

// Suppressions lists the suppressed identifiers (by hash).
func (db *DB) Suppressions(ctx context.Context) ([]*portrait.Suppression, error) {
	rows, err := db.pool.Query(ctx, `SELECT hash, type, erasure_id, at, dropped, key_id FROM suppressed ORDER BY at, hash COLLATE "C"`)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read suppressions")
	}
	return out, nil
}

// RekeySuppressions brings every suppression under the current data key,
// as the embedded store's does (storeseal.RekeySuppressions): unkeyed rows
// upgraded in place, rows under an older key re-keyed from their sealed
// inner hash; the number rewritten (0 on a second run, and without a data
// key). One transaction; each rewrite is conditional on the row as read, so
// nodes starting together do it once.
func (db *DB) RekeySuppressions(ctx context.Context) (int, error) {
	if !db.sealer.HasRing() {
		return 0, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT hash, key_id, sealed FROM suppressed`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read suppressions")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (datakey.SuppressedRow, error) {
		var x datakey.SuppressedRow
		err := r.Scan(&x.Hash, &x.KeyID, &x.Sealed)
		return x, err
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read suppressions")
	}
	ch, err := storeseal.RekeySuppressions(db.sealer, list)
	if err != nil || len(ch) == 0 {
		return 0, err
	}
	n := 0
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Two nodes re-keying at once would both copy a row before either
		// deleted it, counting its drops twice.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockRekey); err != nil {
			return err
		}
		for _, c := range ch {
			tag, err := tx.Exec(ctx, `INSERT INTO suppressed (hash, type, erasure_id, at, dropped, key_id, sealed)
				SELECT $1, type, erasure_id, at, dropped, $2, $3 FROM suppressed WHERE hash = $4 AND key_id = $5
				ON CONFLICT (hash) DO UPDATE SET dropped = suppressed.dropped + excluded.dropped`,
				c.New.Hash, c.New.KeyID, c.New.Sealed, c.Old.Hash, c.Old.KeyID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if _, err := tx.Exec(ctx, `DELETE FROM suppressed WHERE hash = $1 AND key_id = $2`, c.Old.Hash, c.Old.KeyID); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot re-key suppressions")
	}
	return n, nil
}

// Unsuppress lifts a suppression; false when there was none.
func (db *DB) Unsuppress(ctx context.Context, hash string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM suppressed WHERE hash = $1`, hash)
	if err != nil {
		return false, portrait.Wrap(err, "cannot unsuppress")
	}
	return tag.RowsAffected() > 0, nil
}

// CountSuppressed adds to the dropped counters of suppressions, in one
// round trip.
func (db *DB) CountSuppressed(ctx context.Context, dropped map[string]int64) error {
	if len(dropped) == 0 {
		return nil
	}
	hashes := make([]string, 0, len(dropped))
	counts := make([]int64, 0, len(dropped))
	for h, n := range dropped {
		hashes = append(hashes, h)
		counts = append(counts, n)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE suppressed s SET dropped = s.dropped + d.n
		FROM unnest($1::text[], $2::bigint[]) AS d(hash, n) WHERE s.hash = d.hash`, hashes, counts); err != nil {
		return portrait.Wrap(err, "cannot count suppressed events")
	}
	return nil
}

func eraseStrings(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the store")
	}
	return out, nil
}

// ErasureReceipt returns the receipt with id (ENOTFOUND: no erasure with
// it committed). The receipt commits in the erasure's transaction, so
// finding it means the erasure was done.
func (db *DB) ErasureReceipt(ctx context.Context, id string) (*portrait.ErasureReceipt, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT receipt FROM erasures WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no erasure receipt %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read erasures")
	}
	rc := new(portrait.ErasureReceipt)
	if err := json.Unmarshal(b, rc); err != nil {
		return nil, portrait.Wrap(err, "corrupt erasure receipt")
	}
	return rc, nil
}
