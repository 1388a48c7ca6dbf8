package sqlite

import (
	"context"
	"database/sql"
	"strconv"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// The background pass that seals a name's stored values after its level
// was raised to secret (internal/storeseal, raise.go): the jobs are kept
// in the log file beside the classifications (reseal_jobs).

var _ storeseal.RaiseStore = (*DB)(nil)

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
// it is still as read, and keeps the progress.
func (db *DB) ResealStep(ctx context.Context, j storeseal.Job) (storeseal.Job, bool, error) {
	if !db.sealer.Active() {
		return j, false, portrait.Errorf(portrait.EUNAVAILABLE, "no data key is configured: nothing to seal with")
	}
	rs := storeseal.Resealer{S: db.sealer}
	quoted, _ := json.Marshal(j.Name)
	type cas struct {
		key       any
		old, next []byte
	}
	var (
		read   int
		last   string
		todo   []cas
		phaseD *sql.DB
		up     string
	)
	scan := func(q string, args []any, fn func(key string, v []byte) ([]byte, bool, error), d *sql.DB) error {
		rows, err := d.QueryContext(ctx, q, args...)
		if err != nil {
			return portrait.Wrap(err, "cannot read the store")
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return portrait.Wrap(err, "cannot read the store")
			}
			read, last = read+1, k
			out, ch, err := fn(k, v)
			if err != nil {
				return err
			}
			if ch {
				todo = append(todo, cas{k, v, out})
			}
		}
		return rows.Err()
	}
	switch j.Phase {
	case storeseal.PhaseEvents:
		after, _ := strconv.ParseInt(j.After, 10, 64)
		phaseD, up = db.logW, `UPDATE events SET body = ? WHERE seq = ? AND body = ?`
		err := scan(`SELECT seq, body FROM events WHERE seq > ? AND type <> ? AND instr(body, ?) > 0 ORDER BY seq LIMIT ?`,
			[]any{after, portrait.EventErased, string(quoted), storeseal.Batch},
			func(_ string, v []byte) ([]byte, bool, error) { return rs.RaiseEvent(j.Kind, j.Name, v) }, db.logR)
		if err != nil {
			return j, false, err
		}
	case storeseal.PhaseProfiles:
		phaseD, up = db.stateW, `UPDATE profiles SET doc = ? WHERE id = ? AND doc = ?`
		err := scan(`SELECT id, doc FROM profiles WHERE id > ? AND instr(doc, ?) > 0 ORDER BY id LIMIT ?`,
			[]any{j.After, string(quoted), storeseal.Batch},
			func(id string, v []byte) ([]byte, bool, error) { return rs.RaiseProfile(j.Kind, j.Name, id, v) }, db.stateR)
		if err != nil {
			return j, false, err
		}
	case storeseal.PhaseRows:
		if err := db.raiseRows(ctx, rs, j); err != nil {
			return j, false, err
		}
	default:
		return j, false, portrait.Errorf(portrait.EINTERNAL, "reseal job %s/%s has an unknown phase %q", j.Kind, j.Name, j.Phase)
	}
	if len(todo) > 0 {
		err := db.secureTx(ctx, phaseD, func(tx *sql.Tx) error {
			for _, c := range todo {
				if _, err := tx.ExecContext(ctx, up, c.next, c.key, c.old); err != nil {
					return portrait.Wrap(err, "cannot seal "+j.Name)
				}
			}
			return nil
		})
		if err != nil {
			return j, false, err
		}
	}
	next := j
	if j.Phase != storeseal.PhaseRows && read == storeseal.Batch {
		next.After = last
	} else if next.Phase, next.After = storeseal.Next(j.Phase), ""; next.Phase == "" {
		if _, err := db.logW.ExecContext(ctx, `DELETE FROM reseal_jobs WHERE kind = ? AND name = ?`, j.Kind, j.Name); err != nil {
			return j, false, portrait.Wrap(err, "cannot finish the reseal job")
		}
		return next, true, nil
	}
	// A job scheduled anew meanwhile starts over: only this pass's own
	// progress is moved on.
	if _, err := db.logW.ExecContext(ctx, `UPDATE reseal_jobs SET phase = ?, after_key = ? WHERE kind = ? AND name = ? AND phase = ? AND after_key = ?`,
		next.Phase, next.After, j.Kind, j.Name, j.Phase, j.After); err != nil {
		return j, false, portrait.Wrap(err, "cannot keep the reseal progress")
	}
	return next, false, nil
}

// raiseRows seals the name's rows of the smaller tables: the identities
// and refused identifiers of the type, or the refused values of the trait.
// Each update names the value it read, so a row changed meanwhile is left
// to the processor that changed it.
func (db *DB) raiseRows(ctx context.Context, rs storeseal.Resealer, j storeseal.Job) error {
	notSealed := `substr(value, 1, ` + strconv.Itoa(len(datakey.Prefix)) + `) <> '` + datakey.Prefix + `' AND value <> ''`
	type step struct{ sel, up string }
	steps := []step{{`SELECT '', value FROM trait_issues WHERE trait = ? AND ` + notSealed,
		`UPDATE trait_issues SET value = ? WHERE trait = ? AND value = ?`}}
	if j.Kind == "identifier" {
		// Two forms of one identifier become one row, as in Reseal.
		steps = []step{
			{`SELECT DISTINCT '', value FROM identities WHERE type = ? AND ` + notSealed, `UPDATE OR REPLACE identities SET value = ? WHERE type = ? AND value = ?`},
			{`SELECT DISTINCT '', value FROM refused WHERE type = ? AND ` + notSealed, `UPDATE OR REPLACE refused SET value = ? WHERE type = ? AND value = ?`},
		}
	}
	for _, st := range steps {
		olds, err := queryPairs(ctx, db.stateR, st.sel, j.Name)
		if err != nil {
			return err
		}
		type row struct{ old, next string }
		var todo []row
		for _, old := range olds {
			var next string
			var ch bool
			if j.Kind == "identifier" {
				next, ch, err = rs.Identifier(j.Name, old)
			} else {
				next, ch, err = rs.Value(j.Name, old)
			}
			if err != nil {
				return err
			}
			if ch {
				todo = append(todo, row{old, next})
			}
		}
		for len(todo) > 0 {
			batch := todo[:min(len(todo), storeseal.Batch)]
			todo = todo[len(batch):]
			err = db.secureTx(ctx, db.stateW, func(tx *sql.Tx) error {
				for _, r := range batch {
					if _, err := tx.ExecContext(ctx, st.up, r.next, j.Name, r.old); err != nil {
						return portrait.Wrap(err, "cannot seal "+j.Name)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// queryPairs returns the second column of q's rows.
func queryPairs(ctx context.Context, d *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := d.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the state")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, portrait.Wrap(err, "cannot read the state")
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
