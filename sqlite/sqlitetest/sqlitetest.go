// Package sqlitetest gives tests empty SQLite stores cheaply. Opening a
// new directory runs every migration of the log and the state, each its
// own transaction, the log's synced to disk: under -race on a loaded
// machine about half a second of CPU and several seconds of waiting per
// store, and property tests open hundreds. A store that sqlite.Open
// created and Close left (two files) is made once per test process; every
// new directory gets a copy of its files, and sqlite.Open on it finds
// nothing to migrate. Migrating a new directory is still what the first
// store of each process does, and what tests opening sqlite.Open on a
// directory of their own do.
package sqlitetest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portrait-cdp/portrait/sqlite"
)

var (
	once     sync.Once
	files    map[string][]byte
	buildErr error
)

// template opens and closes a store in a directory of its own, keeps its
// files and removes the directory.
func template() (map[string][]byte, error) {
	once.Do(func() {
		dir, err := os.MkdirTemp("", "portrait-sqlitetest-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		db, err := sqlite.Open(context.Background(), dir)
		if err != nil {
			buildErr = err
			return
		}
		if err := db.Close(); err != nil {
			buildErr = err
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			buildErr = err
			return
		}
		out := map[string][]byte{}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				buildErr = err
				return
			}
			out[e.Name()] = b
		}
		files = out
	})
	return files, buildErr
}

// Seed puts an empty, migrated store into dir when dir is missing or
// empty, so that a test's own sqlite.Open on it has nothing to migrate. A
// directory with anything in it (a store to reopen, files a test laid out
// or damaged) is left as it is.
func Seed(t testing.TB, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return
	}
	fs, err := template()
	if err != nil {
		t.Fatalf("sqlitetest: cannot make the template store: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range fs {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Dir is a new temporary directory (removed when the test ends) holding
// an empty store.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	Seed(t, dir)
	return dir
}

// Open opens an empty store in a new temporary directory; it is closed
// when the test ends.
func Open(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
