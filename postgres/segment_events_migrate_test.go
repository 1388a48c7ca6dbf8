package postgres

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
)

// A history written before migration 065 by two api nodes, each listing
// the changes it evaluated, opens with each change once, numbered per
// (segment, profile), and goes on from there.
func TestSegmentEventsMigrationRemovesDuplicates(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 065.
	for _, q := range []string{
		`DROP TABLE segment_outbox`,
		`DROP INDEX segment_events_change`,
		`ALTER TABLE segment_events DROP COLUMN version`,
		`DELETE FROM schema_migrations WHERE name = '065_segment_events_once.sql'`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, r := range [][3]string{
		{"s", "p1", "enter"}, {"s", "p1", "enter"}, {"s", "p2", "enter"}, {"s", "p1", "exit"},
		{"s", "p1", "exit"}, {"s", "p1", "enter"}, {"t", "p1", "enter"}, {"s", "p2", "enter"},
	} {
		if _, err := db.pool.Exec(ctx, `INSERT INTO segment_events (segment_id, profile_id, kind, at) VALUES ($1, $2, $3, 1)`, r[0], r[1], r[2]); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db, err = Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []string
	if err := db.pool.QueryRow(ctx, `SELECT array_agg(segment_id || '/' || profile_id || '/' || kind || '/' || version ORDER BY id) FROM segment_events`).Scan(&got); err != nil {
		t.Fatal(err)
	}
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
