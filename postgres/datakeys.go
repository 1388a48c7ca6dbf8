package postgres

import (
	"context"

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
// where that is cheap, as the embedded store's does: identities and
// refused identifier values (whole columns) and the suppression list (""
// counts the unkeyed hashes). Documents holding sealed values inside them
// (events, profiles, the documents kept whole) are not counted.
func (db *DB) DataKeyUse(ctx context.Context) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	add := func(what, q string) error {
		rows, err := db.pool.Query(ctx, q)
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
		if err := rows.Err(); err != nil {
			return portrait.Wrap(err, "cannot count the sealed values")
		}
		return nil
	}
	for _, t := range []string{"identities", "refused"} {
		if err := add(t, `SELECT split_part(value, ':', 2), count(*) FROM `+t+` WHERE left(value, 8) = '$sealed:' GROUP BY 1`); err != nil {
			return nil, err
		}
	}
	if err := add("suppressions", `SELECT key_id, count(*) FROM suppressed GROUP BY key_id`); err != nil {
		return nil, err
	}
	return out, nil
}
