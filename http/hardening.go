package http

import (
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/portrait-cdp/portrait"
)

// Limits are the request limits of the server (privacy-erasure hardening).
type Limits struct {
	// WriteRate and AdminRate are requests per second per key (burst:
	// four seconds' worth); 0 turns limiting off for that kind of key.
	WriteRate, AdminRate float64
	// UnauthBodyTimeout is how long a request that shows no credential
	// in its headers may take to send its body (a writeKey in the body,
	// as analytics.js sends it); AuthBodyTimeout the same once a header
	// credential is checked. Zero: 10 s and the server's read timeout.
	UnauthBodyTimeout, AuthBodyTimeout time.Duration
}

// DefaultLimits are far above what an SDK or the console sends, and low
// enough that one leaked or runaway key cannot take the server alone.
var DefaultLimits = Limits{WriteRate: 20000, AdminRate: 1000, UnauthBodyTimeout: 10 * time.Second, AuthBodyTimeout: 60 * time.Second}

// rateLimiter keeps a token bucket per key.
type rateLimiter struct {
	mu      sync.Mutex
	buckets map[int64]*rate.Limiter
}

// allow takes a token for k, or says how long to wait for one.
func (s *Server) allow(k *portrait.Key) (time.Duration, bool) {
	lim := s.Limits
	r := lim.AdminRate
	if k.Kind == portrait.KeyWrite {
		r = lim.WriteRate
	}
	if r <= 0 {
		return 0, true
	}
	rl := &s.rate
	rl.mu.Lock()
	if rl.buckets == nil || len(rl.buckets) > 100_000 {
		rl.buckets = map[int64]*rate.Limiter{}
	}
	b := rl.buckets[k.ID]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(r), int(math.Max(1, 4*r)))
		rl.buckets[k.ID] = b
	}
	rl.mu.Unlock()
	res := b.ReserveN(s.Now(), 1)
	if d := res.DelayFrom(s.Now()); d > 0 {
		res.CancelAt(s.Now())
		return d, false
	}
	return 0, true
}

// limited answers 429 with Retry-After when k is over its rate.
func (s *Server) limited(w http.ResponseWriter, r *http.Request, k *portrait.Key) bool {
	d, ok := s.allow(k)
	if ok {
		return false
	}
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	s.metrics.rateLimited.WithLabelValues(k.Kind).Inc()
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
		"code": "rate_limited", "message": "too many requests for this key; retry after " + strconv.Itoa(max(1, secs)) + " s",
	}})
	return true
}

// headerSecret is the credential a request shows in its headers, if any.
func headerSecret(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(a)
	}
	return ""
}

// bodyDeadline gives the rest of the body until d from now.
func bodyDeadline(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
}

// secure sets headers every response carries: API answers hold personal
// data and are never to be cached, sniffed or framed. The console's pages
// set their own policy over these (console.go).
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r)
	})
}

// metricsHandler guards /metrics with a token when one is configured, and
// without one serves it only to clients on the host itself (a scraper
// beside the server, or a proxy there that guards it): probed, a server
// listening on a public address gave its metrics (routes, sources, key
// kinds, request counts) to anyone.
func (s *Server) metricsHandler(h http.Handler) http.Handler {
	if s.MetricsToken == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			ip, perr := netip.ParseAddr(host)
			if err != nil || perr != nil || !ip.Unmap().IsLoopback() {
				Error(w, r, portrait.Errorf(portrait.EUNAUTHORIZED, "metrics are served to other hosts only with a metrics token: start the server with --metrics-token (or PORTRAIT_METRICS_TOKEN) and send Authorization: Bearer <token>"))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := headerSecret(r)
		if _, p, ok := r.BasicAuth(); ok && p != "" {
			got = p
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.MetricsToken)) != 1 {
			Error(w, r, portrait.Errorf(portrait.EUNAUTHORIZED, "metrics need the metrics token: Authorization: Bearer <token>"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
