package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/keyhash"
)

// KeysHashedSlowlyAndMigrated: keys are stored as salted bcrypt hashes
// found by a short prefix, never as the fast digest; a key row as an old
// version left it (plain SHA-256, no prefix: an embedded store before its
// migration 015, or what `portrait migrate` copied from one) keeps
// signing in and is re-hashed on first use. open returns a new empty store
// and its raw SQL.
func KeysHashedSlowlyAndMigrated(t *testing.T, open func(t *testing.T) (AdminStore, Raw)) {
	ctx := context.Background()
	s, raw := open(t)
	const secret = "pat_abcdefgh12345678901234567890"
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "analyst", Role: "analyst", Clearance: "internal"}
	if err := s.CreateKey(ctx, k, secret); err != nil {
		t.Fatal(err)
	}
	var hash, prefix string
	if err := raw.Scan(ctx, `SELECT hash, prefix FROM keys WHERE id = $1`, []any{k.ID}, &hash, &prefix); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$") || strings.Contains(hash, keyhash.Digest(secret)) || prefix != secret[:10] {
		t.Errorf("stored hash %q prefix %q", hash, prefix)
	}
	got, err := s.Authenticate(ctx, portrait.KeyAdmin, secret)
	if err != nil || got.Role != "analyst" || got.Clearance != "internal" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}

	const old = "legacy-admin-token"
	if err := raw.Exec(ctx, `INSERT INTO keys (kind, name, hash, priority, created_at, role, clearance) VALUES ('admin', 'ops', $1, 0, 0, 'admin', 'secret')`, keyhash.Digest(old)); err != nil {
		t.Fatal(err)
	}
	lk, err := s.Authenticate(ctx, portrait.KeyAdmin, old)
	if err != nil || lk.Role != "admin" || lk.Clearance != "secret" {
		t.Fatalf("legacy key: %+v %v", lk, err)
	}
	if err := raw.Scan(ctx, `SELECT hash, coalesce(prefix, '') FROM keys WHERE id = $1`, []any{lk.ID}, &hash, &prefix); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$") || prefix == "" {
		t.Errorf("legacy key not re-hashed: %q %q", hash, prefix)
	}
	if _, err := s.Authenticate(ctx, portrait.KeyAdmin, old); err != nil {
		t.Errorf("legacy key after re-hash: %v", err)
	}
	if _, err := s.Authenticate(ctx, portrait.KeyAdmin, "legacy-admin-tokeX"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a wrong secret: %v", err)
	}
}

// adminSignInFailures: failures count per client within a window from the
// first one, survive in the store, start again once the window passed, and
// concurrent failures (several api nodes) all count.
func adminSignInFailures(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	const window = 5 * time.Minute
	t0 := *clock
	if n, _, err := s.SignInFailures(ctx, "c1", t0, window); err != nil || n != 0 {
		t.Fatalf("no failures yet: %d %v", n, err)
	}
	for i := 1; i <= 3; i++ {
		n, first, err := s.SignInFailed(ctx, "c1", t0.Add(time.Duration(i)*time.Second), window)
		if err != nil || n != i || !first.Equal(t0.Add(time.Second)) {
			t.Fatalf("failure %d: %d %v %v", i, n, first, err)
		}
	}
	if n, first, err := s.SignInFailures(ctx, "c1", t0.Add(time.Minute), window); err != nil || n != 3 || !first.Equal(t0.Add(time.Second)) {
		t.Errorf("count: %d %v %v", n, first, err)
	}
	if n, _, _ := s.SignInFailures(ctx, "c2", t0.Add(time.Minute), window); n != 0 {
		t.Errorf("another client counts %d", n)
	}
	// The window has passed: nothing counts, and the next failure starts
	// a new window.
	later := t0.Add(time.Second + window)
	if n, _, err := s.SignInFailures(ctx, "c1", later, window); err != nil || n != 0 {
		t.Errorf("after the window: %d %v", n, err)
	}
	if n, first, err := s.SignInFailed(ctx, "c1", later, window); err != nil || n != 1 || !first.Equal(later) {
		t.Errorf("a new window: %d %v %v", n, first, err)
	}
	// Concurrent failures all count (two api nodes failing one client).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.SignInFailed(ctx, "c3", t0, window); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _, _ := s.SignInFailures(ctx, "c3", t0, window); n != 8 {
		t.Errorf("concurrent failures counted %d, want 8", n)
	}
}

// adminSignInCodes: a code is taken once, only while fresh, only for a key
// that still exists; concurrent takers (several nodes) get it once.
func adminSignInCodes(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}
	if err := s.CreateKey(ctx, k, "pat_signin_codes_secret"); err != nil {
		t.Fatal(err)
	}
	t0 := *clock
	if err := s.PutSignInCode(ctx, "code-1", k.ID, t0, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := s.TakeSignInCode(ctx, "code-unknown", t0); err != nil || ok || id != 0 {
		t.Errorf("an unknown code: %d %v %v", id, ok, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, ok, err := s.TakeSignInCode(ctx, "code-1", t0.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				taken++
				mu.Unlock()
				if id != k.ID {
					t.Errorf("the code's key: %d, want %d", id, k.ID)
				}
			}
		}()
	}
	wg.Wait()
	if taken != 1 {
		t.Errorf("the code was taken %d times, want once", taken)
	}
	// Stale: not taken, and gone.
	if err := s.PutSignInCode(ctx, "code-2", k.ID, t0, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TakeSignInCode(ctx, "code-2", t0.Add(10*time.Minute)); ok {
		t.Error("a stale code was taken")
	}
	// A revoked key's codes go with it; a code for a missing key is refused.
	if err := s.PutSignInCode(ctx, "code-3", k.ID, t0, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TakeSignInCode(ctx, "code-3", t0); ok {
		t.Error("a revoked key's code was taken")
	}
	if err := s.PutSignInCode(ctx, "code-4", k.ID, t0, t0.Add(10*time.Minute)); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a code for a revoked key: %v", err)
	}
}
