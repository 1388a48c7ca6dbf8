package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

func openState(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func testProfile(id string) *portrait.Profile {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{"plan": {Value: "pro", Source: "web", Time: at, MessageID: "m-" + id}},
		EventCounts: map[string]int{"track": 1}, FirstSeen: at, LastSeen: at, EventCount: 1,
		FirstKey: portrait.EventKey{Time: at, MessageID: "m-" + id}, LastKey: portrait.EventKey{Time: at, MessageID: "m-" + id}}
}

// putConcurrently writes n profiles named prefix0.. from several goroutines,
// as the processor does while enriching.
func putConcurrently(t *testing.T, tx profile.StateTx, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := tx.PutProfile(testProfile(fmt.Sprintf("%s%04d", prefix, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A flushed transaction goes to the writer in parts: profiles put from
// many goroutines after the flush all land, with the writes before it,
// and the transaction can no longer read.
func TestFlushedTransactionStreamsProfiles(t *testing.T) {
	ctx := context.Background()
	db, _ := openState(t)
	tx, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := portrait.Identifier{Type: "user_id", Value: "u1"}
	if err := tx.PutIdentity(id, "p0000", portrait.EventKey{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Profile("p0000"); portrait.ErrorCode(err) != portrait.EINTERNAL {
		t.Fatalf("read after flush: %v, want an internal error", err)
	}
	if _, err := tx.ProfileEventSeqs("p0000"); portrait.ErrorCode(err) != portrait.EINTERNAL {
		t.Fatalf("event list after flush: %v, want an internal error", err)
	}
	putConcurrently(t, tx, "p", 2000) // several parts of flushRows
	if err := tx.SetCheckpoint(profile.CheckpointName, 7); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountProfiles(ctx); err != nil || n != 2000 {
		t.Fatalf("%d profiles (%v), want 2000", n, err)
	}
	p, err := db.ProfileByIdentifier(ctx, id)
	if err != nil || p == nil || p.ID != "p0000" || p.Traits["plan"].Value != "pro" {
		t.Fatalf("profile by identifier: %+v, %v", p, err)
	}
	if seq, _ := db.Checkpoint(ctx, profile.CheckpointName); seq != 7 {
		t.Fatalf("checkpoint %d, want 7", seq)
	}
}

// A flushed transaction that rolls back leaves nothing, even the parts the
// writer already wrote, and the next transaction goes ahead.
func TestFlushedTransactionRollsBack(t *testing.T) {
	ctx := context.Background()
	db, _ := openState(t)
	tx, _ := db.BeginState(ctx)
	if err := tx.PutIdentity(portrait.Identifier{Type: "user_id", Value: "gone"}, "x0000", portrait.EventKey{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	putConcurrently(t, tx, "x", 1000)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatalf("a rollback is not a failure: %v", err)
	}
	if n, _ := db.CountProfiles(ctx); n != 0 {
		t.Fatalf("%d profiles after rollback", n)
	}
	if p, _ := db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "gone"}); p != nil {
		t.Fatalf("identity survived the rollback: %+v", p)
	}
	tx, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	putConcurrently(t, tx, "y", 10)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountProfiles(ctx); n != 10 {
		t.Fatalf("%d profiles, want 10", n)
	}
}

// A write that fails after the transaction was flushed fails the whole
// transaction: nothing of it is committed, the failure is reported by
// WaitState (once), and the next transaction goes ahead.
func TestFlushedTransactionWriteFailure(t *testing.T) {
	ctx := context.Background()
	db, dir := openState(t)
	raw, err := sql.Open("sqlite", filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DROP TABLE trait_issues`); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.BeginState(ctx)
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	putConcurrently(t, tx, "p", 600)
	if err := tx.AddTraitIssue(&portrait.TraitIssue{MessageID: "m1", Trait: "age", Reason: "not a number"}); err != nil {
		t.Fatal(err)
	}
	putConcurrently(t, tx, "q", 600)
	if err := tx.Commit(); err != nil {
		t.Fatal(err) // the failure is the writer's, reported later
	}
	if err := db.WaitState(ctx); err == nil {
		t.Fatal("the failed write was not reported")
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatalf("reported twice: %v", err)
	}
	if n, _ := db.CountProfiles(ctx); n != 0 {
		t.Fatalf("%d profiles of a failed transaction were committed", n)
	}
	tx, err = db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	putConcurrently(t, tx, "r", 5)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountProfiles(ctx); n != 5 {
		t.Fatalf("%d profiles, want 5", n)
	}
}
