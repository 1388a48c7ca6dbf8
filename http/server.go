// Package http serves Portrait's HTTP API: the Segment-compatible tracking
// endpoints, the query API, health, metrics and the OpenAPI document. It maps
// the domain's errors to HTTP and never lets internal details reach a client.
package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/bizmap"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/quality"
	"github.com/portrait-cdp/portrait/search"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/tracking"
	"github.com/portrait-cdp/portrait/traits"
)

// Server is the HTTP API. Fields are set before Open.
type Server struct {
	Addr string

	Events     portrait.EventLog
	Quarantine portrait.QuarantineStore
	Keys       portrait.KeyStore
	Profiles   portrait.ProfileReader
	Parser     *tracking.Parser
	Now        portrait.Clock
	Log        *slog.Logger
	// Ready reports whether the server can serve (store reachable).
	Ready func(ctx context.Context) error
	// Lag reports how far profile processing is behind the log; err when
	// that could not be read (a store too loaded to answer): readiness
	// then says so, and the metrics are NaN, rather than a lag of 0 that
	// looks caught up.
	Lag func() (events int64, seconds float64, err error)
	// Applied reports whether the logged event with this message id is
	// applied to the profiles that reads see (nil: an undo answers without
	// waiting for its event; profile360.go).
	Applied func(ctx context.Context, messageID string) (bool, error)
	// Incapable lists what the server cannot do now (a full disk, failing
	// writes): /readyz then answers 503 and says what and why.
	Incapable func(ctx context.Context) []portrait.Incapacity
	// Recoveries lists what was repaired at start (a damaged state moved
	// aside and rebuilt from the log), shown by /readyz.
	Recoveries func() []portrait.Recovery
	// Analytics runs analyses and writes them back (nil: not served).
	Analytics *jobs.Runner
	// Linkage links profiles that share no identifier (nil: not served).
	Linkage *linkage.Service
	// NormalizeID standardises looked-up identifier values.
	NormalizeID func(typ, value string) (string, bool)
	// Tags and Traits serve tags, computed traits and satisfaction (optional).
	Tags   *tag.Service
	Traits *traits.Service
	// Segments serves /v1/segments (nil: not served).
	Segments *segment.Service
	// Lifecycle keeps the lifecycle over time as the stage histories in
	// the segment index change (nil: counted from the histories on each
	// question, and cached).
	Lifecycle *traits.StageCounts
	// Deliveries schedules segment deliveries (insight.go; nil: not served).
	Deliveries *delivery.Service
	// Search finds profiles by name, pinyin, phone, email, identifier.
	Search *search.Index
	// Map serves the customer business map, /v1/map (nil: not served).
	Map *bizmap.Service
	// Erasure: DELETE /v1/profiles/{id}, suppressions, person export
	// (privacy-erasure; nil: not served).
	Erasure ErasureService
	// Retention feeds GET /v1/retention (retention.go; nil: not served).
	Retention *Retention
	// Overview feeds GET /v1/overview (nil: not served).
	Overview OverviewStore
	// Accounts serves /v1/accounts, corporate customers (nil: not served).
	Accounts *account.Service
	// Extra lets other packages mount more routes (console, analytics...).
	Extra func(mux *http.ServeMux, s *Server)
	// Filter, when set, wraps the handler Open serves: a node with only
	// some roles answers only their routes (nodes, issue 17:
	// cmd/portrait/nodes.go).
	Filter func(http.Handler) http.Handler
	// Console is the web console's built assets (nil: the ones embedded in
	// the binary); sessions are its sign-ins (console.go, session.go).
	Console      fs.FS
	sessions     sessions
	sessionCache sessionCache // sessions read from the store (session.go)
	// Sessions keeps console sessions (nil: Keys, if it keeps them too).
	Sessions portrait.SessionStore

	// Bulk imports and the quality report (imports.go, quality.go).
	Importer     *importer.Importer
	ImportRuns   ImportLookup
	QualityStore quality.Store
	ImportDir    string // temporary files of uploads ("" = the OS default)
	// UploadSealer seals those files while they are read (nil: in clear).
	UploadSealer   UploadSealer
	MaxImportBytes int64
	importJobs     imports

	// console speed: answers of the quality report and the lifecycle,
	// with their background refreshes (freshness.go)
	speed speedCaches

	Registry *prometheus.Registry
	metrics  *metrics

	// Hardening (privacy-erasure, hardening.go): per-key rate limits and
	// body timeouts; MetricsToken, when set, is required by /metrics.
	Limits       Limits
	MetricsToken string
	rate         rateLimiter
	// Privacy and access (issue 15; access.go, keys.go, audit.go): the
	// audit log (nil: nothing audited, /v1/audit not served), the levels of
	// traits and identifiers, and where changed levels are kept.
	Audit           portrait.AuditLog
	Classifier      *access.Classifier
	Classifications ClassificationStore
	// Sealing, when set, reports sealing at rest per name (else
	// Classifications is asked, when it is a SealingStatus).
	Sealing SealingStatus
	// DataKeys, when set, answers GET /v1/keys/data-key (the store).
	DataKeys DataKeyStatus
	// Reseal, when set, schedules the background sealing of a name's
	// stored values after its level was raised to secret (else the
	// rotation seals them).
	Reseal func(ctx context.Context, kind, name string) error

	ln     net.Listener
	server *http.Server
	mux    *http.ServeMux

	keyMu     sync.Mutex
	keyCache  map[string]cachedKey
	keyFlight singleflight.Group // one verification per credential at a time (auth.go)
	closingCh chan struct{}

	// background imports started by POST /v1/imports
	importWG     sync.WaitGroup
	importMu     sync.Mutex
	importBase   context.Context
	importCancel context.CancelFunc
}

