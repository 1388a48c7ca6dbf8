package postgres

import (
	"context"
	"os"
	"testing"

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
