package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

func syncTestEvents(prefix string, n int) []*portrait.Event {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	evs := make([]*portrait.Event, n)
	for i := range evs {
		evs[i] = &portrait.Event{MessageID: fmt.Sprintf("%s-%d", prefix, i), Type: portrait.EventTrack, Name: "Viewed", Source: "web",
			UserID: fmt.Sprintf("u%d", i), Timestamp: at, ReceivedAt: at}
	}
	return evs
}

func fileCount(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.logR.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The group commit answers an append only once the log's write-ahead log
// is synced, and writes the next group while that sync is under way: the
// fsync is off the committer's serial path. What is not yet synced is not
// given to readers of the log (the tail, ReadLog), and the log's other
// writers still commit with synchronous=FULL.
func TestGroupCommitSyncsBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Append(ctx, syncTestEvents("warm", 1), nil); err != nil {
		t.Fatal(err)
	}
	release := make(chan error)
	syncing := make(chan struct{}, 16)
	stop := make(chan struct{})
	defer close(stop) // before Close: a failed test must not hold the committer
	real := db.committer.sync
	db.committer.sync = func() error {
		syncing <- struct{}{}
		select {
		case err := <-release:
			if err != nil {
				return err
			}
		case <-stop:
		}
		return real()
	}
	type answer struct {
		res portrait.AppendResult
		err error
	}
	first := make(chan answer, 1)
	go func() {
		res, err := db.Append(ctx, syncTestEvents("a", 50), nil)
		first <- answer{res, err}
	}()
	<-syncing // the first group is committed and waits for its sync
	if n := fileCount(t, db); n != 51 {
		t.Fatalf("the file holds %d events before the sync, want 51 (committed)", n)
	}
	second := make(chan answer, 1)
	go func() {
		res, err := db.Append(ctx, syncTestEvents("b", 30), nil)
		second <- answer{res, err}
	}()
	// The second group is written while the first one's sync is held.
	deadline := time.Now().Add(10 * time.Second)
	for fileCount(t, db) != 81 {
		if time.Now().After(deadline) {
			t.Fatalf("the second group was not written while the first was syncing (%d events in the file)", fileCount(t, db))
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case a := <-first:
		t.Fatalf("an append answered before its sync: %+v", a)
	case a := <-second:
		t.Fatalf("an append answered before its sync: %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
	// Readers see only what is synced: the warm-up event.
	if evs, err := db.ReadLog(ctx, 0, 1000); err != nil || len(evs) != 1 {
		t.Fatalf("ReadLog before the sync: %d events, %v; want the 1 synced", len(evs), err)
	}
	db.tail.mu.Lock()
	db.tail.from = 1 << 62 // make ReadLog read the file from now on
	db.tail.mu.Unlock()
	if evs, err := db.ReadLog(ctx, 0, 1000); err != nil || len(evs) != 1 {
		t.Fatalf("ReadLog from the file before the sync: %d events, %v; want the 1 synced", len(evs), err)
	}
	notified := db.Appended()
	release <- nil
	a := <-first
	if a.err != nil || a.res.Accepted != 50 {
		t.Fatalf("first append: %+v %v", a.res, a.err)
	}
	select {
	case <-notified:
	case <-time.After(10 * time.Second):
		t.Fatal("followers were not told of the synced group")
	}
	<-syncing
	release <- nil
	if a := <-second; a.err != nil || a.res.Accepted != 30 {
		t.Fatalf("second append: %+v %v", a.res, a.err)
	}
	if evs, err := db.ReadLog(ctx, 0, 1000); err != nil || len(evs) != 81 {
		t.Fatalf("ReadLog after the syncs: %d events, %v; want 81", len(evs), err)
	}

	// A failed sync fails the append; the events are in the log for its
	// readers (no gap in the tail) and a retry is a duplicate.
	go func() {
		<-syncing
		release <- errors.New("disk gone")
	}()
	if _, err := db.Append(ctx, syncTestEvents("c", 5), nil); err == nil {
		t.Fatal("an append whose sync failed succeeded")
	}
	db.committer.sync = real
	res, err := db.Append(ctx, syncTestEvents("c", 5), nil)
	if err != nil || res.Duplicates != 5 {
		t.Fatalf("retry after the failed sync: %+v %v; want 5 duplicates", res, err)
	}
	if evs, err := db.ReadLog(ctx, 81, 1000); err != nil || len(evs) != 5 {
		t.Fatalf("ReadLog after the failed sync: %d events, %v; want the 5", len(evs), err)
	}

	// The connection goes back to the log's other writers syncing every
	// commit.
	var level int
	if err := db.logW.QueryRow(`PRAGMA synchronous`).Scan(&level); err != nil || level != 2 {
		t.Fatalf("synchronous on the log's connection after a group commit = %d (%v), want 2 (FULL)", level, err)
	}
}
