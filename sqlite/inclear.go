package sqlite

import (
	"context"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// A level raised to secret seals the values written from then on; those
// stored before stay as they were until `portrait keys rotate-data-key`
// seals them (on a stopped server: resealing under a running processor
// would race its writes). InClear says how many there are, so an operator
// knows whether the rotation is due, instead of believing a setting.

// SealsAtRest reports whether a data key is configured.
func (db *DB) SealsAtRest() bool { return db.sealer.HasRing() }

// InClear counts the stored values of a trait (kind "trait") or an
// identifier type ("identifier") that are not sealed: in profile documents,
// event bodies, the identities table and refused values. It reads every
// row that mentions the name, so it is for an occasional status request,
// not for a hot path.
func (db *DB) InClear(ctx context.Context, kind, name string) (map[string]int, error) {
	quoted, _ := json.Marshal(name)
	out := map[string]int{"profiles": 0, "events": 0}
	ident := kind == "identifier"
	// Profiles: the trait's value, or the identifiers of the type.
	rows, err := db.stateR.QueryContext(ctx, `SELECT doc FROM profiles WHERE instr(doc, ?) > 0`, string(quoted))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profiles")
	}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot read profiles")
		}
		clear, err := storeseal.ClearInProfile(kind, name, doc)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if clear {
			out["profiles"]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read profiles")
	}
	// Events: a member of that name (or an external id of that type) in
	// clear within traits, properties or context.
	rows, err = db.logR.QueryContext(ctx, `SELECT body FROM events WHERE type <> ? AND instr(body, ?) > 0`, portrait.EventErased, string(quoted))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return nil, portrait.Wrap(err, "cannot read the event log")
		}
		clear, err := storeseal.ClearInEvent(kind, name, body)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if clear {
			out["events"]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the event log")
	}
	notSealed := `substr(value, 1, ` + strconv.Itoa(len(datakey.Prefix)) + `) <> '` + datakey.Prefix + `' AND value <> ''`
	var n int
	if ident {
		for _, t := range []string{"identities", "refused"} {
			if err := db.stateR.QueryRowContext(ctx, `SELECT count(*) FROM `+t+` WHERE type = ? AND `+notSealed, name).Scan(&n); err != nil {
				return nil, portrait.Wrap(err, "cannot read "+t)
			}
			out[strings.ReplaceAll(t, "refused", "refused_identifiers")] = n
		}
	} else {
		if err := db.stateR.QueryRowContext(ctx, `SELECT count(*) FROM trait_issues WHERE trait = ? AND `+notSealed, name).Scan(&n); err != nil {
			return nil, portrait.Wrap(err, "cannot read trait issues")
		}
		out["refused_values"] = n
	}
	return out, nil
}
