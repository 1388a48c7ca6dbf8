package postgres

import (
	"context"

	"github.com/portrait-cdp/portrait"
)

// Every node holds the definitions (tags, computed traits, segments,
// classification levels, webhooks) in memory. The node that changes one
// raises its kind's version here and notifies; the others, woken by the
// notification (or by their own periodic look), compare versions and read
// the changed kinds again.

// BumpConfig raises the version of one kind of definition and notifies
// the other nodes at commit.
func (db *DB) BumpConfig(ctx context.Context, kind string) error {
	if kind == "" {
		return portrait.Errorf(portrait.EINVALID, "configuration kind is empty")
	}
	_, err := db.pool.Exec(ctx, `WITH up AS (
			INSERT INTO config_versions (kind, version) VALUES ($1, 1)
			ON CONFLICT (kind) DO UPDATE SET version = config_versions.version + 1 RETURNING version)
		SELECT pg_notify('portrait_config', $1) FROM up`, kind)
	if err != nil {
		return portrait.Wrap(err, "cannot record a configuration change")
	}
	return nil
}

// ConfigVersions returns the version of each kind of definition that has
// changed at least once.
func (db *DB) ConfigVersions(ctx context.Context) (map[string]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT kind, version FROM config_versions`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read configuration versions")
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, portrait.Wrap(err, "cannot read configuration versions")
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read configuration versions")
	}
	return out, nil
}
