package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/segment"
)

// A history written before migration log/036 with the same change listed
// twice (two nodes recording it, moved here from a shared store) opens
// with each change once, numbered per (segment, profile), and goes on
// from there.
func TestSegmentEventsMigrationRemovesDuplicates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/log/*.sql")
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		if base >= "036" {
			break
		}
		body, _ := migrations.ReadFile(name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		raw.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES (?, 0)`, base)
	}
	for _, r := range [][3]string{
		{"s", "p1", "enter"}, {"s", "p1", "enter"}, {"s", "p2", "enter"}, {"s", "p1", "exit"},
		{"s", "p1", "exit"}, {"s", "p1", "enter"}, {"t", "p1", "enter"}, {"s", "p2", "enter"},
	} {
		if _, err := raw.Exec(`INSERT INTO segment_events (segment_id, profile_id, kind, at) VALUES (?, ?, ?, 1)`, r[0], r[1], r[2]); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.logR.QueryContext(ctx, `SELECT segment_id || '/' || profile_id || '/' || kind || '/' || version FROM segment_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	rows.Close()
	want := []string{"s/p1/enter/1", "s/p2/enter/1", "s/p1/exit/2", "s/p1/enter/3", "t/p1/enter/1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history after the migration %v, want %v", got, want)
	}
	evs := []*segment.Event{{Segment: "s", Profile: "p1", Kind: "enter", At: time.Now()}, {Segment: "s", Profile: "p1", Kind: "exit", At: time.Now()}}
	if err := db.AppendSegmentEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if evs[0].ID != 0 || evs[1].ID == 0 {
		t.Errorf("after the migration: the repeated entry got id %d, the exit %d", evs[0].ID, evs[1].ID)
	}
}
