package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/keyhash"
)

// Keys are stored as salted bcrypt hashes found by a short prefix; a row
// copied from an embedded store older than its migration 015 (plain
// SHA-256, no prefix, as `portrait migrate` copies it) keeps working and is
// re-hashed on first use.
func TestKeysHashedSlowlyAndMigrated(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	const secret = "pat_abcdefgh12345678901234567890"
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "analyst", Role: "analyst", Clearance: "internal"}
	if err := db.CreateKey(ctx, k, secret); err != nil {
		t.Fatal(err)
	}
	var hash, prefix string
	if err := db.pool.QueryRow(ctx, `SELECT hash, prefix FROM keys WHERE id = $1`, k.ID).Scan(&hash, &prefix); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$") || strings.Contains(hash, keyhash.Digest(secret)) || prefix != secret[:10] {
		t.Errorf("stored hash %q prefix %q", hash, prefix)
	}

	const old = "legacy-admin-token"
	if _, err := db.pool.Exec(ctx, `INSERT INTO keys (kind, name, hash, priority, created_at, role, clearance) VALUES ('admin', 'ops', $1, 0, 0, 'admin', 'secret')`, keyhash.Digest(old)); err != nil {
		t.Fatal(err)
	}
	lk, err := db.Authenticate(ctx, portrait.KeyAdmin, old)
	if err != nil || lk.Role != "admin" || lk.Clearance != "secret" {
		t.Fatalf("legacy key: %+v %v", lk, err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT hash, coalesce(prefix, '') FROM keys WHERE id = $1`, lk.ID).Scan(&hash, &prefix); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$") || prefix == "" {
		t.Errorf("legacy key not re-hashed: %q %q", hash, prefix)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, old); err != nil {
		t.Errorf("legacy key after re-hash: %v", err)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, "legacy-admin-tokeX"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a wrong secret: %v", err)
	}
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
