package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// AdminStore is what the administrative checks call: credentials, console
// sessions, the audit log, classification levels and import summaries.
// Both stores keep them beside the event log.
type AdminStore interface {
	portrait.KeyStore
	Key(ctx context.Context, id int64) (*portrait.Key, error)
	portrait.SessionStore
	portrait.SignInGuard
	portrait.AuditLog
	SetClassification(ctx context.Context, kind, name, level string) error
	Classifications(ctx context.Context) ([]portrait.Classification, error)
	SaveImport(ctx context.Context, id, source, state string, summary []byte) error
	ImportSummary(ctx context.Context, id string) ([]byte, error)
	ImportSummaries(ctx context.Context) ([][]byte, error)
	ImportPage(ctx context.Context, cursor string, limit int) ([][]byte, string, error)
}

// RunAdmin checks the administrative methods of the store open returns (a
// new empty one for each subtest, whose clock reads now()).
func RunAdmin(t *testing.T, open func(t *testing.T, now func() time.Time) AdminStore) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s AdminStore, clock *time.Time)
	}{
		{"Keys", adminKeys},
		{"KeyExpiry", adminKeyExpiry},
		{"Sessions", adminSessions},
		{"RevokeEndsSessions", adminRevokeEndsSessions},
		{"AuditListAndVerify", adminAudit},
		{"Classifications", adminClassifications},
		{"Imports", adminImports},
		{"SignInFailures", adminSignInFailures},
		{"SignInCodes", adminSignInCodes},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
			c.fn(t, open(t, func() time.Time { return clock }), &clock)
		})
	}
}

func adminKeys(t *testing.T, s AdminStore, _ *time.Time) {
	ctx := context.Background()
	k := &portrait.Key{Kind: portrait.KeyWrite, Name: "crm", Role: "admin", Clearance: "secret"}
	if err := s.CreateKey(ctx, k, "secret-123456"); err != nil {
		t.Fatal(err)
	}
	if k.ID == 0 || k.Role != "" || k.Clearance != "" {
		t.Errorf("a write key keeps no role or clearance, and gets an id: %+v", k)
	}
	// Creating the same secret again (an env key on every start) is a
	// no-op that returns the stored key.
	again := &portrait.Key{Kind: portrait.KeyWrite, Name: "other"}
	if err := s.CreateKey(ctx, again, "secret-123456"); err != nil || again.ID != k.ID || again.Name != "crm" {
		t.Errorf("create again: %+v %v", again, err)
	}
	if err := s.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}, "secret-123456"); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("the same secret for another kind: %v", err)
	}
	for _, bad := range []struct {
		k      *portrait.Key
		secret string
	}{
		{&portrait.Key{Kind: "root", Name: "x"}, "long-enough-secret"},
		{&portrait.Key{Kind: portrait.KeyWrite}, "long-enough-secret"},
		{&portrait.Key{Kind: portrait.KeyWrite, Name: "short"}, "1234567"},
	} {
		if err := s.CreateKey(ctx, bad.k, bad.secret); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%+v: %v", bad.k, err)
		}
	}
	got, err := s.Authenticate(ctx, portrait.KeyWrite, "secret-123456")
	if err != nil || got.Name != "crm" || got.ID != k.ID {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.Authenticate(ctx, portrait.KeyAdmin, "secret-123456"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a write key authenticated as admin: %v", err)
	}
	// Same prefix, another secret.
	if _, err := s.Authenticate(ctx, portrait.KeyWrite, "secret-123457"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a wrong secret with the same prefix: %v", err)
	}
	adm := &portrait.Key{Kind: portrait.KeyAdmin, Name: "analyst", Role: "custom", Scopes: []string{"profiles", "segments"}, Clearance: "internal", Priority: 3}
	if err := s.CreateKey(ctx, adm, "pat_abcdefgh12345678901234567890"); err != nil {
		t.Fatal(err)
	}
	def := &portrait.Key{Kind: portrait.KeyAdmin, Name: "root"}
	if err := s.CreateKey(ctx, def, "pat_zyxwvuts12345678901234567890"); err != nil {
		t.Fatal(err)
	}
	if def.Role != "admin" || def.Clearance != "secret" {
		t.Errorf("an admin key without a role: %+v", def)
	}
	got, err = s.Key(ctx, adm.ID)
	if err != nil || got.Role != "custom" || !reflect.DeepEqual(got.Scopes, adm.Scopes) || got.Clearance != "internal" || got.Priority != 3 || !got.CreatedAt.Equal(adm.CreatedAt) {
		t.Errorf("key: %+v %v, want %+v", got, err, adm)
	}
	if _, err := s.Key(ctx, 999999); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a missing key: %v", err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 3 || keys[0].ID != k.ID || keys[1].ID != adm.ID || keys[2].ID != def.ID {
		t.Errorf("list: %+v %v", keys, err)
	}
	if err := s.RevokeKey(ctx, adm.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, adm.ID); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("revoking twice: %v", err)
	}
	if _, err := s.Authenticate(ctx, portrait.KeyAdmin, "pat_abcdefgh12345678901234567890"); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED {
		t.Errorf("a revoked key authenticates: %v", err)
	}
}

