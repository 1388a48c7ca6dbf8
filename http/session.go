package http

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

// The console signs in with an API token once and then holds a session
// cookie: the token never sits in the browser's storage, where any script
// could read it. Sessions live in the key store, so they survive a restart
// and end with their key.
const (
	sessionCookie = "portrait_session"
	// sessionIdle is renewed by every request (sliding); sessionMax bounds
	// a session however busy it is.
	sessionIdle = 8 * time.Hour
	sessionMax  = 7 * 24 * time.Hour
	// A one-time sign-in code is printed on a terminal and clicked at once.
	signInCodeTTL = 10 * time.Minute
	// Sign-in failures per client address within signInWindow before
	// further attempts are refused until the window has passed.
	signInMaxFails = 10
	signInWindow   = 5 * time.Minute
	// Caps keep a flood of sign-ins from growing the store or memory
	// without bound.
	maxSessions    = 10000
	maxSignInCodes = 1000
	maxFailClients = 10000
)

// Principal is who a request acts for, as the console shows it: the key's
// role, clearance and the scopes the role holds. The pages read them from
// here, never guess them, and hide what the role cannot do.
type Principal struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Role      string   `json:"role"`
	Clearance string   `json:"clearance"`
	Scopes    []string `json:"scopes"`
}

func principalOf(k *portrait.Key) Principal {
	p := access.PrincipalOf(k)
	scopes := p.Scopes
	if p.Role != access.RoleCustom {
		scopes = access.RoleScopes(p.Role)
	}
	if scopes == nil {
		scopes = []string{}
	}
	return Principal{Name: k.Name, Kind: k.Kind, Role: p.Role, Clearance: p.Clearance.String(), Scopes: scopes}
}

type session struct {
	key     *portrait.Key
	csrf    string
	created time.Time
	seen    time.Time
	expires time.Time
}

