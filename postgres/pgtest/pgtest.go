// Package pgtest gives a test its own PostgreSQL database: created with a
// unique name on the server the machine provides, dropped when the test ends
// (or, in a package whose TestMain runs Main, emptied and handed to the next
// test, then dropped when the package's tests end).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the server tests use: PORTRAIT_TEST_POSTGRES, else the
// machine's local server (trust authentication, user postgres).
func ServerURL() string {
	if u := os.Getenv("PORTRAIT_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// URL creates a new database and returns its URL. Where no server answers
// the test is skipped, unless PORTRAIT_REQUIRE_SERVICES is set (as
// scripts/test sets it), where it fails: CI must not pass by skipping.
func URL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := ServerURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		if os.Getenv("PORTRAIT_REQUIRE_SERVICES") != "" {
			t.Fatalf("PostgreSQL is not answering at %s (scripts/setup starts it): %v", server, err)
		}
		t.Skipf("PostgreSQL is not answering at %s (start it, or set PORTRAIT_TEST_POSTGRES): %v", server, err)
	}
	defer conn.Close(ctx)
	if name := reuse(ctx, conn); name != "" {
		t.Cleanup(func() { release(server, name) })
		return withDatabase(t, server, name)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "portrait_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("cannot create a test database: %v", err)
	}
	t.Cleanup(func() { release(server, name) })
	return withDatabase(t, server, name)
}

func withDatabase(t testing.TB, server, name string) string {
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Creating a database (and migrating it) costs seconds on a loaded machine,
// tens of times per package. A package whose TestMain runs Main reuses
// them instead: a test's database is emptied when the test ends (its
// connections ended, its settings reset, every table truncated) and handed
// to the next test, provided its schema is still the one the store's
// migrations make (a test that dropped or altered a table leaves a database
// that is dropped instead). Main drops them all at the end.
var pool struct {
	sync.Mutex
	on    bool
	free  []string
	all   map[string]bool
	shape string            // the schema fingerprint of a reusable database
	seeds map[string]string // rows the migrations insert, by table (JSON)
}

// Main runs a package's tests with reused databases; prepare makes a new
// database what the tests expect (the store's migrations), and the schema
// it leaves is the one a database must still have to be reused. Use it as
// `func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, prepare)) }`.
func Main(m *testing.M, prepare func(ctx context.Context, url string) error) int {
	pool.Lock()
	pool.on, pool.all = true, map[string]bool{}
	pool.Unlock()
	if err := reference(prepare); err != nil {
		// No server, or it failed: tests create their own databases (and
		// skip or fail as URL decides).
		pool.Lock()
		pool.on = false
		pool.Unlock()
	}
	code := m.Run()
	pool.Lock()
	names := make([]string, 0, len(pool.all))
	for n := range pool.all {
		names = append(names, n)
	}
	pool.on, pool.free, pool.all = false, nil, nil
	pool.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if conn, err := pgx.Connect(ctx, ServerURL()); err == nil {
		for _, n := range names {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
		}
		conn.Close(ctx)
	}
	return code
}

// reuse takes an emptied database from the pool ("" when none).
func reuse(ctx context.Context, conn *pgx.Conn) string {
	pool.Lock()
	defer pool.Unlock()
	if !pool.on || len(pool.free) == 0 {
		return ""
	}
	name := pool.free[len(pool.free)-1]
	pool.free = pool.free[:len(pool.free)-1]
	return name
}

// release empties a test's database for the next test, or drops it.
func release(server, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, server)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	pool.Lock()
	on := pool.on
	if on {
		pool.all[name] = true
	}
	pool.Unlock()
	if on {
		if err := empty(ctx, server, name); err == nil {
			pool.Lock()
			if pool.on {
				pool.free = append(pool.free, name)
			}
			pool.Unlock()
			return
		}
		pool.Lock()
		delete(pool.all, name)
		pool.Unlock()
	}
	c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// empty ends a database's other connections, resets its settings and
// truncates its tables, if its schema is the reusable one.
func empty(ctx context.Context, server, name string) error {
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" RESET ALL"); err != nil {
		return err
	}
	u, err := url.Parse(server)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var shape string
	var tables []string
	if err := c.QueryRow(ctx, `SELECT coalesce(md5(string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name)), '')
		|| coalesce((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal), '')
		FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&shape); err != nil {
		return err
	}
	if err := c.QueryRow(ctx, `SELECT coalesce(array_agg(quote_ident(tablename)), '{}') FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`).Scan(&tables); err != nil {
		return err
	}
	pool.Lock()
	want := pool.shape
	pool.Unlock()
	if want == "" {
		// The reference database, just prepared by Main: what its tables
		// hold is what the migrations insert, restored after each truncate.
		seeds := map[string]string{}
		for _, t := range tables {
			var rows *string
			if err := c.QueryRow(ctx, `SELECT json_agg(t)::text FROM `+t+` t`).Scan(&rows); err != nil {
				return err
			}
			if rows != nil {
				seeds[t] = *rows
			}
		}
		pool.Lock()
		pool.shape, pool.seeds = shape, seeds
		pool.Unlock()
		want = shape
	}
	if shape != want || len(tables) == 0 {
		return fmt.Errorf("schema %s is not the reusable one", name)
	}
	// Partitions are truncated through their parents.
	var parents []string
	if err := c.QueryRow(ctx, `SELECT coalesce(array_agg(quote_ident(c.relname)), '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'schema_migrations'`).Scan(&parents); err != nil {
		return err
	}
	stmt := "TRUNCATE "
	for i, t := range parents {
		if i > 0 {
			stmt += ", "
		}
		stmt += t
	}
	if _, err = c.Exec(ctx, stmt+" RESTART IDENTITY CASCADE"); err != nil {
		return err
	}
	pool.Lock()
	seeds := pool.seeds
	pool.Unlock()
	for t, rows := range seeds {
		if _, err := c.Exec(ctx, `INSERT INTO `+t+` SELECT * FROM json_populate_recordset(NULL::`+t+`, $1::json)`, rows); err != nil {
			return err
		}
	}
	return nil
}

// reference creates the first database, prepares it and records its schema
// as the reusable one; it becomes the first free database.
func reference(prepare func(ctx context.Context, url string) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := ServerURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "portrait_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	u, err := url.Parse(server)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	if err := prepare(ctx, u.String()); err != nil {
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	release(server, name)
	return nil
}

// Dedicated creates a database of its own with the given CREATE DATABASE
// options (a collation, say) for a test that changes or needs a database
// unlike the others; it is dropped when the test ends, never reused. It
// skips or fails as URL does when no server answers, and returns "" with
// the test skipped when the server refuses the options (a collation it
// does not have), saying why.
func Dedicated(t testing.TB, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := ServerURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		if os.Getenv("PORTRAIT_REQUIRE_SERVICES") != "" {
			t.Fatalf("PostgreSQL is not answering at %s (scripts/setup starts it): %v", server, err)
		}
		t.Skipf("PostgreSQL is not answering at %s (start it, or set PORTRAIT_TEST_POSTGRES): %v", server, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "portrait_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" "+options); err != nil {
		t.Skipf("the server cannot create a database %s: %v", options, err)
		return ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(t, server, name)
}