type cachedKey struct {
	key *portrait.Key
	at  time.Time
}

// NewServer returns a server with defaults.
func NewServer() *Server {
	return &Server{Parser: tracking.New(), Now: time.Now, Log: slog.Default(), keyCache: map[string]cachedKey{}, Limits: DefaultLimits}
}

// Handler builds the routes; Open calls it, tests may use it directly.
func (s *Server) Handler() http.Handler {
	if s.mux != nil {
		return s.recoverer(secure(s.routed(s.mux)))
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.Registry, s)
	mux := http.NewServeMux()
	for _, typ := range []string{portrait.EventIdentify, portrait.EventTrack, portrait.EventPage, portrait.EventScreen, portrait.EventGroup, portrait.EventAlias} {
		mux.Handle("POST /v1/"+typ, s.instrument("/v1/"+typ, s.handleSingle(typ)))
	}
	mux.Handle("POST /v1/batch", s.instrument("/v1/batch", http.HandlerFunc(s.handleBatch)))
	mux.Handle("POST /v1/import", s.instrument("/v1/import", http.HandlerFunc(s.handleBatch)))

	mux.Handle("GET /v1/quarantine", s.instrument("/v1/quarantine", s.admin(s.handleQuarantine)))
	mux.Handle("GET /v1/profiles/lookup", s.instrument("/v1/profiles/lookup", s.admin(s.handleLookup)))
	mux.Handle("GET /v1/profiles/{id}", s.instrument("/v1/profiles/{id}", s.admin(s.handleProfile)))
	mux.Handle("GET /v1/profiles/{id}/events", s.instrument("/v1/profiles/{id}/events", s.admin(s.handleProfileEvents)))
	mux.Handle("GET /v1/profiles/{id}/merges", s.instrument("/v1/profiles/{id}/merges", s.admin(s.handleProfileMerges)))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": portrait.Version})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", s.metricsHandler(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /openapi.json", s.handleOpenAPI)
	s.mountLinkage(mux)
	s.mountAnalytics(mux)
	s.mountEnrichment(mux)
	s.mountImports(mux)
	s.mountSegments(mux)
	s.mountInsight(mux) // insight and audiences for action (issue 14 §4–5): http/insight.go
	s.mountBreakdown(mux)
	s.mountProfileSegments(mux)
	s.mountLifecycle(mux)
	s.mountSearch(mux)
	s.mountOverview(mux)
	s.mountProfile360(mux)
	// customer business map (issue 14)
	s.mountMap(mux)
	s.mountAccounts(mux) // accounts, buying committees, ICP (issue 16): http/accounts.go
	// console speed (issue 13's budgets): the 360 page's first paint in one call
	s.mountProfileView(mux)
	s.mountErasure(mux) // privacy-erasure
	s.mountRetention(mux)
	// privacy and access: keys, classification levels, audit
	s.mountKeys(mux)
	s.mountAudit(mux)
	console := s.mountConsole(mux)
	if s.Extra != nil {
		s.Extra(mux, s)
	}
	notFound := s.notFound(console)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			methodNotAllowed(w, r, allow)
			return
		}
		notFound(w, r)
	})
	s.mux = mux
	return s.recoverer(secure(s.routed(mux)))
}