// sessionExpiry: the idle window slides with use, the absolute one does not.
func sessionExpiry(created, seen time.Time) time.Time {
	idle, abs := seen.Add(sessionIdle), created.Add(sessionMax)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// sessionTouchEvery spares the store a write per request: last-seen moves
// at most this often, so the idle window is sessionIdle minus at most this.
const sessionTouchEvery = time.Minute

type signInCode struct {
	key     *portrait.Key
	expires time.Time
}

type failures struct {
	n     int
	first time.Time
}

// sessions is the server's in-memory sign-in state: one-time codes and
// failure counts, used only when the store keeps none (a store that is a
// portrait.SignInGuard keeps them, so that they survive a restart and are
// shared by api nodes: signInGuard). Sessions themselves are in the store
// (portrait.SessionStore). Secrets are kept only as their SHA-256, so the
// maps' keys say nothing usable.
type sessions struct {
	mu    sync.Mutex
	codes map[[32]byte]*signInCode
	fails map[string]*failures
}

func hashSecret(v string) [32]byte { return sha256.Sum256([]byte(v)) }

func sessionIDHash(id string) string {
	h := hashSecret(id)
	return hex.EncodeToString(h[:])
}

// csrfOf derives a session's CSRF token from its cookie value, so the store
// keeps nothing for it and a copy of the store (which holds only hashes of
// the ids) yields no token either.
func csrfOf(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("portrait csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionStore is where sessions live: the server's Sessions, or the key
// store when it keeps them too (sqlite does), since sessions must die with
// their keys.
func (s *Server) sessionStore() (portrait.SessionStore, error) {
	if s.Sessions != nil {
		return s.Sessions, nil
	}
	if st, ok := s.Keys.(portrait.SessionStore); ok {
		return st, nil
	}
	return nil, portrait.Errorf(portrait.EINTERNAL, "console sessions need a session store")
}

// newSession stores a session for k and returns its cookie value. Expired
// sessions are purged here, and the least recently seen ones go when there
// are too many.
func (s *Server) newSession(ctx context.Context, k *portrait.Key) (string, *session, error) {
	st, err := s.sessionStore()
	if err != nil {
		return "", nil, err
	}
	now := s.Now()
	if _, err := st.PurgeSessions(ctx, now); err != nil {
		return "", nil, err
	}
	if err := st.TrimSessions(ctx, maxSessions-1); err != nil {
		return "", nil, err
	}
	id := randomToken()
	se := &session{key: k, csrf: csrfOf(id), created: now, seen: now, expires: sessionExpiry(now, now)}
	err = st.CreateSession(ctx, &portrait.Session{IDHash: sessionIDHash(id), Key: k, Created: now, LastSeen: now, Expires: se.expires})
	if portrait.ErrorCode(err) == portrait.ENOTFOUND {
		// The key was revoked since it was checked (the key cache, or a
		// one-time link printed before the revocation).
		return "", nil, portrait.Errorf(portrait.EUNAUTHORIZED, "this key has been revoked")
	}
	if err != nil {
		return "", nil, err
	}
	return id, se, nil
}

// lookup returns the live session with cookie value id, renewing it.
//
// Every console request asks for its session, and GET /v1/session is on
// the path of every first load. Reading the store for each took 0.3–6 s
// under load: the read waits for one of the store's few read connections
// behind the page's own queries and the demo's analyses. So a session read
// from the store is kept in memory (sessionCache) and answers without a
// store read:
//   - at once ended when this process ends it (sign-out) or revokes its key
//     (forgetKey), or when the store says its sessions or keys changed
//     (sessionChanges: sqlite counts revocations, deletions and purges,
//     also those made by a direct call such as a test's);
//   - for at most sessionCacheTTL otherwise, so a revocation made by
//     another process (`portrait keys revoke`, another node) ends the
//     session within that time instead of at the next request;
//   - never past its expiry, which is checked on the clock as before.
//
// Renewal still writes through to the store, at most once a minute.
func (s *Server) lookupSession(ctx context.Context, id string) (*session, error) {
	st, err := s.sessionStore()
	if err != nil {
		return nil, err
	}
	now := s.Now()
	h := sessionIDHash(id)
	se, ok := s.sessionCache.get(h, now, storeGeneration(st))
	if !ok {
		gen := storeGeneration(st) // before the read: a change during it drops the entry
		rec, err := st.Session(ctx, h, now)
		if portrait.ErrorCode(err) == portrait.ENOTFOUND {
			s.sessionCache.drop(h)
			return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "the session has expired or was ended; sign in again")
		}
		if err != nil {
			return nil, err
		}
		se = &session{key: rec.Key, csrf: csrfOf(id), created: rec.Created, seen: rec.LastSeen, expires: rec.Expires}
		s.sessionCache.put(h, se, now, gen)
	}
	if now.Sub(se.seen) >= sessionTouchEvery {
		seen, expires := now, sessionExpiry(se.created, now)
		if err := st.TouchSession(ctx, h, seen, expires); err != nil {
			return nil, err
		}
		se = &session{key: se.key, csrf: se.csrf, created: se.created, seen: seen, expires: expires}
		s.sessionCache.renewed(h, se)
	}
	return se, nil
}

// sessionCacheTTL bounds how long a session read from the store is used
// without reading it again (see lookupSession).
const sessionCacheTTL = 5 * time.Second

// sessionChanges is a session store that counts the changes that can end
// sessions (revoked keys, deleted or purged sessions): a cached session
// read before a change is read again.
type sessionChanges interface {
	SessionChanges() uint64
}

func storeGeneration(st portrait.SessionStore) uint64 {
	if c, ok := st.(sessionChanges); ok {
		return c.SessionChanges()
	}
	return 0
}

// sessionCache holds sessions by the hash of their id.
type sessionCache struct {
	mu      sync.Mutex
	entries map[string]cachedSession
}

type cachedSession struct {
	se  *session // not changed once cached: renewals replace it
	at  time.Time
	gen uint64
}

func (c *sessionCache) get(h string, now time.Time, gen uint64) (*session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok {
		return nil, false
	}
	if e.gen != gen || now.Sub(e.at) >= sessionCacheTTL || now.Before(e.at) || !now.Before(e.se.expires) || e.se.key.Expired(now) {
		delete(c.entries, h)
		return nil, false
	}
	return e.se, true
}

func (c *sessionCache) put(h string, se *session, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxSessions {
		c.entries = map[string]cachedSession{}
	}
	c.entries[h] = cachedSession{se: se, at: now, gen: gen}
}

// renewed replaces a cached session after its renewal was stored.
func (c *sessionCache) renewed(h string, se *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[h]; ok {
		e.se = se
		c.entries[h] = e
	}
}

func (c *sessionCache) drop(h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, h)
}

// dropKey ends the cached sessions of a revoked key.
func (c *sessionCache) dropKey(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.se.key.ID == id {
			delete(c.entries, h)
		}
	}
}

