package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// A configuration change made through one DB raises its kind's version as
// another DB on the same database reads it, and wakes that DB's waiters.
func TestBumpConfigReachesAnotherNode(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx := context.Background()
	v, err := b.ConfigVersions(ctx)
	if err != nil || len(v) != 0 {
		t.Fatalf("versions of a new store: %v, %v", v, err)
	}
	// Start b's listener and wait until it listens.
	select {
	case <-b.Appended():
	case <-time.After(20 * time.Second):
		t.Fatal("the listener never started")
	}
	woken := b.Appended()
	if err := a.BumpConfig(ctx, "tags"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(20 * time.Second):
		t.Fatal("b was not woken by a's configuration change")
	}
	if err := a.BumpConfig(ctx, "tags"); err != nil {
		t.Fatal(err)
	}
	if err := a.BumpConfig(ctx, "segments"); err != nil {
		t.Fatal(err)
	}
	v, err = b.ConfigVersions(ctx)
	if err != nil || v["tags"] != 2 || v["segments"] != 1 || len(v) != 2 {
		t.Fatalf("versions after two tag changes and one segment change: %v, %v", v, err)
	}
	if err := a.BumpConfig(ctx, ""); err == nil {
		t.Error("an empty kind was accepted")
	}
}
