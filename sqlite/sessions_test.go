package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func TestSessionsPurgeAndTrim(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}
	if err := db.CreateKey(ctx, k, "pat_secret-secret"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		// Sessions 0 and 1 expire at t0+1h, the others at t0+8h.
		exp := t0.Add(time.Hour)
		if i >= 2 {
			exp = t0.Add(8 * time.Hour)
		}
		if err := db.CreateSession(ctx, &portrait.Session{IDHash: fmt.Sprint("s", i), Key: k, Created: at, LastSeen: at, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateSession(ctx, &portrait.Session{IDHash: "x", Key: &portrait.Key{ID: 999}, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("session of a missing key: %v", err)
	}
	if _, err := db.Session(ctx, "s0", t0.Add(2*time.Hour)); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("an expired session is served: %v", err)
	}
	n, err := db.PurgeSessions(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Errorf("purge: %d %v, want 2", n, err)
	}
	// Trim to 2 keeps the two most recently seen: s3 and s4.
	if err := db.TrimSessions(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"s2": false, "s3": true, "s4": true} {
		_, err := db.Session(ctx, id, t0)
		if got := err == nil; got != want {
			t.Errorf("after trim, %s present = %v (%v), want %v", id, got, err, want)
		}
	}
}
