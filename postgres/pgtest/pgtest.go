// Package pgtest gives a test its own PostgreSQL database: created with a
// unique name on the server the machine provides, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
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
	b := make([]byte, 6)
	rand.Read(b)
	name := "portrait_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("cannot create a test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Logf("cannot drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("cannot drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