func (ss *sessions) newCode(k *portrait.Key, now time.Time) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.codes == nil {
		ss.codes = map[[32]byte]*signInCode{}
	}
	for h, c := range ss.codes {
		if !now.Before(c.expires) {
			delete(ss.codes, h)
		}
	}
	if len(ss.codes) >= maxSignInCodes {
		clear(ss.codes)
	}
	code := randomToken()
	ss.codes[hashSecret(code)] = &signInCode{key: k, expires: now.Add(signInCodeTTL)}
	return code
}

// takeCode consumes a one-time code: it works once, and only while fresh.
func (ss *sessions) takeCode(code string, now time.Time) (*portrait.Key, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := hashSecret(code)
	c, ok := ss.codes[h]
	if !ok {
		return nil, false
	}
	delete(ss.codes, h)
	if !now.Before(c.expires) {
		return nil, false
	}
	return c.key, true
}

// signInGuard is the store's sign-in state, if it keeps one.
func (s *Server) signInGuard() portrait.SignInGuard {
	if g, ok := s.Keys.(portrait.SignInGuard); ok {
		return g
	}
	return nil
}

// throttled reports how long client must wait before trying to sign in
// again (0: it may try now): from the store's counts when it keeps them
// (every node's failures), else this process's. A store that cannot answer
// leaves this process's counts to decide, rather than refusing everyone.
func (s *Server) throttled(ctx context.Context, client string) time.Duration {
	now := s.Now()
	g := s.signInGuard()
	if g == nil {
		return s.sessions.throttled(client, now)
	}
	n, first, err := g.SignInFailures(ctx, sessionIDHash(client), now, signInWindow)
	if err != nil {
		s.Log.Warn("cannot read the sign-in throttle", "err", err)
		return s.sessions.throttled(client, now)
	}
	if n < signInMaxFails {
		return 0
	}
	return first.Add(signInWindow).Sub(now)
}

// signInFailed counts a failure of client, in the store when it keeps
// them (and in this process when it cannot).
func (s *Server) signInFailed(ctx context.Context, client string) {
	now := s.Now()
	if g := s.signInGuard(); g != nil {
		_, _, err := g.SignInFailed(context.WithoutCancel(ctx), sessionIDHash(client), now, signInWindow)
		if err == nil {
			return
		}
		s.Log.Warn("cannot count a failed sign-in in the store", "err", err)
	}
	s.sessions.failed(client, now)
}

// newSignInCode makes a one-time code for k, kept in the store when it
// keeps them (so any node takes it), else in this process.
func (s *Server) newSignInCode(ctx context.Context, k *portrait.Key) (string, error) {
	now := s.Now()
	g := s.signInGuard()
	if g == nil {
		return s.sessions.newCode(k, now), nil
	}
	code := randomToken()
	if err := g.PutSignInCode(ctx, sessionIDHash(code), k.ID, now, now.Add(signInCodeTTL)); err != nil {
		return "", err
	}
	return code, nil
}

