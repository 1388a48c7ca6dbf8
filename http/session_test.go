package http_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type consoleServer struct {
	*porthttp.Server
	url   string
	clock *clock
}

// consoleStart serves the real handler (real key store) with a clock the
// test moves, and a console of a few files.
func consoleStart(t *testing.T, tls bool) *consoleServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	t.Cleanup(func() { db.Close() })
	for kind, secret := range map[string]string{portrait.KeyWrite: writeKey, portrait.KeyAdmin: adminKey} {
		if err := db.CreateKey(ctx, &portrait.Key{Kind: kind, Name: "ops"}, secret); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Now = c.Now
	s.Console = fstest.MapFS{
		"index.html":             {Data: []byte(`<!doctype html><head><title>Portrait</title><script type="module" src="/assets/index-abc123.js"></script></head>`)},
		"assets/index-abc123.js": {Data: []byte("console.log('portrait');" + strings.Repeat(" ", 4096))},
		"favicon.svg":            {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		"routes.json":            {Data: []byte(`[{"path": "/profiles/:id", "files": [], "fetch": "/v1/profiles/:id/view?events=50&x=1"}]`)},
	}
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(s.Handler())
	} else {
		ts = httptest.NewServer(s.Handler())
	}
	t.Cleanup(ts.Close)
	return &consoleServer{Server: s, url: ts.URL, clock: c}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	cookie *http.Cookie
}

// call sends one request without following redirects; cookie, when not
// empty, is sent as the session cookie.
func (cs *consoleServer) call(t *testing.T, method, path, body, cookie string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, cs.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "portrait_session", Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: insecureTLS()},
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	for _, c := range resp.Cookies() {
		if c.Name == "portrait_session" {
			a.cookie = c
		}
	}
	return a
}

func (cs *consoleServer) signIn(t *testing.T) (cookie, csrf string) {
	t.Helper()
	a := cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil)
	if a.status != 200 || a.cookie == nil {
		t.Fatalf("sign-in: %d %s", a.status, a.raw)
	}
	return a.cookie.Value, a.body["csrf_token"].(string)
}

func TestSessionSignIn(t *testing.T) {
	cs := consoleStart(t, false)
	a := cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil)
	if a.status != 200 || a.cookie == nil {
		t.Fatalf("sign-in: %d %s", a.status, a.raw)
	}
	c := a.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" || c.MaxAge <= 0 || len(c.Value) < 40 {
		t.Errorf("cookie: %+v", c)
	}
	p, _ := a.body["principal"].(map[string]any)
	if p["name"] != "ops" || p["kind"] != "admin" || p["role"] != "admin" || p["clearance"] != "secret" {
		t.Errorf("principal: %s", a.raw)
	}
	csrf, _ := a.body["csrf_token"].(string)
	exp, err := time.Parse(time.RFC3339, a.body["expires_at"].(string))
	if csrf == "" || err != nil || !exp.Equal(cs.clock.Now().Add(8*time.Hour)) {
		t.Errorf("csrf %q, expires %v (%v): %s", csrf, exp, err, a.raw)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("session answers must not be cached: %q", a.header.Get("Cache-Control"))
	}

	g := cs.call(t, "GET", "/v1/session", "", c.Value, nil)
	if g.status != 200 || g.body["csrf_token"] != csrf {
		t.Errorf("GET /v1/session: %d %s", g.status, g.raw)
	}
	// Every admin route takes the cookie instead of a Bearer token.
	if q := cs.call(t, "GET", "/v1/quarantine", "", c.Value, nil); q.status != 200 {
		t.Errorf("admin route with the cookie: %d %s", q.status, q.raw)
	}
	// A Bearer token still works, and wins over a cookie.
	if q := cs.call(t, "GET", "/v1/quarantine", "", "", map[string]string{"Authorization": "Bearer " + adminKey}); q.status != 200 {
		t.Errorf("Bearer: %d %s", q.status, q.raw)
	}
	if q := cs.call(t, "GET", "/v1/quarantine", "", "forged", nil); q.status != 401 {
		t.Errorf("forged cookie: %d %s", q.status, q.raw)
	}
	if g := cs.call(t, "GET", "/v1/session", "", "", nil); g.status != 401 {
		t.Errorf("signed out GET /v1/session: %d %s", g.status, g.raw)
	}
}

