package postgres

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/storetest"
)

func TestKeysHashedSlowlyAndMigrated(t *testing.T) {
	storetest.KeysHashedSlowlyAndMigrated(t, func(t *testing.T) (storetest.AdminStore, storetest.Raw) {
		db := openTest(t)
		return db, db.raw()
	})
}

// A key revoked on one node ends its sessions on every node: the session
// row goes with the key, and another DB value on the same database sees
// neither.
func TestRevokeSeenByAnotherNode(t *testing.T) {
	ctx := context.Background()
	a := openTest(t)
	b, err := Open(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}
	if err := a.CreateKey(ctx, k, "pat_two-nodes-secret"); err != nil {
		t.Fatal(err)
	}
	now := a.Now()
	if err := a.CreateSession(ctx, &portrait.Session{IDHash: "h", Key: k, Created: now, LastSeen: now, Expires: now.Add(3600e9)}); err != nil {
		t.Fatal(err)
	}
	if se, err := b.Session(ctx, "h", now); err != nil || se.Key.ID != k.ID {
		t.Fatalf("the other node does not see the session: %+v %v", se, err)
	}
	if err := b.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, "h", now); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a session outlives its key revoked elsewhere: %v", err)
	}
	var n int
	a.pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n)
	if n != 0 {
		t.Errorf("%d session rows left", n)
	}
}
