package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// logRows inserts events as Append would (seq after the log's end).
func logRows(t *testing.T, db *DB, source string, received ...time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, at := range received {
		if _, err := db.pool.Exec(ctx, `INSERT INTO events (seq, message_id, type, source, ts, received_at, body)
			SELECT coalesce(max(seq), 0) + 1, 'm' || (coalesce(max(seq), 0) + 1), 'track', $1, $2, $2, '{}' FROM events`, source, micros(at)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSourceActivity(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 5, 10, 30, 20, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if acts, err := db.SourceActivity(ctx); err != nil || len(acts) != 0 {
		t.Fatalf("empty: %+v %v", acts, err)
	}
	for h := 72; h >= 2; h-- {
		logRows(t, db, "web", now.Add(-time.Duration(h)*time.Hour))
	}
	for k := 1; k <= 5; k++ {
		for j := 0; j < k; j++ {
			logRows(t, db, "app", now.Truncate(time.Minute).Add(-time.Duration(k)*time.Minute).Add(time.Duration(j)*time.Second))
		}
	}
	// An import resumed now keeps the time it was first received.
	for j := 0; j < 7; j++ {
		logRows(t, db, "crm", now.Add(-3*time.Hour))
	}
	quarantineRow(t, db, "app", "bad", []byte("{}"), now, "")
	quarantineRow(t, db, "forms", "bad", []byte("{}"), now, "")
	want := map[string]portrait.SourceActivity{
		"web":   {Events: 71, LastEvent: now.Add(-2 * time.Hour)},
		"app":   {Events: 15, Rejected: 1, LastEvent: now.Truncate(time.Minute).Add(-time.Minute)},
		"crm":   {Events: 7, LastEvent: now.Add(-3 * time.Hour)},
		"forms": {Rejected: 1},
	}
	check := func(db *DB, when string) {
		t.Helper()
		acts, err := db.SourceActivity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(acts) != len(want) {
			t.Fatalf("%s: sources %+v", when, acts)
		}
		for _, a := range acts {
			w := want[a.Source]
			if a.Events != w.Events || a.Rejected != w.Rejected || !a.LastEvent.Equal(w.LastEvent) {
				t.Errorf("%s: %s: %+v, want %+v", when, a.Source, a, w)
			}
		}
	}
	check(db, "first")
	check(db, "again, nothing new")

	// Later appends add to the totals; a second node shares them, and
	// both advancing at once count each event once.
	other, err := Open(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Rounds of one new event each, every round advanced by several
	// callers on both nodes at once.
	const rounds = 15
	for r := 0; r < rounds; r++ {
		logRows(t, db, "web", now.Add(time.Minute))
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := db
				if i%2 == 1 {
					d = other
				}
				if _, err := d.SourceActivity(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	quarantineRow(t, db, "web", "bad", []byte("{}"), now, "")
	w := want["web"]
	w.Events, w.Rejected, w.LastEvent = 71+rounds, 1, now.Add(time.Minute)
	want["web"] = w
	check(db, "after more")
	check(other, "on the other node")

	// A log emptied and filled again is counted from its start.
	if _, err := db.pool.Exec(ctx, `DELETE FROM events; DELETE FROM quarantine`); err != nil {
		t.Fatal(err)
	}
	logRows(t, db, "fresh", now)
	want = map[string]portrait.SourceActivity{"fresh": {Events: 1, LastEvent: now}}
	check(db, "after a new log")
}
