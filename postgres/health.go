package postgres

import (
	"context"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Recoveries lists what Open found wrong and repaired: nothing, here. The
// embedded store sets aside a damaged state file, or a state built from
// events its log lost; in PostgreSQL the log and the state are tables of
// one database, recovered together by PostgreSQL's own write-ahead log,
// so neither can be ahead of the other, and a damaged page is PostgreSQL's
// error to report, not a file this store could move aside.
func (db *DB) Recoveries() []portrait.Recovery {
	return nil
}

// incapacityProbe is how long Incapacities waits for the database: it
// answers /readyz, which must answer even when the database does not.
const incapacityProbe = 2 * time.Second

// Incapacities lists what the store cannot do now: write, when the
// database does not answer or accepts only reads (a hot standby after a
// failover, default_transaction_read_only). PostgreSQL does not tell a
// client how full its disk is; a full disk shows as failing writes.
func (db *DB) Incapacities() []portrait.Incapacity {
	ctx, cancel := context.WithTimeout(context.Background(), incapacityProbe)
	defer cancel()
	var readOnly string
	var standby bool
	err := db.pool.QueryRow(ctx, `SELECT current_setting('transaction_read_only'), pg_is_in_recovery()`).Scan(&readOnly, &standby)
	var why string
	switch {
	case err != nil:
		why = "PostgreSQL at " + redact(db.URL) + " does not answer: " + err.Error()
	case standby:
		why = "PostgreSQL at " + redact(db.URL) + " is a standby in recovery: it accepts only reads"
	case readOnly == "on":
		why = "PostgreSQL at " + redact(db.URL) + " accepts only reads (default_transaction_read_only)"
	default:
		return nil
	}
	return []portrait.Incapacity{
		{Cannot: "accept events", Reason: why},
		{Cannot: "update profiles", Reason: why},
	}
}
