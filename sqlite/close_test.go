package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
)

// A clean close leaves each store one file: the write-ahead logs are
// checkpointed into the databases and truncated, so a copy of the data
// directory without the -wal files (a backup, a move) holds every event.
func TestCloseCheckpointsTheWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*portrait.Event
	for i := range 500 {
		evs = append(evs, event(fmt.Sprintf("m%d", i)))
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	// A reader has been used, as a serving store's have.
	if n, err := db.CountEvents(ctx); err != nil || n != 500 {
		t.Fatalf("count %d %v", n, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "events.db-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("the test needs a WAL with the events before the close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"events.db-wal", "state.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil && fi.Size() > 0 {
			t.Errorf("%s is %d bytes after a clean close, want it checkpointed and truncated", f, fi.Size())
		}
	}
	// The database file alone holds the events: copied without its WAL.
	copyDir := t.TempDir()
	body, err := os.ReadFile(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copyDir, "events.db"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(copyDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != 500 {
		t.Fatalf("events.db alone holds %d events (%v), want 500", n, err)
	}
}