// takeSignInCode consumes a one-time code: it works once, on any node, and
// only while fresh; the key is read again (it may have changed or gone).
func (s *Server) takeSignInCode(ctx context.Context, code string) (*portrait.Key, bool) {
	now := s.Now()
	g := s.signInGuard()
	if g == nil {
		return s.sessions.takeCode(code, now)
	}
	if code == "" {
		return nil, false
	}
	id, ok, err := g.TakeSignInCode(ctx, sessionIDHash(code), now)
	if err != nil {
		s.Log.Warn("cannot take a sign-in code", "err", err)
		return nil, false
	}
	ks, byID := s.Keys.(keyByID)
	if !ok || !byID {
		return nil, false
	}
	k, err := ks.Key(ctx, id)
	if err != nil || k == nil || k.Expired(now) {
		return nil, false
	}
	return k, true
}

func (ss *sessions) throttled(client string, now time.Time) time.Duration {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f, ok := ss.fails[client]
	if !ok {
		return 0
	}
	if now.Sub(f.first) >= signInWindow {
		delete(ss.fails, client)
		return 0
	}
	if f.n < signInMaxFails {
		return 0
	}
	return f.first.Add(signInWindow).Sub(now)
}

func (ss *sessions) failed(client string, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.fails == nil {
		ss.fails = map[string]*failures{}
	}
	f, ok := ss.fails[client]
	if !ok || now.Sub(f.first) >= signInWindow {
		if len(ss.fails) >= maxFailClients {
			for c, g := range ss.fails {
				if now.Sub(g.first) >= signInWindow {
					delete(ss.fails, c)
				}
			}
			if len(ss.fails) >= maxFailClients {
				clear(ss.fails)
			}
		}
		f = &failures{first: now}
		ss.fails[client] = f
	}
	f.n++
}

// clientOf is the address failures are counted against: the peer, since a
// forwarded-for header is whatever the client wants it to be.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) mountSession(mux *http.ServeMux) {
	mux.Handle("POST /v1/session", s.instrument("/v1/session", http.HandlerFunc(s.handleSignIn)))
	mux.Handle("GET /v1/session", s.instrument("/v1/session", http.HandlerFunc(s.handleGetSession)))
	mux.Handle("DELETE /v1/session", s.instrument("/v1/session", http.HandlerFunc(s.handleSignOut)))
	mux.Handle("GET /console/signin", s.instrument("/console/signin", http.HandlerFunc(s.handleSignInLink)))
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) writeSession(w http.ResponseWriter, status int, se *session) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, sessionAnswer(se))
}

func sessionAnswer(se *session) map[string]any {
	return map[string]any{
		"principal":  principalOf(se.key),
		"csrf_token": se.csrf,
		"expires_at": se.expires.UTC().Format(time.RFC3339),
	}
}

// pageSession is GET /v1/session's answer for the console's page (see
// withSession): the session's JSON, null without a live session, nil when
// the store cannot tell (the page then asks the API itself).
func (s *Server) pageSession(r *http.Request) []byte {
	_, se, err := s.sessionOf(r)
	if err != nil {
		if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
			return []byte("null")
		}
		return nil
	}
	b, err := json.Marshal(sessionAnswer(se))
	if err != nil {
		return nil
	}
	return b
}

