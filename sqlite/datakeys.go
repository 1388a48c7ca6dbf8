package sqlite

import (
	"context"
	"database/sql"

	"github.com/portrait-cdp/portrait"
)

// DataKeys are the configured data keys: the current one (it seals) and
// every id, oldest first (nil without a key).
func (db *DB) DataKeys() (current string, ids []string) {
	if !db.sealer.HasRing() {
		return "", nil
	}
	return db.sealer.Ring.Current(), db.sealer.Ring.IDs()
}

// DataKeyUse counts, by data key id, the stored values sealed with it
// where that is cheap: the identifier values of the identity graph
// (identities, refused: a sealed value is the whole column) and the
// suppression list (its key_id column; "" counts the unkeyed hashes).
// Event bodies, profile documents and the documents kept whole hold
// sealed values inside them and are not counted: that would read them all.
func (db *DB) DataKeyUse(ctx context.Context) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	add := func(d *sql.DB, what, q string) error {
		rows, err := d.QueryContext(ctx, q)
		if err != nil {
			return portrait.Wrap(err, "cannot count the sealed values")
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				return portrait.Wrap(err, "cannot count the sealed values")
			}
			if out[k] == nil {
				out[k] = map[string]int64{}
			}
			out[k][what] += n
		}
		return rows.Err()
	}
	for _, t := range []string{"identities", "refused"} {
		// '$sealed:' then the key id up to the next ':'
		if err := add(db.stateR, t, `SELECT substr(value, 9, instr(substr(value, 9), ':') - 1), count(*) FROM `+t+`
			WHERE substr(value, 1, 8) = '$sealed:' GROUP BY 1`); err != nil {
			return nil, err
		}
	}
	if err := add(db.logR, "suppressions", `SELECT key_id, count(*) FROM suppressed GROUP BY key_id`); err != nil {
		return nil, err
	}
	return out, nil
}