func adminKeyExpiry(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	const secret = "pat_expiring_secret_0123456789"
	exp := &portrait.Key{Kind: portrait.KeyAdmin, Name: "temp", Role: "sales", Clearance: "confidential", ExpiresAt: clock.Add(time.Hour)}
	if err := s.CreateKey(ctx, exp, secret); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, portrait.KeyAdmin, secret); err != nil || !got.ExpiresAt.Equal(exp.ExpiresAt) || !got.CreatedAt.Equal(*clock) {
		t.Errorf("before expiry: %+v %v", got, err)
	}
	*clock = clock.Add(2 * time.Hour)
	if _, err := s.Authenticate(ctx, portrait.KeyAdmin, secret); portrait.ErrorCode(err) != portrait.EUNAUTHORIZED || !strings.Contains(err.Error(), "expired") {
		t.Errorf("after expiry: %v", err)
	}
}

func adminSessions(t *testing.T, s AdminStore, _ *time.Time) {
	ctx := context.Background()
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops", Role: "analyst", Clearance: "internal"}
	if err := s.CreateKey(ctx, k, "pat_secret-secret"); err != nil {
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
		if err := s.CreateSession(ctx, &portrait.Session{IDHash: fmt.Sprint("s", i), Key: k, Created: at, LastSeen: at, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, &portrait.Session{IDHash: "x", Key: &portrait.Key{ID: 999999}, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("session of a missing key: %v", err)
	}
	if err := s.CreateSession(ctx, &portrait.Session{IDHash: "", Key: k}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("session without an id: %v", err)
	}
	se, err := s.Session(ctx, "s2", t0)
	if err != nil || se.Key.ID != k.ID || se.Key.Role != "analyst" || se.Key.Clearance != "internal" ||
		!se.Created.Equal(t0.Add(2*time.Minute)) || !se.Expires.Equal(t0.Add(8*time.Hour)) {
		t.Fatalf("session: %+v %v", se, err)
	}
	if _, err := s.Session(ctx, "s0", t0.Add(2*time.Hour)); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("an expired session is served: %v", err)
	}
	// Touching s0 before it expires keeps it.
	if err := s.TouchSession(ctx, "s0", t0.Add(30*time.Minute), t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if se, err := s.Session(ctx, "s0", t0.Add(2*time.Hour)); err != nil || !se.LastSeen.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("a touched session: %+v %v", se, err)
	}
	n, err := s.PurgeSessions(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("purge: %d %v, want 1 (s1)", n, err)
	}
	// Trim to 2 keeps the two most recently seen: s0 (touched: seen at
	// +30m) and s4 (+4m).
	if err := s.TrimSessions(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"s0": true, "s2": false, "s3": false, "s4": true} {
		_, err := s.Session(ctx, id, t0)
		if got := err == nil; got != want {
			t.Errorf("after trim, %s present = %v (%v), want %v", id, got, err, want)
		}
	}
	if err := s.DeleteSession(ctx, "s0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "s0", t0); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a deleted session: %v", err)
	}
	if err := s.TrimSessions(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "s4", t0); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("trim to 0 kept a session: %v", err)
	}
}

