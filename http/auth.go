package http

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// keyCacheTTL bounds how long a credential stays trusted without a store
// read: short enough for a revoked key to stop working quickly, long enough
// that the ingest path does not read the store on every request.
const keyCacheTTL = 30 * time.Second

func (s *Server) authenticate(r *http.Request, kind, secret string) (*portrait.Key, error) {
	if secret == "" {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "missing %s key", kind)
	}
	h := sha256.Sum256([]byte(kind + "\x00" + secret))
	ck := string(h[:])
	now := s.Now()
	s.keyMu.Lock()
	if c, ok := s.keyCache[ck]; ok && now.Sub(c.at) < keyCacheTTL {
		s.keyMu.Unlock()
		return c.key, nil
	}
	s.keyMu.Unlock()
	k, err := s.Keys.Authenticate(r.Context(), kind, secret)
	if err != nil {
		return nil, err
	}
	s.keyMu.Lock()
	if len(s.keyCache) > 10000 {
		s.keyCache = map[string]cachedKey{}
	}
	s.keyCache[ck] = cachedKey{key: k, at: now}
	s.keyMu.Unlock()
	return k, nil
}

// writeKey authenticates a tracking request: HTTP Basic with the write key
// as user name (Segment's convention), or a writeKey field in the body as
// analytics.js sends it.
func (s *Server) writeKey(r *http.Request, bodyKey func() string) (*portrait.Key, error) {
	secret, _, ok := r.BasicAuth()
	if !ok {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			secret = strings.TrimPrefix(a, "Bearer ")
		} else if bodyKey != nil {
			secret = bodyKey()
		}
	}
	return s.authenticate(r, portrait.KeyWrite, secret)
}

// admin wraps a management handler: it needs a Bearer admin token, or the
// console's session cookie (with its CSRF token on writes).
func (s *Server) admin(h func(w http.ResponseWriter, r *http.Request, k *portrait.Key)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		if a == "" {
			if _, err := r.Cookie(sessionCookie); err == nil {
				_, se, err := s.sessionOf(r)
				if err == nil {
					err = checkCSRF(r, se)
				}
				if err != nil {
					Error(w, r, err)
					return
				}
				if s.limited(w, r, se.key) {
					return
				}
				h(w, r, se.key)
				return
			}
		}
		secret, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			if _, p, basic := r.BasicAuth(); basic {
				secret = p
			}
		}
		k, err := s.authenticate(r, portrait.KeyAdmin, strings.TrimSpace(secret))
		if err != nil {
			if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
				err = portrait.Errorf(portrait.EUNAUTHORIZED, "an admin token is required: Authorization: Bearer <token>")
			}
			Error(w, r, err)
			return
		}
		if s.limited(w, r, k) {
			return
		}
		h(w, r, k)
	})
}
