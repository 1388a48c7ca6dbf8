package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// ContentStore is a store whose answer caches key on ContentVersion.
type ContentStore interface {
	LogStore
	ContentVersion(ctx context.Context) (string, error)
	DataVersion(ctx context.Context) (string, error)
	portrait.KeyStore
	portrait.SessionStore
	portrait.Auditor
}

// RunContentVersion checks what the content version follows: a sign-in
// (a key's session) and an audit record leave it as it is, though they
// commit (DataVersion moves); an event appended to the log moves it, and
// so does applying that event to the profiles.
func RunContentVersion(t *testing.T, s ContentStore) {
	ctx := context.Background()
	e := newEnv(s)
	e.send(t, ev("c1", "identify", "u1", "", time.Minute, `{"plan":"gold"}`))
	e.catchUp(t)
	v0, err := s.ContentVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d0, err := s.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}
	if err := s.CreateKey(ctx, k, "pat_content-secret"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	if err := s.CreateSession(ctx, &portrait.Session{IDHash: "sign-in", Key: k, Created: at, LastSeen: at, Expires: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, portrait.AuditRecord{Actor: "ops", Action: "profile.read", Target: "/v1/profiles/x"}); err != nil {
		t.Fatal(err)
	}
	if d1, err := s.DataVersion(ctx); err != nil || d1 == d0 {
		t.Errorf("DataVersion after a sign-in and an audit record: %q → %q %v (the writes did not commit?)", d0, d1, err)
	}
	v1, err := s.ContentVersion(ctx)
	if err != nil || v1 != v0 {
		t.Errorf("ContentVersion after a sign-in and an audit record: %q → %q %v, want unchanged", v0, v1, err)
	}
	e.send(t, ev("c2", "track", "u1", "", 2*time.Minute, ""))
	v2, err := s.ContentVersion(ctx)
	if err != nil || v2 == v1 {
		t.Errorf("ContentVersion after an append: %q → %q %v", v1, v2, err)
	}
	e.catchUp(t)
	if v3, err := s.ContentVersion(ctx); err != nil || v3 == v2 {
		t.Errorf("ContentVersion after applying the event to the profile: %q → %q %v", v2, v3, err)
	}
}
