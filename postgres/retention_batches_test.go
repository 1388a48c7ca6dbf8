package postgres

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
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// A retention pass stopped between its tombstone batches (a failure
// injected into the third batch) has committed the carried-forward
// events and the first two batches; the next start finishes it. The
// database is then what a pass that ran whole leaves (the same log, event
// lists and profiles), a second pass finds nothing to do, and a rebuild
// gives the live profiles. (Before batches, the pass was one transaction:
// stopped anywhere, it left nothing, and its write-ahead log grew with
// every expired event.)
func TestRetentionPassResumedBetweenBatches(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	limit := t0.Add(24 * time.Hour)
	const people, per = 50, 100
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
	open := func(url string) *DB {
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		db.tombBatch = 1000
		return db
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
	load := func(db *DB) {
		for i := 0; i < len(evs); i += 1000 {
			if _, err := db.Append(ctx, evs[i:min(i+1000, len(evs))], nil); err != nil {
				t.Fatal(err)
			}
		}
		newProc(db)
	}
	scratch := func(ctx context.Context) (profile.ScratchStore, error) { return Open(ctx, pgtest.URL(t)) }
	count := func(db *DB, q string, args ...any) int {
		var n int
		if err := db.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	a := open(pgtest.URL(t))
	defer a.Close()
	load(a)
	if _, err := newProc(a).Compact(ctx, a, limit, scratch); err != nil {
		t.Fatal(err)
	}
	want := pgSnapshot(t, a)

	stop := func() (string, *DB) {
		url := pgtest.URL(t)
		b := open(url)
		load(b)
		if _, err := b.pool.Exec(ctx, `CREATE FUNCTION stop_pass() RETURNS trigger LANGUAGE plpgsql AS $f$
			BEGIN IF OLD.seq = 2500 AND NEW.type = '$erased' THEN RAISE EXCEPTION 'stopped in the third batch'; END IF; RETURN NEW; END $f$`); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `CREATE TRIGGER stop_pass BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION stop_pass()`); err != nil {
			t.Fatal(err)
		}
		if _, err := newProc(b).Compact(ctx, b, limit, scratch); err == nil || !strings.Contains(err.Error(), "stopped in the third batch") {
			t.Fatalf("pass: %v, want the injected failure", err)
		}
		tombs := count(b, `SELECT count(*) FROM events WHERE type = $1`, portrait.EventErased)
		carried := count(b, `SELECT count(*) FROM events WHERE type = $1`, portrait.EventRetained)
		pending := count(b, `SELECT count(*) FROM retention_runs WHERE pending IS NOT NULL`)
		t.Logf("stopped: %d tombstones, %d carried-forward events, %d runs pending", tombs, carried, pending)
		if tombs != 2000 || carried != people || pending != 1 {
			t.Fatalf("stopped in the third batch: %d tombstones, %d carried-forward events, %d runs pending; want the first two batches (2000), %d, 1",
				tombs, carried, pending, people)
		}
		if _, err := b.pool.Exec(ctx, `DROP TRIGGER stop_pass ON events`); err != nil {
			t.Fatal(err)
		}
		return url, b
	}

	// Without a restart, the next pass finishes it first.
	_, c := stop()
	defer c.Close()
	if run, err := newProc(c).Compact(ctx, c, limit, scratch); err != nil || run.Deleted != 0 {
		t.Fatalf("the next pass: %+v, %v; want it to finish the stopped one and find nothing more", run, err)
	}
	if got := pgSnapshot(t, c); !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s after the next pass:\n%v\nafter the whole pass:\n%v", k, got[k], want[k])
			}
		}
		t.FailNow()
	}

	url, b := stop()
	b.Close()

	b = open(url) // the start finishes the pass
	defer b.Close()
	if n := count(b, `SELECT count(*) FROM retention_runs WHERE pending IS NOT NULL`); n != 0 {
		t.Fatalf("%d runs still pending after the start", n)
	}
	if n := count(b, `SELECT count(*) FROM events WHERE ts < $1 AND type <> $2 AND type <> $3`, micros(limit), portrait.EventErased, portrait.EventRetained); n != 0 {
		t.Fatalf("%d expired events left after the start", n)
	}
	got := pgSnapshot(t, b)
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s after the resumed pass:\n%v\nafter the whole pass:\n%v", k, got[k], want[k])
			}
		}
		t.FailNow()
	}
	run, err := newProc(b).Compact(ctx, b, limit, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if run.Deleted != 0 {
		t.Fatalf("a second pass expired %d events", run.Deleted)
	}
	if err := b.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	newProc(b)
	if got := pgSnapshot(t, b); !reflect.DeepEqual(got["profiles"], want["profiles"]) {
		t.Fatalf("the rebuild differs from the live profiles:\n%v\nwant\n%v", got["profiles"], want["profiles"])
	}
}

// pgSnapshot is what a retention pass leaves: the log (sequence number,
// type, message id), the event lists, and the profiles.
func pgSnapshot(t *testing.T, db *DB) map[string][]string {
	ctx := context.Background()
	out := map[string][]string{}
	for name, q := range map[string]string{
		"log":   `SELECT seq::text || ' ' || type || ' ' || message_id FROM events ORDER BY seq`,
		"lists": `SELECT profile_id || ' ' || seq::text FROM profile_events ORDER BY profile_id, seq`,
	} {
		rows, err := db.pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[name] = append(out[name], s)
		}
		rows.Close()
	}
	if err := db.AllProfiles(ctx, func(q *portrait.Profile) error {
		b, err := json.Marshal(q)
		out["profiles"] = append(out["profiles"], string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