func adminRevokeEndsSessions(t *testing.T, s AdminStore, _ *time.Time) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	k := &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}
	if err := s.CreateKey(ctx, k, "pat_revoked-secret"); err != nil {
		t.Fatal(err)
	}
	exp := &portrait.Key{Kind: portrait.KeyAdmin, Name: "brief", ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateKey(ctx, exp, "pat_brief-secret-1"); err != nil {
		t.Fatal(err)
	}
	for id, key := range map[string]*portrait.Key{"a": k, "b": exp} {
		if err := s.CreateSession(ctx, &portrait.Session{IDHash: id, Key: key, Created: t0, LastSeen: t0, Expires: t0.Add(8 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// A session ends with its key's expiry, whatever its own.
	if _, err := s.Session(ctx, "b", t0.Add(2*time.Hour)); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the session of an expired key: %v", err)
	}
	if err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "a", t0); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the session of a revoked key: %v", err)
	}
	if err := s.CreateSession(ctx, &portrait.Session{IDHash: "c", Key: k, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a session for a revoked key: %v", err)
	}
}

func adminAudit(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	if err := s.Record(ctx, portrait.AuditRecord{Actor: "alice"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("a record without an action: %v", err)
	}
	start := *clock
	for i, actor := range []string{"alice", "bob", "carol", "bob", "dave"} {
		action := "read"
		if i%2 == 1 {
			action = "export"
		}
		if err := s.Record(ctx, portrait.AuditRecord{Actor: actor, Action: action, Target: fmt.Sprintf("/v1/profiles/p%d", i),
			Fields: []portrait.AuditField{{Name: "phone", Level: "confidential", Masked: true}}}); err != nil {
			t.Fatal(err)
		}
		*clock = clock.Add(time.Minute)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 5 {
		t.Fatalf("verify: %d %v", n, err)
	}
	seqs := func(f portrait.AuditFilter) []int64 {
		t.Helper()
		recs, err := s.ListAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	for _, c := range []struct {
		f    portrait.AuditFilter
		want []int64
	}{
		{portrait.AuditFilter{}, []int64{1, 2, 3, 4, 5}},
		{portrait.AuditFilter{Actor: "bob"}, []int64{2, 4}},
		{portrait.AuditFilter{Action: "export"}, []int64{2, 4}},
		{portrait.AuditFilter{Target: "es/p3"}, []int64{4}},
		{portrait.AuditFilter{Since: start.Add(2 * time.Minute), Until: start.Add(4 * time.Minute)}, []int64{3, 4}},
		{portrait.AuditFilter{After: 2, Limit: 2}, []int64{3, 4}},
		{portrait.AuditFilter{Before: 4, Newest: true}, []int64{3, 2, 1}},
		{portrait.AuditFilter{Newest: true, Limit: 1}, []int64{5}},
		{portrait.AuditFilter{Actor: "nobody"}, []int64{}},
	} {
		if got := seqs(c.f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
	recs, err := s.ListAudit(ctx, portrait.AuditFilter{Actor: "carol"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%+v %v", recs, err)
	}
	r := recs[0]
	if r.Seq != 3 || !r.At.Equal(start.Add(2*time.Minute)) || r.Fields[0].Name != "phone" || !r.Fields[0].Masked || r.Prev == "" || r.Hash == "" {
		t.Errorf("record: %+v", r)
	}
	if prev, _ := s.ListAudit(ctx, portrait.AuditFilter{After: 1, Limit: 1}); prev[0].Hash != r.Prev {
		t.Errorf("record 3 does not chain to record 2: %q vs %q", r.Prev, prev[0].Hash)
	}
}

func adminClassifications(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	if got, err := s.Classifications(ctx); err != nil || len(got) != 0 {
		t.Errorf("none set: %+v %v", got, err)
	}
	for _, c := range []portrait.Classification{
		{Kind: "trait", Name: "phone", Level: "secret"},
		{Kind: "identifier", Name: "email", Level: "internal"},
		{Kind: "trait", Name: "Age", Level: "public"},
		{Kind: "trait", Name: "phone", Level: "confidential"}, // changed
	} {
		if err := s.SetClassification(ctx, c.Kind, c.Name, c.Level); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Classifications(ctx)
	want := []portrait.Classification{
		{Kind: "identifier", Name: "email", Level: "internal"},
		{Kind: "trait", Name: "Age", Level: "public"},
		{Kind: "trait", Name: "phone", Level: "confidential"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("classifications: %+v %v, want %+v", got, err, want)
	}
}

func adminImports(t *testing.T, s AdminStore, clock *time.Time) {
	ctx := context.Background()
	if _, err := s.ImportSummary(ctx, "nope"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a missing import: %v", err)
	}
	if page, next, err := s.ImportPage(ctx, "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("no imports: %v %q %v", page, next, err)
	}
	// Five imports: b and B share an update time with a, so the page
	// order must break ties by id, byte by byte.
	save := func(id, state string) {
		t.Helper()
		if err := s.SaveImport(ctx, id, "crm", state, []byte(`{"id":"`+id+`","state":"`+state+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	save("imp-a", "running")
	save("imp-b", "running")
	save("imp-B", "running")
	*clock = clock.Add(time.Second)
	save("imp-c", "running")
	*clock = clock.Add(time.Second)
	save("imp-a", "done") // updated: now the newest
	sum, err := s.ImportSummary(ctx, "imp-a")
	if err != nil || string(sum) != `{"id":"imp-a","state":"done"}` {
		t.Errorf("summary: %s %v", sum, err)
	}
	all, err := s.ImportSummaries(ctx)
	var ids []string
	for _, b := range all {
		ids = append(ids, strings.Split(string(b), `"`)[3])
	}
	if err != nil || strings.Join(ids, " ") != "imp-B imp-b imp-c imp-a" {
		t.Errorf("summaries oldest first: %v %v", ids, err)
	}
	var pages []string
	cursor := ""
	for i := 0; i < 10; i++ {
		page, next, err := s.ImportPage(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range page {
			ids = append(ids, strings.Split(string(b), `"`)[3])
		}
		pages = append(pages, strings.Join(ids, ","))
		if next == "" {
			break
		}
		cursor = next
	}
	if got := strings.Join(pages, " | "); got != "imp-a,imp-c | imp-b,imp-B" {
		t.Errorf("pages newest first: %s", got)
	}
	for _, bad := range []string{"x", "12", "x:imp-a", "12:"} {
		if _, _, err := s.ImportPage(ctx, bad, 2); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}
