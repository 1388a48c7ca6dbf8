package postgres

import (
	"context"
	"encoding/hex"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// A level raised to secret, as on the embedded store (sqlite/raise.go):
// InClear counts the name's values still in clear, and a background pass
// seals them, its jobs and progress in reseal_jobs. The pass is
// internal/storeseal's (Step, InClear); the store gives its rows
// (RaiseRows, RaiseWrite).

var (
	_ storeseal.RaiseStore  = (*DB)(nil)
	_ storeseal.RaiseTables = (*DB)(nil)
)

// SealsAtRest reports whether a data key is configured.
func (db *DB) SealsAtRest() bool { return db.sealer.HasRing() }

// ScheduleReseal records a job for the name, from the start.
func (db *DB) ScheduleReseal(ctx context.Context, kind, name string) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO reseal_jobs (kind, name, phase, after_key) VALUES ($1, $2, $3, '')
		ON CONFLICT (kind, name) DO UPDATE SET phase = excluded.phase, after_key = ''`, kind, name, storeseal.PhaseEvents); err != nil {
		return portrait.Wrap(err, "cannot schedule the sealing of "+name)
	}
	return nil
}

// ResealJobs lists the jobs not finished.
func (db *DB) ResealJobs(ctx context.Context) ([]storeseal.Job, error) {
	rows, err := db.pool.Query(ctx, `SELECT kind, name, phase, after_key FROM reseal_jobs ORDER BY kind, name`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the reseal jobs")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storeseal.Job, error) {
		var j storeseal.Job
		err := r.Scan(&j.Kind, &j.Name, &j.Phase, &j.After)
		return j, err
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the reseal jobs")
	}
	return out, nil
}

// ResealStep seals up to a batch of the job's rows in clear, each only if
// it is still as read, and keeps the progress in the same transaction
// (storeseal.Step).
func (db *DB) ResealStep(ctx context.Context, j storeseal.Job) (storeseal.Job, bool, error) {
	return storeseal.Step(ctx, db, db.sealer, j)
}

// InClear counts the stored values of a trait (kind "trait") or an
// identifier type ("identifier") in clear (storeseal.InClear).
func (db *DB) InClear(ctx context.Context, kind, name string) (map[string]int, error) {
	return storeseal.InClear(ctx, db, kind, name)
}

// notSealed is the condition of a TEXT column in clear.
func notSealed(col string) string {
	return `left(` + col + `, ` + itoa(len(datakey.Prefix)) + `) <> '` + datakey.Prefix + `' AND ` + col + ` <> ''`
}

// raiseTable is where a phase's rows are and how they are read and
// rewritten. sel takes (filter, after, limit) and returns the key as text
// and the phase's columns; up takes the new columns, then the key (or the
// name for a value-keyed table), then the old columns; pre, when set, is
// run before up with the same arguments.
type raiseTable struct {
	sel, pre, up string
}

func raiseTableOf(phase string) (raiseTable, bool) {
	blob := func(table, col, keyType string, text bool) raiseTable {
		clear := `position('\x` + hex.EncodeToString([]byte(datakey.Prefix)) + `'::bytea IN ` + col + `) <> 1`
		if text {
			clear = `left(` + col + `, ` + itoa(len(datakey.Prefix)) + `) <> '` + datakey.Prefix + `'`
		}
		order, from := "id", `coalesce(nullif($2::text, ''), '-9223372036854775808')::int8`
		if keyType == "text" {
			order, from = `id COLLATE "C"`, `$2::text`
		}
		// $1 (the name) is not needed: every blob in clear is sealed.
		return raiseTable{
			sel: `SELECT id::text, ` + col + ` FROM ` + table + ` WHERE $1::text IS NOT NULL AND ` + order + ` > ` + from + ` AND ` + clear +
				` ORDER BY ` + order + ` LIMIT $3`,
			up: `UPDATE ` + table + ` SET ` + col + ` = $1 WHERE id = $2::text::` + keyType + ` AND ` + col + ` = $3`}
	}
	switch phase {
	case storeseal.PhaseEvents:
		return raiseTable{
			sel: `SELECT seq::text, body FROM events WHERE (position($1::bytea IN body) > 0 OR type = '` + portrait.EventRetained + `') AND seq > ($2::text)::int8 AND type <> '` + portrait.EventErased + `' ORDER BY seq LIMIT $3`,
			up:  `UPDATE events SET body = $1 WHERE seq = $2::text::int8 AND body = $3`}, true
	case storeseal.PhaseProfiles:
		return raiseTable{
			sel: `SELECT id, doc FROM profiles WHERE position($1::bytea IN doc) > 0 AND id COLLATE "C" > $2 ORDER BY id COLLATE "C" LIMIT $3`,
			up:  `UPDATE profiles SET doc = $1 WHERE id = $2 AND doc = $3`}, true
	case storeseal.PhaseCandidates:
		return raiseTable{
			sel: `SELECT id, doc FROM linkage_candidates WHERE position($1::bytea IN doc) > 0 AND id COLLATE "C" > $2 ORDER BY id COLLATE "C" LIMIT $3`,
			up:  `UPDATE linkage_candidates SET doc = $1 WHERE id = $2 AND doc = $3`}, true
	case storeseal.PhaseIdentities:
		// Two forms of one identifier become one row, as in Reseal.
		return raiseTable{
			sel: `SELECT DISTINCT value COLLATE "C", value FROM identities WHERE type = $1 AND value COLLATE "C" > $2 AND ` + notSealed("value") + ` ORDER BY 1 LIMIT $3`,
			pre: `DELETE FROM identities WHERE type = $2 AND value = $1 AND EXISTS (SELECT 1 FROM identities WHERE type = $2 AND value = $3)`,
			up:  `UPDATE identities SET value = $1 WHERE type = $2 AND value = $3`}, true
	case storeseal.PhaseRefused:
		return raiseTable{
			sel: `SELECT DISTINCT value COLLATE "C", value FROM refused WHERE type = $1 AND value COLLATE "C" > $2 AND ` + notSealed("value") + ` ORDER BY 1 LIMIT $3`,
			pre: `DELETE FROM refused r WHERE type = $2 AND value = $1 AND EXISTS (SELECT 1 FROM refused o WHERE o.type = $2 AND o.value = $3 AND o.profile_id = r.profile_id)`,
			up:  `UPDATE refused SET value = $1 WHERE type = $2 AND value = $3`}, true
	case storeseal.PhaseValues:
		return raiseTable{
			sel: `SELECT DISTINCT value COLLATE "C", value FROM trait_issues WHERE trait = $1 AND value COLLATE "C" > $2 AND ` + notSealed("value") + ` ORDER BY 1 LIMIT $3`,
			up:  `UPDATE trait_issues SET value = $1 WHERE trait = $2 AND value = $3`}, true
	case storeseal.PhaseMerges:
		return raiseTable{
			sel: `SELECT id::text, id_value FROM merges WHERE id_type = $1 AND id > coalesce(nullif($2, ''), '0')::int8 AND ` + notSealed("id_value") + ` ORDER BY id LIMIT $3`,
			up:  `UPDATE merges SET id_value = $1 WHERE id = $2::text::int8 AND id_value = $3`}, true
	case storeseal.PhaseSplits:
		return raiseTable{
			sel: `SELECT message_id, via_type, via_value, side_a, side_b FROM splits
				WHERE (via_type = $1 OR position(to_json($1::text)::text IN side_a) > 0 OR position(to_json($1::text)::text IN side_b) > 0)
					AND message_id COLLATE "C" > $2 ORDER BY message_id COLLATE "C" LIMIT $3`,
			up: `UPDATE splits SET via_type = $1, via_value = $2, side_a = $3, side_b = $4
				WHERE message_id = $5 AND via_type = $6 AND via_value = $7 AND side_a = $8 AND side_b = $9`}, true
	case storeseal.PhaseQuarantine:
		return blob("quarantine", "raw", "int8", false), true
	case storeseal.PhaseImports:
		return blob("imports", "summary", "text", false), true
	case storeseal.PhaseDeadLetters:
		return blob("segment_dead_letters", "body", "int8", false), true
	case storeseal.PhaseAccountEdits:
		return blob("account_edits", "body", "int8", true), true
	case storeseal.PhaseAccountState:
		return blob("account_state", "body", "int4", false), true
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
		filter = quoted
	}
	if phase == storeseal.PhaseEvents && after == "" {
		after = "0"
	}
	rows, err := db.pool.Query(ctx, t.sel, filter, after, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read "+phase)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storeseal.Row, error) {
		raw := r.RawValues()
		row := storeseal.Row{Key: string(raw[0]), Cols: make([][]byte, len(raw)-1)}
		for i, v := range raw[1:] {
			row.Cols[i] = append([]byte(nil), v...)
		}
		return row, nil
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read "+phase)
	}
	return out, nil
}

// RaiseWrite rewrites a reseal phase's rows where they are as read and
// keeps the job's progress, in one transaction (storeseal.RaiseTables).
func (db *DB) RaiseWrite(ctx context.Context, phase string, j storeseal.Job, rws []storeseal.Rewrite, next storeseal.Job, done bool) error {
	t, ok := raiseTableOf(phase)
	if !ok {
		return portrait.Errorf(portrait.EINTERNAL, "no reseal phase %q", phase)
	}
	b := &pgx.Batch{}
	for _, r := range rws {
		args := make([]any, 0, 2*len(r.New)+1)
		for _, c := range r.New {
			args = append(args, c)
		}
		if storeseal.ValueKeyed(phase) {
			args = append(args, j.Name)
		} else {
			args = append(args, r.Key)
		}
		for _, c := range r.Old {
			args = append(args, c)
		}
		if t.pre != "" {
			b.Queue(t.pre, args...)
		}
		b.Queue(t.up, args...)
	}
	// A job scheduled anew meanwhile starts over: only this pass's own
	// progress is moved on (or removed).
	if done {
		b.Queue(`DELETE FROM reseal_jobs WHERE kind = $1 AND name = $2 AND phase = $3 AND after_key = $4`, j.Kind, j.Name, j.Phase, j.After)
	} else {
		b.Queue(`UPDATE reseal_jobs SET phase = $1, after_key = $2 WHERE kind = $3 AND name = $4 AND phase = $5 AND after_key = $6`,
			next.Phase, next.After, j.Kind, j.Name, j.Phase, j.After)
	}
	if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
		return portrait.Wrap(err, "cannot seal "+j.Name)
	}
	return nil
}
