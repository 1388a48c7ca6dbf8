package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func open(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	sqlitetest.Seed(t, dir) // an empty dir gets a migrated store
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// bcrypt's minimum cost: the default took seconds per key under -race
	// (TestKeys alone over a minute at CI's load). The cost a real store
	// uses is internal/keyhash's, tested there.
	db.KeyHashCost = 4
	return db
}

func event(msg string) *portrait.Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &portrait.Event{MessageID: msg, Type: "track", Name: "x", UserID: "u", Source: "web", Timestamp: at, ReceivedAt: at}
}

// Concurrent appends share commits, and a messageId is logged once however
// many requests carry it at the same time.
func TestGroupCommitIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := open(t, dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, dups := 0, 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range 20 {
				var evs []*portrait.Event
				for i := range 10 {
					// Workers overlap: worker w and w+1 send the same ids.
					evs = append(evs, event(fmt.Sprintf("m-%d-%d-%d", w/2, b, i)))
				}
				res, err := db.Append(ctx, evs, []*portrait.Rejected{{Source: "web", Index: 0, Reason: "test", Raw: []byte("{}"), ReceivedAt: time.Now()}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				accepted += res.Accepted
				dups += res.Duplicates
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if accepted != 4*20*10 || dups != 4*20*10 {
		t.Errorf("accepted %d duplicates %d, want 800 each", accepted, dups)
	}
	n, err := db.CountEvents(ctx)
	if err != nil || n != 800 {
		t.Errorf("log holds %d events (%v), want 800", n, err)
	}
	evs, err := db.ReadLog(ctx, 0, 10000)
	if err != nil || len(evs) != 800 {
		t.Fatalf("read %d (%v)", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatal("log not in sequence order")
		}
	}
	q, err := db.ListQuarantine(ctx, portrait.QuarantineFilter{Limit: 1000})
	if err != nil || len(q) != 160 {
		t.Errorf("quarantine %d (%v), want 160", len(q), err)
	}
	// Reopening finds everything (the log is on disk, not in memory).
	db.Close()
	db2 := open(t, dir)
	if n, _ := db2.CountEvents(ctx); n != 800 {
		t.Errorf("after reopen: %d events", n)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	k := &portrait.Key{Kind: portrait.KeyWrite, Name: "crm"}
	if err := db.CreateKey(ctx, k, "secret-123456"); err != nil {
		t.Fatal(err)
	}
	// Creating the same secret again (an env key on every start) is a no-op.
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: "crm"}, "secret-123456"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}, "secret-123456"); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("the same secret for another kind: %v", err)
	}
	for _, bad := range []*portrait.Key{{Kind: "root", Name: "x"}, {Kind: portrait.KeyWrite}} {
		if err := db.CreateKey(ctx, bad, "long-enough-secret"); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	got, err := db.Authenticate(ctx, portrait.KeyWrite, "secret-123456")
	if err != nil || got.Name != "crm" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, "secret-123456"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a write key authenticated as admin: %v", err)
	}
	keys, _ := db.ListKeys(ctx)
	if len(keys) != 1 {
		t.Errorf("%d keys", len(keys))
	}
}
