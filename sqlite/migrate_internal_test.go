package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// A store written before migration state/006 (profiles as a WITHOUT ROWID
// table) opens with every profile intact, read and written as before.
func TestProfilesRowidMigrationKeepsProfiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "state.db")+"?_pragma=page_size(16384)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/state/*.sql")
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		if base >= "006" {
			break
		}
		body, _ := migrations.ReadFile(name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		raw.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES (?, 0)`, base)
	}
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	var want []*portrait.Profile
	for i := range 300 {
		p := &portrait.Profile{ID: fmt.Sprintf("p_%03d", (i*7)%300), Traits: map[string]portrait.Trait{"note": {Value: fmt.Sprintf("%0*d", 20+i*40, i), Source: "crm", Time: at, MessageID: "m"}},
			EventCounts: map[string]int{"track": i}, EventCount: i, FirstSeen: at, LastSeen: at}
		doc, err := profiledoc.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO profiles (id, doc, updated_at) VALUES (?, ?, ?)`, p.ID, doc, i); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	raw.Close()

	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ddl string
	if err := db.stateR.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'profiles'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Fatalf("profiles is still a WITHOUT ROWID table: %s", ddl)
	}
	if n, _ := db.CountProfiles(ctx); n != len(want) {
		t.Fatalf("%d profiles after the migration, want %d (%s)", n, len(want), ddl)
	}
	for _, p := range want {
		got, err := db.Profile(ctx, p.ID)
		if err != nil || got == nil || got.Traits["note"].Value != p.Traits["note"].Value || got.EventCount != p.EventCount {
			t.Fatalf("profile %s after the migration: %+v, %v", p.ID, got, err)
		}
	}
	var prev string
	n := 0
	db.AllProfiles(ctx, func(p *portrait.Profile) error {
		if p.ID <= prev {
			t.Fatalf("AllProfiles out of id order: %s after %s", p.ID, prev)
		}
		prev = p.ID
		n++
		return nil
	})
	// Upserts keep one row per id.
	tx, _ := db.BeginState(ctx)
	want[0].EventCount = 1000
	if err := tx.PutProfiles(want[:10]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.CountProfiles(ctx); c != len(want) || n != len(want) {
		t.Fatalf("%d profiles after upserts (%d listed), want %d", c, n, len(want))
	}
	if got, _ := db.Profile(ctx, want[0].ID); got.EventCount != 1000 {
		t.Fatalf("upsert lost: %+v", got)
	}
}