func TestSessionRefusesBadTokens(t *testing.T) {
	cs := consoleStart(t, false)
	for _, c := range []struct{ name, body string }{
		{"wrong token", `{"token":"pat_wrong-token"}`},
		{"write key", `{"token":"` + writeKey + `"}`},
	} {
		a := cs.call(t, "POST", "/v1/session", c.body, "", nil)
		if a.status != 401 || a.cookie != nil || a.body["error"] == nil {
			t.Errorf("%s: %d %s", c.name, a.status, a.raw)
		}
	}
	for _, body := range []string{`{"token":""}`, `not json`} {
		if a := cs.call(t, "POST", "/v1/session", body, "", nil); a.status != 400 || a.cookie != nil {
			t.Errorf("%q: %d %s", body, a.status, a.raw)
		}
	}
}

func TestSessionCSRF(t *testing.T) {
	cs := consoleStart(t, false)
	cookie, csrf := cs.signIn(t)
	// A write with the cookie and no CSRF token is refused before the
	// handler runs; with the token, the handler answers (here: 503, this
	// test server has no importer).
	a := cs.call(t, "POST", "/v1/imports", "", cookie, nil)
	if a.status != 403 || !strings.Contains(a.raw, "CSRF") {
		t.Errorf("no CSRF token: %d %s", a.status, a.raw)
	}
	a = cs.call(t, "POST", "/v1/imports", "", cookie, map[string]string{"X-CSRF-Token": csrf + "x"})
	if a.status != 403 {
		t.Errorf("wrong CSRF token: %d %s", a.status, a.raw)
	}
	a = cs.call(t, "POST", "/v1/imports", "", cookie, map[string]string{"X-CSRF-Token": csrf})
	if a.status != 503 || !strings.Contains(a.raw, "imports") {
		t.Errorf("with the CSRF token the handler should answer: %d %s", a.status, a.raw)
	}
	// Another session's token does not do.
	_, other := cs.signIn(t)
	if a = cs.call(t, "POST", "/v1/imports", "", cookie, map[string]string{"X-CSRF-Token": other}); a.status != 403 {
		t.Errorf("another session's CSRF token: %d %s", a.status, a.raw)
	}
	// Sign-out is a write too.
	if a = cs.call(t, "DELETE", "/v1/session", "", cookie, nil); a.status != 403 {
		t.Errorf("sign-out without CSRF: %d %s", a.status, a.raw)
	}
	a = cs.call(t, "DELETE", "/v1/session", "", cookie, map[string]string{"X-CSRF-Token": csrf})
	if a.status != 204 || a.cookie == nil || a.cookie.MaxAge >= 0 {
		t.Errorf("sign-out: %d %s %+v", a.status, a.raw, a.cookie)
	}
	if a = cs.call(t, "GET", "/v1/quarantine", "", cookie, nil); a.status != 401 {
		t.Errorf("after sign-out: %d %s", a.status, a.raw)
	}
}

func TestSessionExpiry(t *testing.T) {
	cs := consoleStart(t, false)
	cookie, _ := cs.signIn(t)
	// Sliding renewal: a request every 7 hours keeps the session alive
	// past the 8-hour idle limit...
	for i := 0; i < 3; i++ {
		cs.clock.advance(7 * time.Hour)
		if a := cs.call(t, "GET", "/v1/quarantine", "", cookie, nil); a.status != 200 {
			t.Fatalf("after %d h of use: %d %s", 7*(i+1), a.status, a.raw)
		}
	}
	// ...and 8 idle hours end it.
	cs.clock.advance(8 * time.Hour)
	a := cs.call(t, "GET", "/v1/quarantine", "", cookie, consoleHeader)
	if a.status != 401 || !strings.Contains(a.raw, "expired") {
		t.Errorf("idle session: %d %s", a.status, a.raw)
	}
	if a.header.Get("WWW-Authenticate") != "" {
		t.Errorf("a console request must not get WWW-Authenticate (the browser would open its own dialog): %q", a.header.Get("WWW-Authenticate"))
	}
	if a = cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 401 {
		t.Errorf("GET /v1/session of an expired session: %d %s", a.status, a.raw)
	}

	// However busy, a session ends after 7 days.
	cookie, _ = cs.signIn(t)
	for h := 0; h < 7*24-6; h += 6 {
		cs.clock.advance(6 * time.Hour)
		if a := cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 200 {
			t.Fatalf("busy session at %d h: %d %s", h+6, a.status, a.raw)
		}
	}
	cs.clock.advance(6 * time.Hour)
	if a := cs.call(t, "GET", "/v1/session", "", cookie, nil); a.status != 401 {
		t.Errorf("session older than 7 days: %d %s", a.status, a.raw)
	}
}

