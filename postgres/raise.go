package postgres

import (
	"context"
	"strconv"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// A level raised to secret, as on the embedded store (sqlite/inclear.go,
// sqlite/raise.go): InClear counts the name's values still in clear, and
// a background pass (internal/storeseal, raise.go) seals them, its jobs
// and progress in reseal_jobs.

var _ storeseal.RaiseStore = (*DB)(nil)

// SealsAtRest reports whether a data key is configured.
func (db *DB) SealsAtRest() bool { return db.sealer.HasRing() }

// notSealed is the condition of a value column in clear.
var notSealed = `substring(value FROM 1 FOR ` + strconv.Itoa(len(datakey.Prefix)) + `) <> '` + datakey.Prefix + `' AND value <> ''`

// InClear counts the stored values of a trait (kind "trait") or an
// identifier type ("identifier") that are not sealed: in profile
// documents, event bodies, the identities and refused tables, refused
// trait values. It reads every row that mentions the name: a status
// request, not a hot path.
func (db *DB) InClear(ctx context.Context, kind, name string) (map[string]int, error) {
	quoted, _ := json.Marshal(name)
	out := map[string]int{"profiles": 0, "events": 0}
	for _, c := range []struct {
		what, q string
		fn      func(kind, name string, b []byte) (bool, error)
	}{
		{"profiles", `SELECT doc FROM profiles WHERE position($1::bytea IN doc) > 0`, storeseal.ClearInProfile},
		{"events", `SELECT body FROM events WHERE type <> '` + portrait.EventErased + `' AND position($1::bytea IN body) > 0`, storeseal.ClearInEvent},
	} {
		rows, err := db.pool.Query(ctx, c.q, quoted)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read "+c.what)
		}
		var b []byte
		if _, err := pgx.ForEachRow(rows, []any{&b}, func() error {
			clear, err := c.fn(kind, name, b)
			if clear {
				out[c.what]++
			}
			return err
		}); err != nil {
			return nil, portrait.Wrap(err, "cannot read "+c.what)
		}
	}
	var n int
	if kind == "identifier" {
		for _, t := range []struct{ table, key string }{{"identities", "identities"}, {"refused", "refused_identifiers"}} {
			if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+t.table+` WHERE type = $1 AND `+notSealed, name).Scan(&n); err != nil {
				return nil, portrait.Wrap(err, "cannot read "+t.table)
			}
			out[t.key] = n
		}
	} else {
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM trait_issues WHERE trait = $1 AND `+notSealed, name).Scan(&n); err != nil {
			return nil, portrait.Wrap(err, "cannot read trait issues")
		}
		out["refused_values"] = n
	}
	return out, nil
}

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
// it is still as read, and keeps the progress in the same transaction.
func (db *DB) ResealStep(ctx context.Context, j storeseal.Job) (storeseal.Job, bool, error) {
	if !db.sealer.Active() {
		return j, false, portrait.Errorf(portrait.EUNAVAILABLE, "no data key is configured: nothing to seal with")
	}
	rs := storeseal.Resealer{S: db.sealer}
	quoted, _ := json.Marshal(j.Name)
	b := &pgx.Batch{}
	read, last := 0, ""
	page := func(q, up string, after any, fn func(key string, v []byte) ([]byte, bool, error)) error {
		rows, err := db.pool.Query(ctx, q, after, quoted)
		if err != nil {
			return portrait.Wrap(err, "cannot read the store")
		}
		var k string
		var v []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			read, last = read+1, k
			out, ch, err := fn(k, v)
			if err == nil && ch {
				b.Queue(up, out, k, append([]byte(nil), v...)) // the row as read
			}
			return err
		})
		return err
	}
	switch j.Phase {
	case storeseal.PhaseEvents:
		after, _ := strconv.ParseInt(j.After, 10, 64)
		err := page(`SELECT seq::text, body FROM events WHERE seq > $1 AND type <> '`+portrait.EventErased+`' AND position($2::bytea IN body) > 0 ORDER BY seq LIMIT `+itoa(storeseal.Batch),
			`UPDATE events SET body = $1 WHERE seq = $2::int8 AND body = $3`, after,
			func(_ string, v []byte) ([]byte, bool, error) { return rs.RaiseEvent(j.Kind, j.Name, v) })
		if err != nil {
			return j, false, err
		}
	case storeseal.PhaseProfiles:
		err := page(`SELECT id, doc FROM profiles WHERE id > $1 AND position($2::bytea IN doc) > 0 ORDER BY id LIMIT `+itoa(storeseal.Batch),
			`UPDATE profiles SET doc = $1 WHERE id = $2 AND doc = $3`, j.After,
			func(id string, v []byte) ([]byte, bool, error) { return rs.RaiseProfile(j.Kind, j.Name, id, v) })
		if err != nil {
			return j, false, err
		}
	case storeseal.PhaseRows:
		if err := db.raiseRows(ctx, rs, j, b); err != nil {
			return j, false, err
		}
	default:
		return j, false, portrait.Errorf(portrait.EINTERNAL, "reseal job %s/%s has an unknown phase %q", j.Kind, j.Name, j.Phase)
	}
	next, done := j, false
	if j.Phase != storeseal.PhaseRows && read == storeseal.Batch {
		next.After = last
	} else if next.Phase, next.After = storeseal.Next(j.Phase), ""; next.Phase == "" {
		done = true
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
		return j, false, portrait.Wrap(err, "cannot seal "+j.Name)
	}
	return next, done, nil
}

// raiseRows queues the sealing of the name's rows of the smaller tables:
// the identities and refused identifiers of the type, or the refused
// values of the trait, each update naming the value it read.
func (db *DB) raiseRows(ctx context.Context, rs storeseal.Resealer, j storeseal.Job, b *pgx.Batch) error {
	type step struct{ sel, pre, up string }
	steps := []step{{`SELECT DISTINCT value FROM trait_issues WHERE trait = $1 AND ` + notSealed, "",
		`UPDATE trait_issues SET value = $1 WHERE trait = $2 AND value = $3`}}
	if j.Kind == "identifier" {
		// Two forms of one identifier become one row, as in Reseal.
		steps = []step{
			{`SELECT DISTINCT value FROM identities WHERE type = $1 AND ` + notSealed,
				`DELETE FROM identities WHERE type = $2 AND value = $1 AND EXISTS (SELECT 1 FROM identities WHERE type = $2 AND value = $3)`,
				`UPDATE identities SET value = $1 WHERE type = $2 AND value = $3`},
			{`SELECT DISTINCT value FROM refused WHERE type = $1 AND ` + notSealed,
				`DELETE FROM refused r WHERE type = $2 AND value = $1 AND EXISTS (SELECT 1 FROM refused o WHERE o.type = $2 AND o.value = $3 AND o.profile_id = r.profile_id)`,
				`UPDATE refused SET value = $1 WHERE type = $2 AND value = $3`},
		}
	}
	for _, st := range steps {
		rows, err := db.pool.Query(ctx, st.sel, j.Name)
		if err != nil {
			return portrait.Wrap(err, "cannot read the state")
		}
		olds, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return portrait.Wrap(err, "cannot read the state")
		}
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
			if !ch {
				continue
			}
			if st.pre != "" {
				b.Queue(st.pre, next, j.Name, old)
			}
			b.Queue(st.up, next, j.Name, old)
		}
	}
	return nil
}
