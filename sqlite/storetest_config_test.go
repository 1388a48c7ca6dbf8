package sqlite_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

func openConfig(t *testing.T) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConfigConformance holds the SQLite store to what every store keeps
// beside the log (storetest/config.go): it is the specification the
// PostgreSQL store is checked against.
func TestConfigConformance(t *testing.T) {
	storetest.RunConfig(t, func(t *testing.T) storetest.ConfigStore { return openConfig(t) })
}

// The behaviour summaries, with the fixture written as the processor
// writes: appended, then applied in a state transaction.
func TestConfigBehaviour(t *testing.T) {
	ctx := context.Background()
	db := openConfig(t)
	b := storetest.BehaviourFixture()
	if _, err := db.Append(ctx, b.Events, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Profiles {
		if err := tx.PutProfile(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range b.Events {
		if b.Owner[i] != "" {
			if err := tx.AddProfileEvent(b.Owner[i], e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for old, id := range b.Aliases {
		if err := tx.PutAlias(old, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckBehaviour(t, db, b)
}
