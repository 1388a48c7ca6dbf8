package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/keyhash"
)

// Keys are stored as salted bcrypt hashes, found by a short prefix; a
// key stored before migration 015 (plain SHA-256) keeps working and is
// re-hashed on first use; an expired key does not authenticate.
func TestKeysHashedSlowlyAndMigrated(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.KeyHashCost = 4
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }

	const secret = "pat_abcdefgh12345678901234567890"
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "analyst", Role: "analyst", Clearance: "internal"}
	if err := db.CreateKey(ctx, k, secret); err != nil {
		t.Fatal(err)
	}
	var hash, prefix string
	db.logR.QueryRow(`SELECT hash, prefix FROM keys WHERE id = ?`, k.ID).Scan(&hash, &prefix)
	if !strings.HasPrefix(hash, "$2a$") || strings.Contains(hash, keyhash.Digest(secret)) || prefix != secret[:10] {
		t.Errorf("stored hash %q prefix %q", hash, prefix)
	}
	got, err := db.Authenticate(ctx, portrait.KeyAdmin, secret)
	if err != nil || got.Role != "analyst" || got.Clearance != "internal" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, secret[:len(secret)-1]+"X"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a wrong secret with the same prefix: %v", err)
	}
	// Creating the same secret again (a token from the environment on each
	// start) is a no-op.
	again := &portrait.Key{Kind: portrait.KeyAdmin, Name: "other"}
	if err := db.CreateKey(ctx, again, secret); err != nil || again.ID != k.ID {
		t.Errorf("create again: %+v %v", again, err)
	}

	// A row as migration 015 leaves an old admin token: SHA-256, no prefix.
	const old = "legacy-admin-token"
	if _, err := db.logW.Exec(`INSERT INTO keys (kind, name, hash, priority, created_at, role, clearance) VALUES ('admin', 'ops', ?, 0, 0, 'admin', 'secret')`, keyhash.Digest(old)); err != nil {
		t.Fatal(err)
	}
	lk, err := db.Authenticate(ctx, portrait.KeyAdmin, old)
	if err != nil || lk.Role != "admin" || lk.Clearance != "secret" {
		t.Fatalf("legacy key: %+v %v", lk, err)
	}
	db.logR.QueryRow(`SELECT hash, coalesce(prefix, '') FROM keys WHERE id = ?`, lk.ID).Scan(&hash, &prefix)
	if !strings.HasPrefix(hash, "$2a$") || prefix == "" {
		t.Errorf("legacy key not re-hashed: %q %q", hash, prefix)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, old); err != nil {
		t.Errorf("legacy key after re-hash: %v", err)
	}

	exp := &portrait.Key{Kind: portrait.KeyAdmin, Name: "temp", Role: "sales", Clearance: "confidential", ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateKey(ctx, exp, "pat_expiring_secret_0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, "pat_expiring_secret_0123456789"); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := db.Authenticate(ctx, portrait.KeyAdmin, "pat_expiring_secret_0123456789"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED || !strings.Contains(err.Error(), "expired") {
		t.Errorf("after expiry: %v", err)
	}
}

// The audit log is append-only and hash-chained: editing, deleting or
// reordering a record is found by VerifyAudit, naming the record.
func TestAuditChainDetectsTampering(t *testing.T) {
	ctx := context.Background()
	for _, tamper := range []struct {
		name, sql, want string
	}{
		{"edit", `UPDATE audit SET body = replace(body, '"actor":"bob"', '"actor":"eve"') WHERE seq = 2`, "record 2 was altered"},
		{"delete", `DELETE FROM audit WHERE seq = 2`, "record 2 is missing"},
		{"rechain", `UPDATE audit SET prev = 'x' WHERE seq = 3`, "record 3 does not follow"},
		{"swap", `UPDATE audit SET seq = seq + 10 WHERE seq IN (2, 3); UPDATE audit SET seq = 5 WHERE seq = 12; UPDATE audit SET seq = 2 WHERE seq = 13; UPDATE audit SET seq = 3 WHERE seq = 5`, "record 2"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			db, err := Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, actor := range []string{"alice", "bob", "carol", "dave"} {
				if err := db.Record(ctx, portrait.AuditRecord{Actor: actor, Action: "read", Target: "/v1/profiles/p1",
					Fields: []portrait.AuditField{{Name: "phone", Level: "confidential", Masked: true}}}); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := db.VerifyAudit(ctx); err != nil || n != 4 {
				t.Fatalf("intact chain: %d %v", n, err)
			}
			recs, err := db.ListAudit(ctx, portrait.AuditFilter{Actor: "bob"})
			if err != nil || len(recs) != 1 || recs[0].Seq != 2 || recs[0].Fields[0].Name != "phone" || recs[0].Prev == "" {
				t.Fatalf("list: %+v %v", recs, err)
			}
			// Through SQL the log refuses changes...
			if _, err := db.logW.Exec(`UPDATE audit SET actor = 'eve' WHERE seq = 2`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("update allowed: %v", err)
			}
			if _, err := db.logW.Exec(`DELETE FROM audit WHERE seq = 2`); err == nil {
				t.Error("delete allowed")
			}
			// ...and someone with the file who drops the triggers is found out.
			if _, err := db.logW.Exec(`DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; ` + tamper.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := db.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("tampering (%s) not found: %v", tamper.name, err)
			}
		})
	}
}
