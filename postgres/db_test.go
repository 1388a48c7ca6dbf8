package postgres

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// openTest opens a store on a database of its own, dropped after the test.
func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = 4
	t.Cleanup(func() { db.Close() })
	return db
}

// Opening a store twice applies each migration once, and the schema holds
// every table of both the log and the derived state.
func TestOpenMigratesOnce(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			t.Fatalf("%d migrations recorded", n)
		}
		var parts int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'profiles'::regclass`).Scan(&parts); err != nil {
			t.Fatal(err)
		}
		if parts != 16 {
			t.Fatalf("profiles has %d partitions, want 16", parts)
		}
		db.Close()
	}
}

func TestRedactHidesThePassword(t *testing.T) {
	if got := redact("postgres://u:secret@h:5432/db"); got != "postgres://u:***@h:5432/db" {
		t.Fatal(got)
	}
	if got := redact("postgres://u@h/db"); got != "postgres://u@h/db" {
		t.Fatal(got)
	}
}

// The package's tests reuse emptied databases (pgtest.Main): creating and
// migrating one costs seconds on a loaded machine, and the package opens
// about two hundred.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, func(ctx context.Context, url string) error {
		db, err := Open(ctx, url)
		if err != nil {
			return err
		}
		return db.Close()
	}))
}

// A read-only database whose schema lacks a migration (the primary not
// upgraded yet) is refused at Open with the migration named, rather than
// failing later query by query.
func TestOpenReadOnlyChecksTheSchema(t *testing.T) {
	url := pgtest.Dedicated(t, "")
	ctx := context.Background()
	rw, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.pool.Exec(ctx, `DELETE FROM schema_migrations WHERE name = '005_rewrite_requests.sql'`); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	_, err = Open(ctx, url)
	if portrait.ErrorCode(err) != portrait.EUNAVAILABLE || !strings.Contains(portrait.ErrorMessage(err), "005_rewrite_requests.sql") {
		t.Errorf("opening a read-only store one migration behind: %v", err)
	}
}
