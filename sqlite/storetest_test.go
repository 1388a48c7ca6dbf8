package sqlite_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

func openStore(t testing.TB) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStoreConformance holds the SQLite store to the rules every
// profile.Store keeps (see storetest).
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) profile.Store { return openStore(t) })
}

// TestProcessorProperties runs the processor's properties (arrival order,
// failed commits, late events, retractions, rebuild) on the SQLite store.
func TestProcessorProperties(t *testing.T) {
	storetest.RunProcessor(t, storetest.Harness{Open: func(t *testing.T) storetest.LogStore { return openStore(t) }})
}

// TestStoreReads checks the SQLite store's reads against the answers
// every store gives (see storetest.RunReads).
func TestStoreReads(t *testing.T) {
	storetest.RunReads(t, func(t *testing.T) storetest.ReadStore { return openStore(t) })
}

// A sign-in and an audit record keep the answer caches' version; an event
// moves it (see storetest.RunContentVersion).
func TestContentVersion(t *testing.T) {
	storetest.RunContentVersion(t, openStore(t))
}
