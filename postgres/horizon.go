package postgres

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// VACUUM (FULL or not) removes a row version only once no snapshot may
// still see it: a transaction left open since before a rewrite (a
// rotation, an erasure) holds the replaced versions, old-key ciphertexts
// or erased values, in the table files until it ends. Which do: a snapshot
// in a session of the same database or of a replication connection
// (hot_standby_feedback), and a transaction that has written (it has an
// xid) in any database of the server, because every snapshot taken while
// it runs, the vacuum's own included, counts it as running. (A read-only
// snapshot in another database holds nothing here.) A prepared transaction
// holds like a transaction that has written, and a replication slot by its
// xmin (a physical slot fed back by a standby) or, for the system catalogs
// only, its catalog_xmin (a logical slot).
// The store finds them (pg_stat_activity, pg_prepared_xacts,
// pg_replication_slots: a snapshot or an xid older than the rewrite), says so in the log and in the rotation's
// result, and waits a bounded time for them before vacuuming, so the
// vacuum that follows removes what it must.

// DefaultVacuumWait is how long a rotation waits for the sessions holding
// old row versions to end before it vacuums anyway and reports them.
const DefaultVacuumWait = 30 * time.Second

// horizonMark is an xid after the rewrite: a session whose snapshot
// (backend_xmin) or own transaction (backend_xid) is older holds what the
// rewrite replaced.
func (db *DB) horizonMark(ctx context.Context) (string, error) {
	var mark string
	if err := db.pool.QueryRow(ctx, `SELECT pg_current_xact_id()::xid::text`).Scan(&mark); err != nil {
		return "", portrait.Wrap(err, "cannot read the transaction horizon")
	}
	return mark, nil
}

// horizonHolders lists what holds row versions replaced before mark: the
// other sessions (pg_stat_activity), prepared transactions
// (pg_prepared_xacts: their xid counts as running in every snapshot until
// COMMIT PREPARED or ROLLBACK PREPARED, whoever is connected) and
// replication slots (pg_replication_slots: a slot's xmin holds row
// versions of every table; a logical slot's catalog_xmin holds those of
// the system catalogs, reported as such).
func (db *DB) horizonHolders(ctx context.Context, mark string) ([]storeseal.Holder, error) {
	rows, err := db.pool.Query(ctx, `SELECT pid, coalesce(datname, ''), coalesce(usename, ''), coalesce(application_name, ''), coalesce(state, ''),
			coalesce(xact_start, backend_start)
		FROM pg_stat_activity
		WHERE pid <> pg_backend_pid()
			AND (age(backend_xid) > age($1::text::xid)
				OR (datname = current_database() OR backend_type = 'walsender') AND age(backend_xmin) > age($1::text::xid))
		ORDER BY xact_start`, mark)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the sessions holding old row versions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storeseal.Holder, error) {
		h := storeseal.Holder{Kind: storeseal.HolderSession}
		err := r.Scan(&h.PID, &h.Database, &h.User, &h.Application, &h.State, &h.Since)
		return h, err
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the sessions holding old row versions")
	}
	rows, err = db.pool.Query(ctx, `SELECT gid, coalesce(database, ''), coalesce(owner, ''), prepared
		FROM pg_prepared_xacts WHERE age(transaction) > age($1::text::xid) ORDER BY prepared`, mark)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the prepared transactions holding old row versions")
	}
	prepared, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storeseal.Holder, error) {
		h := storeseal.Holder{Kind: storeseal.HolderPrepared, State: "prepared"}
		err := r.Scan(&h.Name, &h.Database, &h.User, &h.Since)
		return h, err
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the prepared transactions holding old row versions")
	}
	rows, err = db.pool.Query(ctx, `SELECT slot_name::text, slot_type, coalesce(database::text, ''), active,
			coalesce(xmin IS NOT NULL AND age(xmin) > age($1::text::xid), false)
		FROM pg_replication_slots
		WHERE xmin IS NOT NULL AND age(xmin) > age($1::text::xid)
			OR catalog_xmin IS NOT NULL AND age(catalog_xmin) > age($1::text::xid)
		ORDER BY slot_name`, mark)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the replication slots holding old row versions")
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storeseal.Holder, error) {
		h := storeseal.Holder{Kind: storeseal.HolderSlot}
		var typ string
		var active, data bool
		err := r.Scan(&h.Name, &typ, &h.Database, &active, &data)
		h.State = typ + ", inactive"
		if active {
			h.State = typ + ", active"
		}
		h.CatalogOnly = !data
		return h, err
	})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the replication slots holding old row versions")
	}
	return append(append(out, prepared...), slots...), nil
}

// vacuumHeld runs vacuum (a VACUUM statement) after a rewrite that ended
// at mark: while other sessions hold the replaced versions it logs them
// and waits for them to end, at most wait (polling), then vacuums. The
// sessions still holding them then are returned: the versions they hold
// may remain in the files.
func (db *DB) vacuumHeld(ctx context.Context, what, vacuum, mark string, wait time.Duration) (*storeseal.OldVersions, error) {
	holders, err := db.horizonHolders(ctx, mark)
	if err != nil {
		return nil, err
	}
	// Only sessions are waited for: a prepared transaction or a slot does
	// not end by itself within a rotation's wait.
	if storeseal.Sessions(holders) > 0 && wait > 0 {
		db.logger().Warn("old row versions may remain: "+describe(holders)+" holds them; waiting for it to end before vacuuming",
			"operation", what, "wait", wait.String())
		deadline := time.Now().Add(wait)
		for storeseal.Sessions(holders) > 0 && time.Now().Before(deadline) {
			t := time.NewTimer(min(250*time.Millisecond, time.Until(deadline)))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			if holders, err = db.horizonHolders(ctx, mark); err != nil {
				return nil, err
			}
		}
	}
	if _, err := db.pool.Exec(ctx, vacuum); err != nil {
		return nil, portrait.Wrap(err, "cannot vacuum")
	}
	// A session that began before the vacuum's own snapshot but after mark
	// holds nothing of the rewrite: the holders are those of mark.
	if holders, err = db.horizonHolders(ctx, mark); err != nil || len(holders) == 0 {
		return nil, err
	}
	db.logger().Warn("old row versions may remain: "+describe(holders)+" holds them", "operation", what)
	return &storeseal.OldVersions{Holders: holders,
		Note: "row versions replaced by " + what + " may remain in the table files while " + describe(holders) +
			" holds them: end it (or wait for it; COMMIT PREPARED or ROLLBACK PREPARED a prepared transaction; drop a replication slot no consumer uses, or let its consumer catch up), then run VACUUM FULL on the tables (or the rotation again: it rewrites nothing and vacuums)"}, nil
}

func describe(hs []storeseal.Holder) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.String()
	}
	return strings.Join(parts, "; ")
}

func (db *DB) logger() *slog.Logger {
	if db.Log != nil {
		return db.Log
	}
	return slog.Default()
}
