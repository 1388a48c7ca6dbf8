package http

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// keyCacheTTL bounds how long a credential stays trusted without a store
// read: short enough for a revoked key to stop working quickly, long enough
// that the ingest path does not read the store on every request.
const keyCacheTTL = 30 * time.Second

// keyByID is the key store's read of one key (sqlite.DB), used to renew a
// cached verification without the slow hash.
type keyByID interface {
	Key(ctx context.Context, id int64) (*portrait.Key, error)
}

func (s *Server) authenticate(r *http.Request, kind, secret string) (*portrait.Key, error) {
	if secret == "" {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "missing %s key", kind)
	}
	h := sha256.Sum256([]byte(kind + "\x00" + secret))
	ck := string(h[:])
	if k, ok, err := s.cachedKey(ck, kind); ok {
		return k, err
	}
	// Requests with the same credential that miss the cache together (every
	// client of a sender at start, or when the period ends) share one
	// verification: each would otherwise pay the slow hash, which at 16
	// clients was a second of CPU and half a second of wall time before the
	// first event was acknowledged (issue 12 §5). The shared call does not
	// end with the request that started it.
	ctx := context.WithoutCancel(r.Context())
	v, err, _ := s.keyFlight.Do(ck, func() (any, error) {
		if k, ok, err := s.cachedKey(ck, kind); ok { // verified while this request waited to start
			return k, err
		}
		return s.verifyKey(ctx, ck, kind, secret)
	})
	if err != nil {
		return nil, err
	}
	return v.(*portrait.Key), nil
}

// verified reports whether this credential was verified recently (the key
// cache): such a request is no guess, and is not held to the throttle, so
// the hot path (every tracking batch, every API call with a good token)
// does not ask the store for failure counts.
func (s *Server) verified(kind, secret string) bool {
	h := sha256.Sum256([]byte(kind + "\x00" + secret))
	k, ok, err := s.cachedKey(string(h[:]), kind)
	return ok && err == nil && k != nil
}

// cachedKey answers from the cache when its verification is recent enough.
func (s *Server) cachedKey(ck, kind string) (*portrait.Key, bool, error) {
	now := s.Now()
	s.keyMu.Lock()
	c, ok := s.keyCache[ck]
	s.keyMu.Unlock()
	if !ok || now.Sub(c.at) >= keyCacheTTL {
		return nil, false, nil
	}
	if c.key.Expired(now) {
		return nil, true, portrait.Errorf(portrait.EUNAUTHORIZED, "this %s key has expired", kind)
	}
	return c.key, true, nil
}

// verifyKey checks a credential against the store and caches the key.
func (s *Server) verifyKey(ctx context.Context, ck, kind, secret string) (*portrait.Key, error) {
	now := s.Now()
	s.keyMu.Lock()
	c, cached := s.keyCache[ck]
	s.keyMu.Unlock()
	// A secret verified before needs no second slow hash when the period
	// ends: the key is re-read by id (revoked: gone; role or expiry
	// changed: the new ones), which is cheap on the ingest path.
	if ks, ok := s.Keys.(keyByID); ok && cached {
		k, err := ks.Key(ctx, c.key.ID)
		if err == nil && k.Kind == kind && !k.Expired(now) {
			s.keyMu.Lock()
			s.keyCache[ck] = cachedKey{key: k, at: now}
			s.keyMu.Unlock()
			return k, nil
		}
		s.keyMu.Lock()
		delete(s.keyCache, ck)
		s.keyMu.Unlock()
		if err != nil && portrait.ErrorCode(err) != portrait.ENOTFOUND {
			return nil, err
		}
		if err == nil && k.Expired(now) {
			return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "this %s key has expired", kind)
		}
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "unknown %s key", kind)
	}
	k, err := s.Keys.Authenticate(ctx, kind, secret)
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
	if secret != "" && !s.verified(portrait.KeyWrite, secret) && s.throttled(r.Context(), keyThrottleID(r, secret)) > 0 {
		return nil, portrait.Errorf(portrait.EUNAUTHORIZED, "too many failed attempts with this key from this address; try again later")
	}
	k, err := s.authenticate(r, portrait.KeyWrite, secret)
	if err != nil && secret != "" && portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
		s.keyFailed(r, secret, err)
	}
	return k, err
}

// admin wraps a management handler: it needs a Bearer API token, or the
// console's session cookie (with its CSRF token on writes); then the
// token's role must allow the route, and what it answers is masked to the
// token's clearance (access.go).
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
				s.authorize(w, r, se.key, h)
				return
			}
		}
		secret, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			if _, p, basic := r.BasicAuth(); basic {
				secret = p
			}
		}
		secret = strings.TrimSpace(secret)
		if s.refuseThrottledKey(w, r, secret) {
			return
		}
		k, err := s.authenticate(r, portrait.KeyAdmin, secret)
		if err != nil {
			if portrait.ErrorCode(err) == portrait.EUNAUTHORIZED {
				if secret != "" {
					s.keyFailed(r, secret, err)
				}
				err = portrait.Errorf(portrait.EUNAUTHORIZED, "an API token is required: Authorization: Bearer <token>")
			}
			Error(w, r, err)
			return
		}
		if s.limited(w, r, k) {
			return
		}
		s.authorize(w, r, k, h)
	})
}

// keyThrottleID is what failed key checks are counted against: the client
// address and the secret's first characters, so that one misconfigured
// client behind a shared address does not lock out the others' keys.
func keyThrottleID(r *http.Request, secret string) string {
	n := len(secret) / 3
	if n > 12 {
		n = 12
	}
	return clientOf(r) + "|" + secret[:n]
}

// refuseThrottledKey answers 429 when this client and key prefix failed
// too often; it reports whether it did.
func (s *Server) refuseThrottledKey(w http.ResponseWriter, r *http.Request, secret string) bool {
	if secret == "" || s.verified(portrait.KeyAdmin, secret) {
		return false
	}
	wait := s.throttled(r.Context(), keyThrottleID(r, secret))
	if wait <= 0 {
		return false
	}
	secs := int(wait.Seconds()) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	Error(w, r, portrait.Errorf(portrait.EUNAUTHORIZED, "too many failed attempts with this key from this address; try again in %d seconds", secs))
	return true
}

// keyFailed counts and logs a failed key check (never the secret).
func (s *Server) keyFailed(r *http.Request, secret string, err error) {
	s.signInFailed(r.Context(), keyThrottleID(r, secret))
	s.Log.Warn("authentication failed", "client", clientOf(r), "path", r.URL.Path, "reason", portrait.ErrorMessage(err))
}

// forgetKey drops a revoked key's cached verifications and sessions, so
// that it stops working at once in this process.
func (s *Server) forgetKey(id int64) {
	s.sessionCache.dropKey(id)
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	for h, c := range s.keyCache {
		if c.key.ID == id {
			delete(s.keyCache, h)
		}
	}
}
