package sqlite

import (
	"context"
	"database/sql"
	"math"
	"strconv"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// The background pass that seals a name's stored values after its level
// was raised to secret: the pass itself is internal/storeseal's (Step,
// InClear); the store gives its rows (RaiseRows, RaiseWrite) and keeps the
// jobs in the log file beside the classifications (reseal_jobs).

var (
	_ storeseal.RaiseStore  = (*DB)(nil)
	_ storeseal.RaiseTables = (*DB)(nil)
)

// ScheduleReseal records a job for the name, from the start.
func (db *DB) ScheduleReseal(ctx context.Context, kind, name string) error {
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO reseal_jobs (kind, name, phase, after_key) VALUES (?, ?, ?, '')
		ON CONFLICT (kind, name) DO UPDATE SET phase = excluded.phase, after_key = ''`, kind, name, storeseal.PhaseEvents); err != nil {
		return portrait.Wrap(err, "cannot schedule the sealing of "+name)
	}
	return nil
}

// ResealJobs lists the jobs not finished.
func (db *DB) ResealJobs(ctx context.Context) ([]storeseal.Job, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT kind, name, phase, after_key FROM reseal_jobs ORDER BY kind, name`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the reseal jobs")
	}
	defer rows.Close()
	var out []storeseal.Job
	for rows.Next() {
		var j storeseal.Job
		if err := rows.Scan(&j.Kind, &j.Name, &j.Phase, &j.After); err != nil {
			return nil, portrait.Wrap(err, "cannot read the reseal jobs")
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ResealStep seals up to a batch of the job's rows in clear, each only if
// it is still as read, and keeps the progress (storeseal.Step).
func (db *DB) ResealStep(ctx context.Context, j storeseal.Job) (storeseal.Job, bool, error) {
	return storeseal.Step(ctx, db, db.sealer, j)
}

// SealsAtRest reports whether a data key is configured.
func (db *DB) SealsAtRest() bool { return db.sealer.HasRing() }

// InClear counts the stored values of a trait (kind "trait") or an
// identifier type ("identifier") in clear (storeseal.InClear).
func (db *DB) InClear(ctx context.Context, kind, name string) (map[string]int, error) {
	return storeseal.InClear(ctx, db, kind, name)
}

// notSealed is the condition of a column in clear.
func notSealed(col string) string {
	return `substr(CAST(` + col + ` AS BLOB), 1, ` + strconv.Itoa(len(datakey.Prefix)) + `) <> CAST('` + datakey.Prefix + `' AS BLOB) AND ` + col + ` <> ''`
}

// raiseTable is where a phase's rows are and how they are read and
// rewritten. sel takes (filter, after, limit) and returns the key and the
// phase's columns; up takes the new columns, then the key (or the name for
// a value-keyed table), then the old columns.
type raiseTable struct {
	log     bool // in the log file (else the state)
	intKey  bool // the key is an integer (seq, rowid)
	text    bool // the columns are TEXT (else documents, bound as bytes)
	sel, up string
}

func raiseTableOf(phase string) (raiseTable, bool) {
	blob := func(table, col string, log bool) raiseTable {
		return raiseTable{log, true, false,
			`SELECT rowid, ` + col + ` FROM ` + table + ` WHERE rowid > ?2 AND ` + notSealed(col) + ` ORDER BY rowid LIMIT ?3`,
			`UPDATE ` + table + ` SET ` + col + ` = ? WHERE rowid = ? AND CAST(` + col + ` AS BLOB) = CAST(? AS BLOB)`}
	}
	switch phase {
	case storeseal.PhaseEvents:
		return raiseTable{true, true, false,
			`SELECT seq, body FROM events WHERE (instr(body, ?1) > 0 OR type = '` + portrait.EventRetained + `') AND seq > ?2 AND type <> '` + portrait.EventErased + `' ORDER BY seq LIMIT ?3`,
			`UPDATE events SET body = ? WHERE seq = ? AND CAST(body AS BLOB) = CAST(? AS BLOB)`}, true
	case storeseal.PhaseProfiles:
		return raiseTable{false, false, false,
			`SELECT id, doc FROM profiles WHERE instr(doc, ?1) > 0 AND id > ?2 ORDER BY id LIMIT ?3`,
			`UPDATE profiles SET doc = ? WHERE id = ? AND CAST(doc AS BLOB) = CAST(? AS BLOB)`}, true
	case storeseal.PhaseCandidates:
		return raiseTable{true, false, false,
			`SELECT id, doc FROM linkage_candidates WHERE instr(doc, ?1) > 0 AND id > ?2 ORDER BY id LIMIT ?3`,
			`UPDATE linkage_candidates SET doc = ? WHERE id = ? AND CAST(doc AS BLOB) = CAST(? AS BLOB)`}, true
	case storeseal.PhaseIdentities, storeseal.PhaseRefused:
		// Two forms of one identifier become one row, as in Reseal.
		return raiseTable{false, false, true,
			`SELECT DISTINCT value, value FROM ` + phase + ` WHERE type = ?1 AND value > ?2 AND ` + notSealed("value") + ` ORDER BY value LIMIT ?3`,
			`UPDATE OR REPLACE ` + phase + ` SET value = ? WHERE type = ? AND value = ?`}, true
	case storeseal.PhaseValues:
		return raiseTable{false, false, true,
			`SELECT DISTINCT value, value FROM trait_issues WHERE trait = ?1 AND value > ?2 AND ` + notSealed("value") + ` ORDER BY value LIMIT ?3`,
			`UPDATE trait_issues SET value = ? WHERE trait = ? AND value = ?`}, true
	case storeseal.PhaseMerges:
		return raiseTable{false, true, true,
			`SELECT id, id_value FROM merges WHERE id_type = ?1 AND id > ?2 AND ` + notSealed("id_value") + ` ORDER BY id LIMIT ?3`,
			`UPDATE merges SET id_value = ? WHERE id = ? AND id_value = ?`}, true
	case storeseal.PhaseSplits:
		return raiseTable{false, false, true,
			`SELECT message_id, via_type, via_value, side_a, side_b FROM splits WHERE (via_type = ?1 OR instr(side_a, json_quote(?1)) > 0 OR instr(side_b, json_quote(?1)) > 0)
				AND message_id > ?2 ORDER BY message_id LIMIT ?3`,
			`UPDATE splits SET via_type = ?, via_value = ?, side_a = ?, side_b = ? WHERE message_id = ? AND via_type = ? AND via_value = ? AND side_a = ? AND side_b = ?`}, true
	case storeseal.PhaseQuarantine:
		return blob("quarantine", "raw", true), true
	case storeseal.PhaseImports:
		return blob("imports", "summary", true), true
	case storeseal.PhaseDeadLetters:
		return blob("segment_dead_letters", "body", true), true
	case storeseal.PhaseAccountEdits:
		return blob("account_edits", "body", true), true
	case storeseal.PhaseAccountState:
		return blob("account_state", "body", false), true
	}
	return raiseTable{}, false
}

// RaiseRows reads a page of a reseal phase's rows (storeseal.RaiseTables).
func (db *DB) RaiseRows(ctx context.Context, phase, kind, name, after string, limit int) ([]storeseal.Row, error) {
	t, ok := raiseTableOf(phase)
	if !ok {
		return nil, portrait.Errorf(portrait.EINTERNAL, "no reseal phase %q", phase)
	}
	var filter any = name
	switch phase {
	case storeseal.PhaseEvents, storeseal.PhaseProfiles, storeseal.PhaseCandidates:
		quoted, _ := json.Marshal(name)
		filter = string(quoted)
	}
	var from any = after
	if t.intKey {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			n = math.MinInt64
		}
		from = n
	}
	d := db.stateR
	if t.log {
		d = db.logR
	}
	rows, err := d.QueryContext(ctx, t.sel, filter, from, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read "+phase)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []storeseal.Row
	for rows.Next() {
		vals := make([][]byte, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, portrait.Wrap(err, "cannot read "+phase)
		}
		out = append(out, storeseal.Row{Key: string(vals[0]), Cols: vals[1:]})
	}
	return out, rows.Err()
}

// RaiseWrite rewrites a reseal phase's rows where they are as read and
// keeps the job's progress (storeseal.RaiseTables): in the same
// transaction for the log's tables, after it for the state's (another
// file); a step cut between the two is done again, and finds nothing left
// in what it did.
func (db *DB) RaiseWrite(ctx context.Context, phase string, j storeseal.Job, rws []storeseal.Rewrite, next storeseal.Job, done bool) error {
	t, ok := raiseTableOf(phase)
	if !ok {
		return portrait.Errorf(portrait.EINTERNAL, "no reseal phase %q", phase)
	}
	valueKeyed := storeseal.ValueKeyed(phase)
	text := t.text
	write := func(tx *sql.Tx) error {
		for _, r := range rws {
			args := make([]any, 0, 2*len(r.New)+1)
			for _, c := range r.New {
				args = append(args, col(c, text))
			}
			if valueKeyed {
				args = append(args, j.Name)
			} else if t.intKey {
				n, _ := strconv.ParseInt(r.Key, 10, 64)
				args = append(args, n)
			} else {
				args = append(args, r.Key)
			}
			for _, c := range r.Old {
				args = append(args, col(c, text))
			}
			if _, err := tx.ExecContext(ctx, t.up, args...); err != nil {
				return portrait.Wrap(err, "cannot seal "+j.Name)
			}
		}
		return nil
	}
	progress := func(tx *sql.Tx) error {
		var err error
		if done {
			_, err = tx.ExecContext(ctx, `DELETE FROM reseal_jobs WHERE kind = ? AND name = ? AND phase = ? AND after_key = ?`, j.Kind, j.Name, j.Phase, j.After)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE reseal_jobs SET phase = ?, after_key = ? WHERE kind = ? AND name = ? AND phase = ? AND after_key = ?`,
				next.Phase, next.After, j.Kind, j.Name, j.Phase, j.After)
		}
		if err != nil {
			return portrait.Wrap(err, "cannot keep the reseal progress")
		}
		return nil
	}
	if t.log {
		return db.secureTx(ctx, db.logW, func(tx *sql.Tx) error {
			if err := write(tx); err != nil {
				return err
			}
			return progress(tx)
		})
	}
	if len(rws) > 0 {
		if err := db.secureTx(ctx, db.stateW, write); err != nil {
			return err
		}
	}
	return db.secureTx(ctx, db.logW, progress)
}

// col is a column's value as bound: a TEXT column's as a string (a BLOB
// never equals a TEXT in SQLite), a document's as bytes.
func col(b []byte, text bool) any {
	if text {
		return string(b)
	}
	return b
}
