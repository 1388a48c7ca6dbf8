package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// TestStaleApplierIsFenced: two process nodes over one PostgreSQL store,
// each with its own connection. Node a applies in term 5; node b begins
// term 9 (a's lease expired and b took it) while a still has a batch to
// commit: a's commit is refused, nothing of it is visible, and b applies
// the same events from the store's checkpoint.
func TestStaleApplierIsFenced(t *testing.T) {
	url := natstest.URL(t)
	ctx := context.Background()
	cfg := natsbus.Config{URL: url, Stream: natstest.Stream(t, url, "portrait_fence"), Partitions: 1}
	pg := pgtest.URL(t)
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbA, dbB := open(), open()
	var appliedA, appliedB atomic.Int64
	a := applierNode(t, dbA, cfg, "a", 3*time.Second, &appliedA)
	b := applierNode(t, dbB, cfg, "b", 3*time.Second, &appliedB)
	t.Cleanup(func() { a.bus.Close(); b.bus.Close() })
	// The lease bucket, which names the fence, exists once a lease was held.
	hctx, stop := context.WithCancel(ctx)
	held := make(chan struct{})
	go a.bus.HoldLease(hctx, "applier", "a", 3*time.Second, func(context.Context, uint64) { close(held) })
	<-held
	stop()

	n := 0
	send := func(user string) {
		n++
		e := &portrait.Event{MessageID: fmt.Sprintf("m-%d", n), Type: portrait.EventIdentify, Source: "web", UserID: user,
			Traits: []byte(`{"email":"` + user + `@example.com"}`), Timestamp: time.Unix(1_780_000_000+int64(n), 0).UTC(), ReceivedAt: time.Now().UTC()}
		if _, err := dbA.Append(ctx, []*portrait.Event{e}, nil); err != nil {
			t.Fatal(err)
		}
	}
	send("u1")
	send("u1")
	if !a.claimTerm(ctx, 5) {
		t.Fatal("term 5 not begun")
	}
	a.freshTerm(ctx)
	if k, err := a.Proc.Step(ctx); err != nil || k != 2 {
		t.Fatalf("node a in its term: %d %v", k, err)
	}
	send("u2")
	send("u1")
	// b's term begins before a commits its next batch.
	if !b.claimTerm(ctx, 9) {
		t.Fatal("term 9 not begun")
	}
	if _, err := a.Proc.Step(ctx); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Fatalf("node a's commit after term 9 began: %v, want ECONFLICT", err)
	}
	if cp, _ := dbB.Checkpoint(ctx, profile.CheckpointName); cp != 2 {
		t.Errorf("checkpoint %d after the refused commit, want 2", cp)
	}
	if _, err := dbB.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u2"}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the refused commit's profile of u2 is visible: %v", err)
	}
	u1, err := dbB.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil || u1.EventCount != 2 {
		t.Fatalf("u1 after the refused commit: %+v %v, want 2 events", u1, err)
	}
	b.freshTerm(ctx)
	if k, err := b.Proc.Step(ctx); err != nil || k != 2 {
		t.Fatalf("node b in its term: %d %v", k, err)
	}
	if cp, _ := dbA.Checkpoint(ctx, profile.CheckpointName); cp != 4 {
		t.Errorf("checkpoint %d after b's batch, want 4", cp)
	}
	u1, err = dbA.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil || u1.EventCount != 3 {
		t.Errorf("u1: %+v %v, want 3 events, each applied once", u1, err)
	}
	if _, err := dbA.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u2"}); err != nil {
		t.Errorf("u2 after b's batch: %v", err)
	}
	if appliedA.Load() != 2 || appliedB.Load() != 2 {
		t.Errorf("applied by a %d, by b %d; want 2 and 2", appliedA.Load(), appliedB.Load())
	}
}
