package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
)

// An export reads each file as of one moment: events appended while it
// runs are not in it, and it holds every table but the migrations' own
// bookkeeping and SQLite's.
func TestExportTablesIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	db := openConfig(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	event := func(i int) *portrait.Event {
		return &portrait.Event{MessageID: fmt.Sprintf("m%d", i), Type: portrait.EventTrack, Source: "web", UserID: "u", Name: "Viewed", Timestamp: at, ReceivedAt: at}
	}
	for i := 0; i < 5; i++ {
		if _, err := db.Append(ctx, []*portrait.Event{event(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int64{}
	columns := map[string][]string{}
	appended := false
	err := db.ExportTables(ctx, func(tb sqlite.ExportTable, rows *sqlite.ExportRows) error {
		if tb.File == "events.db" && !appended {
			// The log's snapshot is taken: this append comes after it.
			appended = true
			if _, err := db.Append(ctx, []*portrait.Event{event(99)}, nil); err != nil {
				return err
			}
		}
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				return err
			}
		}
		counts[tb.Name] = rows.Count()
		columns[tb.Name] = tb.Columns
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts["events"] != 5 {
		t.Errorf("the export holds %d events, want the 5 before it began", counts["events"])
	}
	if n, _ := db.CountEvents(ctx); n != 6 {
		t.Errorf("the log holds %d events", n)
	}
	for _, skipped := range []string{"schema_migrations", "sqlite_sequence"} {
		if _, ok := counts[skipped]; ok {
			t.Errorf("%s exported", skipped)
		}
	}
	for _, table := range []string{"events", "profiles", "keys", "audit", "account_edits", "segment_events", "checkpoints"} {
		if _, ok := counts[table]; !ok {
			t.Errorf("%s not exported (%v)", table, counts)
		}
	}
	if got := fmt.Sprint(columns["events"]); got != "[seq message_id type source ts received_at body]" {
		t.Errorf("events' columns %s", got)
	}
}
