package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
)

// The console signs in with an API token once and then holds a session
// cookie: the token never sits in the browser's storage, where any script
// could read it. Sessions live in memory, so a restart signs everyone out.
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
	// Caps keep a flood of sign-ins from growing memory without bound.
	maxSessions    = 10000
	maxSignInCodes = 1000
	maxFailClients = 10000
)

// Principal is who a request acts for, as the console shows it. Role and
// clearance are fixed for admin tokens until the privacy issue gives keys
// their own; the pages read them from here, never guess them.
type Principal struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Role      string `json:"role"`
	Clearance string `json:"clearance"`
}

func principalOf(k *portrait.Key) Principal {
	return Principal{Name: k.Name, Kind: k.Kind, Role: "admin", Clearance: "secret"}
}

type session struct {
	key     *portrait.Key
	csrf    string
	created time.Time
	seen    time.Time
}

func (se *session) expires() time.Time {
	idle, abs := se.seen.Add(sessionIdle), se.created.Add(sessionMax)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

type signInCode struct {
	key     *portrait.Key
	expires time.Time
}

type failures struct {
	n     int
	first time.Time
}

// sessions is the server's sign-in state. Secrets are kept only as their
// SHA-256, so the maps' keys say nothing usable.
type sessions struct {
	mu    sync.Mutex
	byID  map[[32]byte]*session
	codes map[[32]byte]*signInCode
	fails map[string]*failures
}

func hashSecret(v string) [32]byte { return sha256.Sum256([]byte(v)) }

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newSession stores a session for k and returns its cookie value.
func (ss *sessions) newSession(k *portrait.Key, now time.Time) (string, *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byID == nil {
		ss.byID = map[[32]byte]*session{}
	}
	if len(ss.byID) >= maxSessions {
		for id, se := range ss.byID {
			if !now.Before(se.expires()) {
				delete(ss.byID, id)
			}
		}
		// Still full of live sessions: the oldest goes.
		if len(ss.byID) >= maxSessions {
			var oldest [32]byte
			var at time.Time
			for id, se := range ss.byID {
				if at.IsZero() || se.seen.Before(at) {
					oldest, at = id, se.seen
				}
			}
			delete(ss.byID, oldest)
		}
	}
	id := randomToken()
	se := &session{key: k, csrf: randomToken(), created: now, seen: now}
	ss.byID[hashSecret(id)] = se
	return id, se
}

// lookup returns the live session with cookie value id, renewing it.
func (ss *sessions) lookup(id string, now time.Time) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := hashSecret(id)
	se, ok := ss.byID[h]
	if !ok {
		return nil, false
	}
	if !now.Before(se.expires()) {
		delete(ss.byID, h)
		return nil, false
	}
	se.seen = now
	cp := *se
	return &cp, true
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, hashSecret(id))
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

// throttled reports how long client must wait before trying to sign in
// again (0: it may try now).
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
	writeJSON(w, status, map[string]any{
		"principal":  principalOf(se.key),
		"csrf_token": se.csrf,
		"expires_at": se.expires().UTC().Format(time.RFC3339),
	})
}

// refuseThrottled answers a client that failed too often; it reports
// whether it did.
func (s *Server) refuseThrottled(w http.ResponseWriter, r *http.Request) bool {
	wait := s.sessions.throttled(clientOf(r), s.Now())
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
			s.sessions.failed(clientOf(r), s.Now())
			err = portrait.Errorf(portrait.EUNAUTHORIZED, "this is not a valid admin token")
		}
		Error(w, r, err)
		return
	}
	id, se := s.sessions.newSession(k, s.Now())
	s.setSessionCookie(w, r, id, int(sessionMax.Seconds()))
	s.writeSession(w, http.StatusOK, se)
}

// sessionOf returns the request's live session, or an unauthorized error.
func (s *Server) sessionOf(r *http.Request) (string, *session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", nil, portrait.Errorf(portrait.EUNAUTHORIZED, "not signed in")
	}
	se, ok := s.sessions.lookup(c.Value, s.Now())
	if !ok {
		return "", nil, portrait.Errorf(portrait.EUNAUTHORIZED, "the session has expired; sign in again")
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
	s.sessions.end(id)
	s.setSessionCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// handleSignInLink consumes a one-time code (printed by `portrait demo`)
// and lands the browser on the console, signed in.
func (s *Server) handleSignInLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if wait := s.sessions.throttled(clientOf(r), s.Now()); wait > 0 {
		http.Redirect(w, r, "/signin?reason=throttled", http.StatusSeeOther)
		return
	}
	k, ok := s.sessions.takeCode(r.URL.Query().Get("once"), s.Now())
	if !ok {
		s.sessions.failed(clientOf(r), s.Now())
		http.Redirect(w, r, "/signin?reason=link", http.StatusSeeOther)
		return
	}
	id, _ := s.sessions.newSession(k, s.Now())
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
	return s.URL() + "/console/signin?once=" + s.sessions.newCode(k, s.Now()), nil
}
