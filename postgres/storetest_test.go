package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestStoreConformance holds the PostgreSQL store to the rules every
// profile.Store keeps (see storetest).
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) profile.Store { return openTest(t) })
}

// TestProcessorProperties runs the processor's properties (arrival order,
// failed commits, late events, retractions, rebuild) on PostgreSQL. A
// database takes seconds to create here, so the property test's hundreds
// of stores are two, emptied between uses.
func TestProcessorProperties(t *testing.T) {
	storetest.RunProcessor(t, storetest.Harness{
		Open:  func(t *testing.T) storetest.LogStore { return openTest(t) },
		Empty: func(t *testing.T, s storetest.LogStore) { emptyStore(t, s.(*DB)) },
	})
}

// emptyStore empties every table but the migrations' record, as a store
// just opened.
func emptyStore(t testing.TB, db *DB) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.pool.Query(ctx, `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND c.relname NOT IN ('schema_migrations', 'profile_changes_floor')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// DELETE, not TRUNCATE: the tables hold a few rows, and TRUNCATE
	// gives each of some forty tables new files (the empty takes seconds
	// on a loaded machine instead of milliseconds).
	b := &pgx.Batch{}
	for _, n := range tables {
		b.Queue(`DELETE FROM ` + n)
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE profile_changes_floor SET seq = 0`); err != nil {
		t.Fatal(err)
	}
}

// TestStoreReads checks the PostgreSQL store's reads against the answers
// every store gives (see storetest.RunReads).
func TestStoreReads(t *testing.T) {
	storetest.RunReads(t, func(t *testing.T) storetest.ReadStore { return openTest(t) })
}

// TestSameAnswersAsSQLite feeds one history to the embedded store and to
// PostgreSQL and compares every read (see storetest.RunSameAnswers).
func TestSameAnswersAsSQLite(t *testing.T) {
	ref, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	storetest.RunSameAnswers(t, ref, openTest(t))
}

// A sign-in and an audit record keep the answer caches' version; an event
// moves it (see storetest.RunContentVersion).
func TestContentVersion(t *testing.T) {
	storetest.RunContentVersion(t, openTest(t))
}