// routed refuses a request whose route has no access rule
// (access/rules.go) before any handler runs. s.admin refuses such a route
// too, but a route mounted without s.admin (as the public and ingest ones
// are), or through a pattern the route list of the authorisation matrix
// does not read (a variable, s.Extra), would otherwise serve without any
// check: found by the issue 15 probe, a route mounted as
// mux.Handle(pattern, h) answered everyone. "/" (the console's files and
// the not-found answer) is the one route without a rule.
func (s *Server) routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" && pattern != "/" {
			if _, ok := access.Lookup(pattern); !ok {
				s.Log.Error("route has no access rule: refused", "route", pattern)
				Error(w, r, portrait.Errorf(portrait.EFORBIDDEN, "route %s has no access rule", pattern))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// allowed lists the methods that have a route for r's path. The catch-all
// "/" route answers every method, so ServeMux's own 405 never happens: the
// mux is asked, method by method, which pattern would serve the path, and a
// catch-all pattern (path "/") does not count.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		_, pattern := mux.Handler(probe)
		if pattern == "" || pattern == "/" || strings.HasSuffix(pattern, " /") {
			continue
		}
		out = append(out, m)
	}
	return out
}

// methodNotAllowed answers 405 with the Allow header and the JSON error body.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]any{
		"code":    "method_not_allowed",
		"message": fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
	}})
}

// Open starts listening and serving in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return portrait.Wrap(err, "cannot listen on "+s.Addr)
	}
	s.ln = ln
	h := s.Handler()
	if s.Filter != nil { // nodes (issue 17)
		h = s.Filter(h)
	}
	s.server = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("http server stopped", "err", err)
		}
	}()
	s.Prime() // console speed: the first page visits find their answers ready
	return nil
}

// URL is the base URL the server listens on.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting requests and waits for those in flight.
func (s *Server) Close(ctx context.Context) error {
	s.closeStreams()
	var err error
	if s.server != nil {
		err = s.server.Shutdown(ctx)
	}
	// Background imports stop (they resume on a new upload of the file)
	// and are waited for, so nothing writes to a closing store.
	s.importCtx()
	s.importCancel()
	s.importWG.Wait()
	s.speed.bg.stop()
	return err
}

// importCtx is the context background imports run under; Close cancels it.
func (s *Server) importCtx() context.Context {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	if s.importBase == nil {
		s.importBase, s.importCancel = context.WithCancel(context.Background())
	}
	return s.importBase
}

// closing is closed when the server shuts down: long-lived responses
// (event streams) end, which Shutdown alone would wait for forever.
func (s *Server) closing() <-chan struct{} {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.closingCh == nil {
		s.closingCh = make(chan struct{})
	}
	return s.closingCh
}

func (s *Server) closeStreams() {
	s.closing() // make sure the channel exists
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	select {
	case <-s.closingCh:
	default:
		close(s.closingCh)
	}
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("panic in handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				Error(w, r, portrait.Errorf(portrait.EINTERNAL, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// handleReady answers whether the server can do its work: 200 "ready", or
// 503 "unavailable" (the store cannot be read) or "degraded" with what it
// cannot do ("cannot"); repairs made at start are listed ("recoveries").
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": portrait.ErrorMessage(err)})
			return
		}
	}
	out := map[string]any{"status": "ready"}
	if s.Lag != nil {
		if n, secs, err := s.Lag(); err != nil {
			out["processing_lag_error"] = portrait.ErrorMessage(err)
		} else {
			out["processing_lag_events"], out["processing_lag_seconds"] = n, secs
		}
	}
	if s.Recoveries != nil {
		if rs := s.Recoveries(); len(rs) > 0 {
			out["recoveries"] = rs
		}
	}
	status := http.StatusOK
	if s.Incapable != nil {
		if in := s.Incapable(r.Context()); len(in) > 0 {
			// Reads may still work, but a server that cannot take events
			// must not be sent them.
			out["status"], out["cannot"] = "degraded", in
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, out)
}

// statusOf maps error codes to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case portrait.EINVALID:
		return http.StatusBadRequest
	case portrait.ENOTFOUND:
		return http.StatusNotFound
	case portrait.ECONFLICT:
		return http.StatusConflict
	case portrait.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case portrait.EFORBIDDEN:
		return http.StatusForbidden
	case portrait.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case portrait.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error writes err as {"error": {"code", "message", "details"}}.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	code := portrait.ErrorCode(err)
	body := map[string]any{"code": code, "message": portrait.ErrorMessage(err)}
	var e *portrait.Error
	if errors.As(err, &e) && len(e.Details) > 0 {
		body["details"] = e.Details
	}
	if code == portrait.EINTERNAL {
		slog.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == portrait.EUNAUTHORIZED && r.Header.Get("X-Requested-With") == "" {
		// Not for the console's own requests: a browser would open its
		// Basic sign-in dialog over the console.
		w.Header().Set("WWW-Authenticate", `Basic realm="portrait"`)
	}
	writeJSON(w, statusOf(code), map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, portrait.Errorf(portrait.EINVALID, "%s must be a non-negative integer", name)
	}
	return n, nil
}
