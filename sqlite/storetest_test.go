package sqlite_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestStoreConformance holds the SQLite store to the rules every
// profile.Store keeps (see storetest).
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) profile.Store {
		db, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