var consoleHeader = map[string]string{"X-Requested-With": "portrait-console"}

func (cs *consoleServer) followLink(t *testing.T, link string) answer {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return cs.call(t, "GET", u.RequestURI(), "", "", nil)
}

func TestSessionOneTimeLink(t *testing.T) {
	cs := consoleStart(t, false)
	ctx := context.Background()
	link, err := cs.SignInLink(ctx, adminKey)
	if err != nil || !strings.Contains(link, "/console/signin?once=") {
		t.Fatalf("link %q: %v", link, err)
	}
	a := cs.followLink(t, link)
	if a.status != 303 || a.header.Get("Location") != "/" || a.cookie == nil || !a.cookie.HttpOnly || a.cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("first use: %d %v %+v", a.status, a.header, a.cookie)
	}
	if g := cs.call(t, "GET", "/v1/session", "", a.cookie.Value, nil); g.status != 200 {
		t.Errorf("session from the link: %d %s", g.status, g.raw)
	}
	// Used once, it is gone.
	a = cs.followLink(t, link)
	if a.status != 303 || a.header.Get("Location") != "/signin?reason=link" || a.cookie != nil {
		t.Errorf("reused link: %d %v %+v", a.status, a.header, a.cookie)
	}
	// Unused but older than 10 minutes: refused.
	link, _ = cs.SignInLink(ctx, "")
	cs.clock.advance(11 * time.Minute)
	if a = cs.followLink(t, link); a.status != 303 || a.header.Get("Location") != "/signin?reason=link" || a.cookie != nil {
		t.Errorf("stale link: %d %v %+v", a.status, a.header, a.cookie)
	}
	if a = cs.call(t, "GET", "/console/signin?once=made-up", "", "", nil); a.cookie != nil {
		t.Errorf("made-up code signed in: %+v", a.cookie)
	}
	if _, err := cs.SignInLink(ctx, "pat_not-a-token"); err == nil {
		t.Errorf("a link for a wrong token")
	}
}

func TestSessionThrottlesFailures(t *testing.T) {
	cs := consoleStart(t, false)
	for i := 0; i < 10; i++ {
		if a := cs.call(t, "POST", "/v1/session", `{"token":"pat_guess-`+string(rune('a'+i))+`"}`, "", nil); a.status != 401 {
			t.Fatalf("guess %d: %d %s", i, a.status, a.raw)
		}
	}
	// Now even the right token is refused until the window has passed.
	a := cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil)
	if a.status != 401 || a.cookie != nil || a.header.Get("Retry-After") == "" || !strings.Contains(a.raw, "too many") {
		t.Errorf("after 10 failures: %d %s %v", a.status, a.raw, a.header)
	}
	cs.clock.advance(5*time.Minute + time.Second)
	if a = cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil); a.status != 200 || a.cookie == nil {
		t.Errorf("after the window: %d %s", a.status, a.raw)
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	cs := consoleStart(t, true)
	a := cs.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil)
	if a.status != 200 || a.cookie == nil || !a.cookie.Secure || !a.cookie.HttpOnly {
		t.Errorf("over TLS: %d %+v", a.status, a.cookie)
	}
}

