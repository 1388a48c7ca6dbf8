package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// A retention pass stopped between its tombstone batches (a failure
// injected into the third batch, as a crash there would leave it) has
// committed the carried-forward events and the first two batches; the
// next start finishes it. The store is then what a pass that ran whole
// leaves (the same log, event lists and profiles: no expired event kept,
// none counted twice), a second pass finds nothing to do, and a rebuild
// gives the live profiles.
func TestRetentionPassResumedBetweenBatches(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	limit := t0.Add(24 * time.Hour)
	const people, per = 50, 100
	src := t.TempDir()
	db, err := Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*portrait.Event
	for j := 0; j < per; j++ {
		for k := 0; k < people; k++ {
			at := t0.Add(time.Duration(j*people+k) * time.Second)
			e := &portrait.Event{MessageID: fmt.Sprintf("m-%d-%d", k, j), Source: "web", AnonymousID: fmt.Sprintf("a%d", k),
				Type: portrait.EventTrack, Name: "Viewed", Properties: []byte(fmt.Sprintf(`{"n":%d}`, j)), Timestamp: at, ReceivedAt: at}
			if j == 1 || j == per-1 {
				e.Type, e.Name, e.Properties = portrait.EventIdentify, "", nil
				e.UserID = fmt.Sprintf("u%d", k)
				e.Traits = []byte(fmt.Sprintf(`{"email":"p%d@example.com","name":"Person %d v%d"}`, k, k, j))
			}
			evs = append(evs, e)
		}
	}
	for k := 0; k < people; k++ {
		at := limit.Add(time.Duration(k) * time.Second)
		evs = append(evs, &portrait.Event{MessageID: fmt.Sprintf("kept-%d", k), Source: "web", UserID: fmt.Sprintf("u%d", k),
			Type: portrait.EventTrack, Name: "Bought", Timestamp: at, ReceivedAt: at})
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	newProc := func(db *DB) *profile.Processor {
		p := profile.NewProcessor(db, identity.DefaultRules().Compile())
		p.Now = func() time.Time { return limit.Add(48 * time.Hour) }
		last, err := db.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newProc(db)
	db.Close()
	scratch := func(ctx context.Context) (profile.ScratchStore, error) { return Open(ctx, t.TempDir()) }
	count := func(db *DB, q string, args ...any) int {
		var n int
		if err := db.logR.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The pass run whole.
	whole := t.TempDir()
	copyDir(t, src, whole)
	a, err := Open(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.tombBatch = 1000
	if _, err := newProc(a).Compact(ctx, a, limit, scratch); err != nil {
		t.Fatal(err)
	}
	want := storeSnapshot(t, a)

	// The pass stopped in its third batch of tombstones.
	stop := func() (string, *DB) {
		dir := t.TempDir()
		copyDir(t, src, dir)
		b, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		b.tombBatch = 1000
		if _, err := b.logW.ExecContext(ctx, `CREATE TRIGGER stop_pass BEFORE UPDATE OF type ON events WHEN NEW.type = '$erased' AND OLD.seq = 2500
			BEGIN SELECT RAISE(ABORT, 'stopped in the third batch'); END`); err != nil {
			t.Fatal(err)
		}
		if _, err := newProc(b).Compact(ctx, b, limit, scratch); err == nil || !strings.Contains(err.Error(), "stopped in the third batch") {
			t.Fatalf("pass: %v, want the injected failure", err)
		}
		tombs := count(b, `SELECT count(*) FROM events WHERE type = ?`, portrait.EventErased)
		carried := count(b, `SELECT count(*) FROM events WHERE type = ?`, portrait.EventRetained)
		pending := count(b, `SELECT count(*) FROM retention_runs WHERE pending IS NOT NULL`)
		t.Logf("stopped: %d tombstones, %d carried-forward events, %d runs pending", tombs, carried, pending)
		if tombs != 2000 || carried != people || pending != 1 {
			t.Fatalf("stopped in the third batch: %d tombstones, %d carried-forward events, %d runs pending; want the first two batches (2000), %d, 1",
				tombs, carried, pending, people)
		}
		if _, err := b.logW.ExecContext(ctx, `DROP TRIGGER stop_pass`); err != nil {
			t.Fatal(err)
		}
		return dir, b
	}

	// Without a restart, the next pass finishes it first: had it read
	// the expired events left with the carried-forward events, it would
	// have counted them twice.
	_, c := stop()
	defer c.Close()
	if run, err := newProc(c).Compact(ctx, c, limit, scratch); err != nil || run.Deleted != 0 {
		t.Fatalf("the next pass: %+v, %v; want it to finish the stopped one and find nothing more", run, err)
	}
	if got := storeSnapshot(t, c); !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s after the next pass:\n%v\nafter the whole pass:\n%v", k, got[k], want[k])
			}
		}
		t.FailNow()
	}

	stopped, b := stop()
	b.Close()

	// The next start finishes it.
	b, err = Open(ctx, stopped)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n := count(b, `SELECT count(*) FROM retention_runs WHERE pending IS NOT NULL`); n != 0 {
		t.Fatalf("%d runs still pending after the start", n)
	}
	if n := count(b, `SELECT count(*) FROM events WHERE ts < ? AND type <> ? AND type <> ?`, micros(limit), portrait.EventErased, portrait.EventRetained); n != 0 {
		t.Fatalf("%d expired events left after the start", n)
	}
	got := storeSnapshot(t, b)
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s after the resumed pass:\n%v\nafter the whole pass:\n%v", k, got[k], want[k])
			}
		}
		t.FailNow()
	}
	p := newProc(b)
	run, err := p.Compact(ctx, b, limit, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if run.Deleted != 0 {
		t.Fatalf("a second pass expired %d events", run.Deleted)
	}
	if got := storeSnapshot(t, b); !reflect.DeepEqual(got["profiles"], want["profiles"]) {
		t.Fatal("a second pass changed the profiles")
	}
	if err := b.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	newProc(b)
	if got := storeSnapshot(t, b); !reflect.DeepEqual(got["profiles"], want["profiles"]) {
		t.Fatalf("the rebuild differs from the live profiles:\n%v\nwant\n%v", got["profiles"], want["profiles"])
	}
}

// storeSnapshot is what a retention pass leaves: the log (sequence
// number, type, message id), the event lists, and the profiles.
func storeSnapshot(t *testing.T, db *DB) map[string][]string {
	ctx := context.Background()
	out := map[string][]string{}
	rows, err := db.logR.QueryContext(ctx, `SELECT seq, type, message_id FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq int64
		var typ, msg string
		if err := rows.Scan(&seq, &typ, &msg); err != nil {
			t.Fatal(err)
		}
		out["log"] = append(out["log"], fmt.Sprint(seq, " ", typ, " ", msg))
	}
	rows.Close()
	rows, err = db.stateR.QueryContext(ctx, `SELECT profile_id, seq FROM profile_events ORDER BY profile_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid string
		var seq int64
		if err := rows.Scan(&pid, &seq); err != nil {
			t.Fatal(err)
		}
		out["lists"] = append(out["lists"], fmt.Sprint(pid, " ", seq))
	}
	rows.Close()
	if err := db.AllProfiles(ctx, func(q *portrait.Profile) error {
		b, err := json.Marshal(q)
		out["profiles"] = append(out["profiles"], string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
