package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// applierNode is the applying part of a process node: its own processor
// over the shared store and its own connection to the bus.
func applierNode(t *testing.T, db Store, cfg natsbus.Config, name string, ttl time.Duration, applied *atomic.Int64) *App {
	t.Helper()
	a := &App{DB: db, Log: newLogger("error", io.Discard), shared: true}
	a.Config.Node, a.Config.LeaseTTL = name, ttl
	a.procStore = &applierStore{Store: db}
	a.Proc = profile.NewProcessor(a.procStore, identity.DefaultRules())
	a.Proc.Log, a.Proc.Linger, a.Proc.BusyLinger = a.Log, 10*time.Millisecond, 10*time.Millisecond
	a.Proc.BatchSize = 50
	a.Proc.OnBatch = func(n int, _ int64, _ time.Time) { applied.Add(int64(n)) }
	a.reconnect(t, cfg)
	return a
}

func (a *App) reconnect(t *testing.T, cfg natsbus.Config) {
	t.Helper()
	b, err := natsbus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.bus = b
}

// TestApplierFailsOver: two process nodes share one store; the applier
// lease lets one apply at a time. The first applies, loses its connection
// (as if killed, or cut off): its processor stops at once and the second
// takes over from the store's checkpoint. Then the first comes back with
// the same processor, the second dies, and the first applies again: it
// must start from what the store holds (the second created identities and
// merged profiles meanwhile), not from its stale caches. Every event is
// applied exactly once, and the profiles equal those of one processor
// applying the same log.
func TestApplierFailsOver(t *testing.T) {
	url := natstest.URL(t)
	ctx := context.Background()
	cfg := natsbus.Config{URL: url, Stream: natstest.Stream(t, url, "portrait_applier"), Partitions: 1}
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ttl := 1500 * time.Millisecond
	var appliedA, appliedB atomic.Int64
	a := applierNode(t, db, cfg, "a", ttl, &appliedA)
	b := applierNode(t, db, cfg, "b", ttl, &appliedB)

	var log []*portrait.Event
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	send := func(evs ...*portrait.Event) int64 {
		for _, e := range evs {
			e.MessageID, e.Source, e.ReceivedAt = fmt.Sprintf("m-%d", len(log)), "web", at
			e.Timestamp = at.Add(time.Duration(len(log)) * time.Second)
			log = append(log, e)
		}
		res, err := db.Append(ctx, evs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.LastSeq
	}
	waitApplied := func(who string, seq int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			cp, err := db.Checkpoint(ctx, profile.CheckpointName)
			if err != nil {
				t.Fatal(err)
			}
			if cp >= seq {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: checkpoint %d, want %d", who, cp, seq)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	holder := func() string {
		h, err := a.bus.LeaseHolder(ctx, "applier")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	run := func(n *App) (context.CancelFunc, chan struct{}) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.holdApplier(cctx)
		}()
		return cancel, done
	}

	// Term 1: a applies anonymous visits and users, each a profile.
	stopA, doneA := run(a)
	deadline := time.Now().Add(10 * time.Second)
	for holder() != "a" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopB, doneB := run(b)
	var last int64
	for i := range 30 {
		last = send(&portrait.Event{Type: portrait.EventPage, AnonymousID: fmt.Sprintf("a-%d", i), Name: "home"},
			&portrait.Event{Type: portrait.EventTrack, UserID: fmt.Sprintf("u-%d", i), Name: "Viewed"})
	}
	waitApplied("a", last)
	if appliedB.Load() != 0 {
		t.Fatalf("b applied %d events while a held the lease", appliedB.Load())
	}

	// a is cut off: it notices at its next renewal (TTL/3) and stops, and
	// b takes the lease once it expires. Until a notices, a batch it had
	// begun may still commit (the unfenced window docs/scaling.md
	// describes), so the events b must merge are sent once b applies.
	a.bus.Close()
	deadline = time.Now().Add(3 * a.Config.LeaseTTL)
	for (a.applying.Load() || !b.applying.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.applying.Load() {
		t.Fatal("a still applies after its connection closed and its lease expired")
	}
	if !b.applying.Load() {
		t.Fatal("b did not take over the lease a lost")
	}
	for i := range 30 {
		last = send(&portrait.Event{Type: portrait.EventIdentify, UserID: fmt.Sprintf("u-%d", i), AnonymousID: fmt.Sprintf("a-%d", i),
			Traits: []byte(fmt.Sprintf(`{"email":"u%d@example.com"}`, i))})
	}
	waitApplied("b", last)
	stopA()
	<-doneA
	if appliedB.Load() == 0 {
		t.Fatal("b never applied")
	}
	beforeA := appliedA.Load()

	// a comes back (same processor, stale caches), b dies: a applies
	// events that land on profiles b merged.
	a.reconnect(t, cfg)
	stopA, doneA = run(a)
	b.bus.Close()
	deadline = time.Now().Add(10 * time.Second)
	for (b.applying.Load() || holder() != "a" || !a.applying.Load()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b.applying.Load() || !a.applying.Load() {
		t.Fatalf("b still applies (%v) or a does not (%v) after b's connection closed", b.applying.Load(), a.applying.Load())
	}
	for i := range 30 {
		last = send(&portrait.Event{Type: portrait.EventPage, AnonymousID: fmt.Sprintf("a-%d", i), Name: "cart"},
			&portrait.Event{Type: portrait.EventIdentify, UserID: fmt.Sprintf("u-%d", i), Traits: []byte(`{"plan":"gold"}`)})
	}
	waitApplied("a again", last)
	if appliedA.Load() == beforeA {
		t.Fatal("a never applied again")
	}
	stopA()
	stopB()
	<-doneA
	<-doneB
	a.bus.Close()
	b.bus.Close()

	if got, want := appliedA.Load()+appliedB.Load(), int64(len(log)); got != want {
		t.Errorf("applied %d events in all (a %d, b %d), want each of %d once", got, appliedA.Load(), appliedB.Load(), want)
	}
	got, n, err := profilesDigest(ctx, db, map[[2]string]time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The same log through one processor.
	ref, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, e := range log {
		e.Seq = 0
	}
	res, err := ref.Append(ctx, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := profile.NewProcessor(ref, identity.DefaultRules()).CatchUp(ctx, res.LastSeq); err != nil {
		t.Fatal(err)
	}
	want, wantN, err := profilesDigest(ctx, ref, map[[2]string]time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want || n != wantN || n != 30 {
		t.Errorf("profiles after fail-overs: %d, digest %s; one processor: %d, digest %s (want 30 profiles)", n, got, wantN, want)
	}
}
