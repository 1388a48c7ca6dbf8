package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// storeServer is a server on a data directory that a test can stop and
// start again, as a restart of the process would.
type storeServer struct {
	dir   string
	clock *clock
	db    *sqlite.DB
	ts    *httptest.Server
	cs    *consoleServer
}

func (ss *storeServer) start(t *testing.T) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), ss.dir)
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Now = ss.clock.Now
	ss.db, ss.ts = db, httptest.NewServer(s.Handler())
	ss.cs = &consoleServer{Server: s, url: ss.ts.URL, clock: ss.clock}
}

func (ss *storeServer) stop() {
	ss.ts.Close()
	ss.db.Close()
}

func newStoreServer(t *testing.T) *storeServer {
	t.Helper()
	ss := &storeServer{dir: t.TempDir(), clock: &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}}
	ss.start(t)
	t.Cleanup(func() { ss.stop() })
	if err := ss.db.CreateKey(context.Background(), &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}, adminKey); err != nil {
		t.Fatal(err)
	}
	return ss
}

func idHash(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}

func TestSessionSurvivesRestart(t *testing.T) {
	ss := newStoreServer(t)
	cookie, csrf := ss.cs.signIn(t)
	ss.stop()
	ss.clock.advance(time.Hour)
	ss.start(t)

	a := ss.cs.call(t, "GET", "/v1/session", "", cookie, nil)
	if a.status != 200 {
		t.Fatalf("session after a restart: %d %s", a.status, a.raw)
	}
	if a.body["csrf_token"] != csrf {
		t.Errorf("the CSRF token changed across the restart: %v, was %s", a.body["csrf_token"], csrf)
	}
	// The store holds the id's hash only, and the session is found by it.
	se, err := ss.db.Session(context.Background(), idHash(cookie), ss.clock.Now())
	if err != nil || se.Key.Name != "ops" {
		t.Fatalf("session by id hash: %v %+v", err, se)
	}
	if _, err := ss.db.Session(context.Background(), cookie, ss.clock.Now()); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the store must not know the session by its cookie value: %v", err)
	}
	// Writes with the same CSRF token still pass after the restart.
	if a := ss.cs.call(t, "DELETE", "/v1/session", "", cookie, map[string]string{"X-CSRF-Token": csrf}); a.status != 204 {
		t.Fatalf("sign-out after restart: %d %s", a.status, a.raw)
	}
	// Sign-out deleted the row: even a clock before its expiry finds nothing,
	// and so does a server started afterwards.
	if _, err := ss.db.Session(context.Background(), idHash(cookie), ss.clock.Now()); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("session row after sign-out: %v", err)
	}
	ss.stop()
	ss.start(t)
	if a := ss.cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 401 {
		t.Errorf("signed-out session after a restart: %d %s", a.status, a.raw)
	}
}

func TestSessionExpiryAcrossRestart(t *testing.T) {
	ss := newStoreServer(t)
	cookie, _ := ss.cs.signIn(t)
	ss.stop()
	ss.clock.advance(sessionIdleForTest + time.Minute)
	ss.start(t)
	if a := ss.cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 401 {
		t.Errorf("a session idle for longer than 8 hours, across a restart: %d %s", a.status, a.raw)
	}
}

const sessionIdleForTest = 8 * time.Hour

func TestSessionEndsWhenKeyRevoked(t *testing.T) {
	ss := newStoreServer(t)
	ctx := context.Background()
	cookie, csrf := ss.cs.signIn(t)
	other := "pat_other-admin-secret"
	if err := ss.db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "other"}, other); err != nil {
		t.Fatal(err)
	}
	a := ss.cs.call(t, "POST", "/v1/session", `{"token":"`+other+`"}`, "", nil)
	if a.status != 200 {
		t.Fatalf("second sign-in: %d %s", a.status, a.raw)
	}
	otherCookie := a.cookie.Value
	// A one-time link printed before the revocation.
	link, err := ss.cs.SignInLink(ctx, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ss.db.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, k := range keys {
		if k.Name == "ops" {
			id = k.ID
		}
	}
	// The server's key cache holds the token now (it was just used); the
	// session must end anyway, at once, with no time passing.
	if err := ss.db.RevokeKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if a := ss.cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 401 {
		t.Errorf("session of a revoked key: %d %s", a.status, a.raw)
	}
	if a := ss.cs.call(t, "GET", "/v1/quarantine", "", cookie, consoleHeader); a.status != 401 {
		t.Errorf("API call with a revoked key's session: %d %s", a.status, a.raw)
	}
	if a := ss.cs.call(t, "DELETE", "/v1/session", "", cookie, map[string]string{"X-CSRF-Token": csrf}); a.status != 401 {
		t.Errorf("sign-out of a revoked key's session: %d %s", a.status, a.raw)
	}
	if _, err := ss.db.Session(ctx, idHash(cookie), time.Time{}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("revocation must delete the key's session rows: %v", err)
	}
	// Signing in again with the revoked token fails even though the key
	// cache still trusts it, and so does the old one-time link.
	if a := ss.cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil); a.status != 401 || a.cookie != nil && a.cookie.Value != "" {
		t.Errorf("sign-in with a revoked token: %d %s", a.status, a.raw)
	}
	if a := ss.cs.followLink(t, link); a.status != 303 || !strings.Contains(a.header.Get("Location"), "reason=link") || a.cookie != nil {
		t.Errorf("one-time link of a revoked key: %d %v", a.status, a.header)
	}
	// Other keys' sessions are untouched.
	if a := ss.cs.call(t, "GET", "/v1/session", "", otherCookie, nil); a.status != 200 {
		t.Errorf("another key's session after a revocation: %d %s", a.status, a.raw)
	}
	if err := ss.db.RevokeKey(ctx, id); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("revoking a revoked key: %v", err)
	}
}

func TestSessionExpiredRowsPurged(t *testing.T) {
	ss := newStoreServer(t)
	ctx := context.Background()
	old, _ := ss.cs.signIn(t)
	signedInAt := ss.clock.Now()
	ss.clock.advance(9 * time.Hour)
	// A sign-in purges expired rows.
	ss.cs.signIn(t)
	if _, err := ss.db.Session(ctx, idHash(old), signedInAt); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("expired session row still stored after a sign-in: %v", err)
	}
}

// BenchmarkSessionLookup: a request authenticated by the stored session
// (one indexed read joined with keys) against GET /healthz in the same run.
func BenchmarkSessionLookup(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(b))
	if err != nil {
		b.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	defer db.Close()
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}, adminKey); err != nil {
		b.Fatal(err)
	}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/session", strings.NewReader(`{"token":"`+adminKey+`"}`)))
	var cookie string
	for _, c := range rec.Result().Cookies() {
		cookie = c.Value
	}
	if rec.Code != 200 || cookie == "" {
		b.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
	}
	for _, bc := range []struct{ name, path, cookie string }{{"healthz", "/healthz", ""}, {"session", "/v1/session", cookie}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", bc.path, nil)
				if bc.cookie != "" {
					req.AddCookie(&http.Cookie{Name: "portrait_session", Value: bc.cookie})
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d %s", bc.path, w.Code, w.Body)
				}
			}
		})
	}
}