// refuseThrottled answers a client that failed too often; it reports
// whether it did.
func (s *Server) refuseThrottled(w http.ResponseWriter, r *http.Request) bool {
	wait := s.throttled(r.Context(), clientOf(r))
	if wait <= 0 {
		return false
	}
	secs := int(wait.Seconds()) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	Error(w, r, portrait.Errorf(portrait.EUNAUTHORIZED, "too many failed sign-ins from this address; try again in %d seconds", secs))
	return true
}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if s.refuseThrottled(w, r) {
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&body); err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, `the body must be {"token": "<admin token>"}`))
		return
	}
	token := strings.TrimSpace(body.Token)
	if token == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "enter an admin token"))
		return
	}
	k, err := s.authenticate(r, portrait.KeyAdmin, token)
	if err != nil {
		if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
			s.signInFailed(r.Context(), clientOf(r))
			err = portrait.Errorf(portrait.EUNAUTHORIZED, "this is not a valid admin token")
		}
		Error(w, r, err)
		return
	}
	id, se, err := s.newSession(r.Context(), k)
	if err != nil {
		Error(w, r, err)
		return
	}
	s.setSessionCookie(w, r, id, int(sessionMax.Seconds()))
	s.writeSession(w, http.StatusOK, se)
}

// sessionOf returns the request's live session, or an unauthorized error.
func (s *Server) sessionOf(r *http.Request) (string, *session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", nil, portrait.Errorf(portrait.EUNAUTHORIZED, "not signed in")
	}
	se, err := s.lookupSession(r.Context(), c.Value)
	if err != nil {
		return "", nil, err
	}
	return c.Value, se, nil
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	_, se, err := s.sessionOf(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	s.writeSession(w, http.StatusOK, se)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	id, se, err := s.sessionOf(r)
	if err != nil {
		// Already signed out: say so, and clear a stale cookie.
		s.setSessionCookie(w, r, "", -1)
		Error(w, r, err)
		return
	}
	if err := checkCSRF(r, se); err != nil {
		Error(w, r, err)
		return
	}
	st, err := s.sessionStore()
	if err == nil {
		err = st.DeleteSession(r.Context(), sessionIDHash(id))
		s.sessionCache.drop(sessionIDHash(id))
	}
	if err != nil {
		Error(w, r, err)
		return
	}
	s.setSessionCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// handleSignInLink consumes a one-time code (printed by `portrait demo`)
// and lands the browser on the console, signed in.
func (s *Server) handleSignInLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if wait := s.throttled(r.Context(), clientOf(r)); wait > 0 {
		http.Redirect(w, r, "/signin?reason=throttled", http.StatusSeeOther)
		return
	}
	k, ok := s.takeSignInCode(r.Context(), r.URL.Query().Get("once"))
	if !ok {
		s.signInFailed(r.Context(), clientOf(r))
		http.Redirect(w, r, "/signin?reason=link", http.StatusSeeOther)
		return
	}
	id, _, err := s.newSession(r.Context(), k)
	if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
		http.Redirect(w, r, "/signin?reason=link", http.StatusSeeOther)
		return
	}
	if err != nil {
		Error(w, r, err)
		return
	}
	s.setSessionCookie(w, r, id, int(sessionMax.Seconds()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkCSRF requires a write made with the session cookie to carry the
// session's CSRF token, which a page of another site cannot read.
func checkCSRF(r *http.Request, se *session) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) != 1 {
		return portrait.Errorf(portrait.EFORBIDDEN, "missing or wrong CSRF token: send the session's csrf_token in the X-CSRF-Token header")
	}
	return nil
}

// SignInLink returns a one-time link that signs a browser in to the
// console as the admin key whose token is given, or, with no token, as the
// store's first admin key (the demo's operator owns the data directory).
func (s *Server) SignInLink(ctx context.Context, token string) (string, error) {
	var k *portrait.Key
	if token != "" {
		var err error
		if k, err = s.Keys.Authenticate(ctx, portrait.KeyAdmin, token); err != nil {
			return "", err
		}
	} else {
		keys, err := s.Keys.ListKeys(ctx)
		if err != nil {
			return "", err
		}
		for _, c := range keys {
			if c.Kind == portrait.KeyAdmin {
				k = c
				break
			}
		}
		if k == nil {
			return "", portrait.Errorf(portrait.ENOTFOUND, "no admin key to sign in with")
		}
	}
	code, err := s.newSignInCode(ctx, k)
	if err != nil {
		return "", err
	}
	return s.URL() + "/console/signin?once=" + code, nil
}
