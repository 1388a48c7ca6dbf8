package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

// customerEvents are n events about users customers (Chinese names and
// mobile numbers), message ids prefix-0..
func customerEvents(prefix string, n, users int) []*portrait.Event {
	names := []string{"王芳", "李伟", "张敏", "刘洋", "陈静"}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	out := make([]*portrait.Event, n)
	for i := range out {
		u := i % users
		e := &portrait.Event{MessageID: fmt.Sprintf("%s-%d", prefix, i), Type: "identify", UserID: fmt.Sprintf("u%d", u), Source: "web",
			Timestamp: at.Add(time.Duration(i) * time.Second), ReceivedAt: at.Add(time.Duration(i) * time.Second),
			Traits: []byte(fmt.Sprintf(`{"name":%q,"phone":"+86138%08d","city":"上海市"}`, names[u%len(names)], u))}
		out[i] = e
	}
	return out
}

func appendAll(t *testing.T, db *sqlite.DB, evs []*portrait.Event) int64 {
	t.Helper()
	res, err := db.Append(context.Background(), evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != len(evs) {
		t.Fatalf("accepted %d of %d", res.Accepted, len(evs))
	}
	return res.LastSeq
}

func catchUp(t *testing.T, db *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	last, err := db.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := profile.NewProcessor(db, identity.DefaultRules()).CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashWithLostLogTail leaves in a new directory what a crash leaves when
// the event log's write-ahead log loses its last pages: events.db holds
// the first events (checkpointed into the file by a clean close), the
// later ones were only in its WAL, which is gone, while state.db was built
// from all of them.
func crashWithLostLogTail(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, db, customerEvents("kept", 5, 3))
	db.Close()
	// The first five are copied into events.db itself, as SQLite's
	// automatic checkpoint does once the WAL has grown.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if last := appendAll(t, db, customerEvents("lost", 5, 3)); last != 10 {
		t.Fatalf("last seq %d, want 10", last)
	}
	catchUp(t, db)
	crash := t.TempDir()
	// The five later events are only in events.db-wal, which is not copied.
	copyFile(t, filepath.Join(dir, "events.db"), filepath.Join(crash, "events.db"))
	db.Close() // the state's WAL is checkpointed into state.db
	copyFile(t, filepath.Join(dir, "state.db"), filepath.Join(crash, "state.db"))
	return crash
}

func checkSetAside(t *testing.T, db *sqlite.DB, want string) portrait.Recovery {
	t.Helper()
	rs := db.Recoveries()
	if len(rs) != 1 {
		t.Fatalf("recoveries %+v, want one", rs)
	}
	r := rs[0]
	if !strings.Contains(r.Problem, want) {
		t.Errorf("problem %q does not say %q", r.Problem, want)
	}
	if r.MovedTo == "" || !strings.Contains(r.Action, "rebuilt from the event log") {
		t.Errorf("recovery %+v: want the state moved aside and rebuilt", r)
	}
	if st, err := os.Stat(r.MovedTo); err != nil || st.Size() == 0 {
		t.Errorf("the state moved aside to %s is not kept: %v", r.MovedTo, err)
	}
	if seq, err := db.Checkpoint(context.Background(), profile.CheckpointName); err != nil || seq != 0 {
		t.Errorf("checkpoint %d (%v) after recovery, want 0: the state starts afresh", seq, err)
	}
	return r
}

// When the log's last pages are lost, the state was built from events the
// log no longer has, and the next events would get their sequence numbers
// and be skipped as applied. Open sees the processor's checkpoint past the
// log's end, moves the state aside and starts it afresh; the processor
// rebuilds it, and a new event reaches its profile.
func TestOpenSetsAsideStateAheadOfTruncatedLog(t *testing.T) {
	ctx := context.Background()
	crash := crashWithLostLogTail(t)
	db := open(t, crash)
	checkSetAside(t, db, "ends at sequence number 5, but the profiles state was built from events up to 10")
	catchUp(t, db)
	if n, _ := db.CountProfiles(ctx); n != 3 {
		t.Errorf("%d profiles rebuilt from the 5 remaining events, want 3", n)
	}
	// The next event gets sequence number 6, once taken by a lost event.
	e := customerEvents("after", 1, 1)[0]
	e.UserID = "u-new"
	if seq := appendAll(t, db, []*portrait.Event{e}); seq != 6 {
		t.Fatalf("new event at %d, want 6", seq)
	}
	catchUp(t, db)
	p, err := db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u-new"})
	if err != nil || p == nil {
		t.Fatalf("the event acknowledged after the recovery is in no profile: %v", err)
	}
	// A clean restart finds nothing to repair.
	db.Close()
	db2 := open(t, crash)
	if rs := db2.Recoveries(); len(rs) != 0 {
		t.Errorf("recoveries on a sound store: %+v", rs)
	}
}

// The same loss, after which new events took the lost numbers before the
// state was checked (here written into events.db directly): the checkpoint
// is no longer past the end, but the event at it is another one.
func TestOpenSetsAsideStateWhoseEventNumbersWereReused(t *testing.T) {
	crash := crashWithLostLogTail(t)
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(crash, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := raw.Exec(`INSERT INTO events (message_id, type, source, ts, received_at, body) VALUES (?, 'track', 'web', 0, 0, '{}')`, fmt.Sprintf("reused-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	db := open(t, crash)
	checkSetAside(t, db, `event 10 of the log is "reused-4", but the profiles state was built with "lost-4" at that number`)
}

// A damaged state.db is moved aside, never deleted, and started afresh;
// the log is untouched and the processor rebuilds the same profiles.
func TestOpenSetsAsideDamagedState(t *testing.T) {
	// One store of 3,000 events and 1,500 profiles, closed, is the
	// starting point of every case: each damages a copy of it (building it
	// took most of each case's time under -race).
	ctx := context.Background()
	orig := t.TempDir()
	db, err := sqlite.Open(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, db, customerEvents("e", 3000, 1500))
	catchUp(t, db)
	db.Close()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
	}{
		{"garbled header", func(t *testing.T, path string, size int64) { garble(t, path, 0, 100) }},
		{"garbled pages", func(t *testing.T, path string, size int64) { garble(t, path, size/2, 3*16384) }},
		{"truncated", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size/3); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(orig)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "state.db")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() < 20*16384 {
				t.Fatalf("state.db has %d bytes: too small to damage its middle", st.Size())
			}
			tc.damage(t, path, st.Size())
			db := open(t, dir)
			checkSetAside(t, db, "state.db is damaged")
			if last, _ := db.LastSeq(ctx); last != 3000 {
				t.Fatalf("the log ends at %d after the recovery, want 3000", last)
			}
			catchUp(t, db)
			if n, _ := db.CountProfiles(ctx); n != 1500 {
				t.Errorf("%d profiles rebuilt, want 1500", n)
			}
		})
	}
}

func garble(t *testing.T, path string, at, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// A state.db that cannot be opened for a reason other than damage (here:
// it is a directory) stops Open and is left where it is.
func TestOpenLeavesUnreadableStateInPlace(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "state.db"), 0o750); err != nil {
		t.Fatal(err)
	}
	if db, err := sqlite.Open(context.Background(), dir); err == nil {
		db.Close()
		t.Fatal("Open succeeded on a state.db that is a directory")
	}
	if st, err := os.Stat(filepath.Join(dir, "state.db")); err != nil || !st.IsDir() {
		t.Fatalf("state.db was moved: %v", err)
	}
}