func TestConsoleFiles(t *testing.T) {
	cs := consoleStart(t, false)
	for _, c := range []struct {
		path, typ, cache, contains string
	}{
		{"/", "text/html; charset=utf-8", "no-cache", "<title>Portrait"},
		{"/profiles/p_123", "text/html; charset=utf-8", "no-cache", "<title>Portrait"}, // deep link after a reload
		{"/segments", "text/html; charset=utf-8", "no-cache", "<title>Portrait"},
		{"/assets/index-abc123.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "console.log"},
		{"/favicon.svg", "image/svg+xml", "no-cache", "<svg"},
	} {
		a := cs.call(t, "GET", c.path, "", "", nil)
		if a.status != 200 || a.header.Get("Content-Type") != c.typ || a.header.Get("Cache-Control") != c.cache || !strings.Contains(a.raw, c.contains) {
			t.Errorf("%s: %d %q %q %.60q", c.path, a.status, a.header.Get("Content-Type"), a.header.Get("Cache-Control"), a.raw)
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.path)
		}
	}
	if a := cs.call(t, "GET", "/", "", "", nil); !strings.Contains(a.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("index.html without a CSP: %v", a.header)
	}
	// Missing assets and unknown API paths are JSON 404s, never index.html.
	for _, p := range []string{"/assets/index-gone.js", "/robots.txt", "/v1/nothing", "/v1"} {
		a := cs.call(t, "GET", p, "", "", nil)
		e, _ := a.body["error"].(map[string]any)
		if a.status != 404 || e["code"] != "not_found" {
			t.Errorf("%s: %d %s", p, a.status, a.raw)
		}
	}
	if a := cs.call(t, "POST", "/somewhere", "x", "", nil); a.status != 404 || a.body["error"] == nil {
		t.Errorf("POST to a console path: %d %s", a.status, a.raw)
	}
	// gzip for those who ask (Go's client would decompress on its own, so
	// the raw transport is used).
	req, _ := http.NewRequest("GET", cs.url+"/assets/index-abc123.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("no gzip: %v", resp.Header)
	}
}

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } // httptest's own certificate

// TestConsolePageCarriesSession: the console's page carries what GET
// /v1/session answers (so a first load renders without that round trip):
// the session with its CSRF token for a signed-in browser, never kept by a
// cache, and null for one that is not signed in or whose session ended;
// and a signed-in browser's page preloads the page's first API call.
func TestConsolePageCarriesSession(t *testing.T) {
	cs := consoleStart(t, false)
	re := regexp.MustCompile(`<script type="application/json" id="portrait-session">(.*?)</script>\n(?:    <link[^>]*>\n)?</head>`)
	page := func(cookie string) (answer, string) {
		t.Helper()
		a := cs.call(t, "GET", "/profiles/p_1", "", cookie, nil)
		m := re.FindStringSubmatch(a.raw)
		if a.status != 200 || m == nil {
			t.Fatalf("page without the session block: %d %q", a.status, a.raw)
		}
		return a, m[1]
	}
	if a, s := page(""); s != "null" || a.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("not signed in: session %s, Cache-Control %q", s, a.header.Get("Cache-Control"))
	}
	cookie, csrf := cs.signIn(t)
	a, s := page(cookie)
	api := cs.call(t, "GET", "/v1/session", "", cookie, nil)
	var got map[string]any
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("session block %q: %v", s, err)
	}
	if got["csrf_token"] != csrf || !reflect.DeepEqual(got, api.body) {
		t.Errorf("the page's session %v, GET /v1/session %v (csrf %s)", got, api.body, csrf)
	}
	if a.header.Get("Cache-Control") != "private, no-store" || !strings.Contains(strings.Join(a.header.Values("Vary"), ","), "Cookie") {
		t.Errorf("a page with a session may be cached: %v", a.header)
	}
	// The page's first API call is preloaded with a signed-in browser's page
	// (parameters as the console writes them), with nobody else's.
	preload := func(path, cookie string) string {
		m := regexp.MustCompile(`<link rel="preload" as="fetch" crossorigin href="([^"]*)">`).FindStringSubmatch(cs.call(t, "GET", path, "", cookie, nil).raw)
		if m == nil {
			return ""
		}
		return m[1]
	}
	if got := preload("/profiles/p_1", cookie); got != "/v1/profiles/p_1/view?events=50&amp;x=1" {
		t.Errorf("signed in: preload %q", got)
	}
	for _, p := range []string{"/profiles/a%20b", "/profiles/%3Cx%3E", "/signin"} {
		if got := preload(p, cookie); got != "" {
			t.Errorf("%s: preload %q", p, got)
		}
	}
	if got := preload("/profiles/p_1", ""); got != "" {
		t.Errorf("not signed in: preload %q", got)
	}
	cs.call(t, "DELETE", "/v1/session", "", cookie, map[string]string{"X-CSRF-Token": csrf})
	if _, s := page(cookie); s != "null" {
		t.Errorf("after sign-out the page says %s", s)
	}
	if got := preload("/profiles/p_1", cookie); got != "" {
		t.Errorf("signed out: preload %q", got)
	}
}
