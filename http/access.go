package http

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

// The authorisation and masking layer (issue 15). Every management route
// goes through s.admin, which authenticates the principal, finds the
// route's rule (access.Lookup; a route without one is refused), checks the
// principal's role holds the rule's scope, and wraps the response so that
// every JSON document and server-sent event leaving the server is masked
// to the principal's clearance by one function (access.Masker). Personal
// reads and every change are then audited with the classified fields the
// response carried.

type principalKey struct{}

type accessCtx struct {
	p    access.Principal
	key  *portrait.Key
	rule access.Rule
	m    *access.Masker
}

func accessOf(ctx context.Context) *accessCtx {
	a, _ := ctx.Value(principalKey{}).(*accessCtx)
	return a
}

// classifier returns the server's classifier, reading the trait schema.
func (s *Server) classifier() *access.Classifier {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.Classifier == nil {
		s.Classifier = &access.Classifier{}
	}
	if s.Classifier.Schema == nil && s.Traits != nil && s.Traits.Enricher != nil && s.Traits.Enricher.Schema != nil {
		sc := s.Traits.Enricher.Schema
		s.Classifier.Schema = func(name string) (string, bool) {
			f, ok := sc.Lookup(name)
			return f.Classification, ok
		}
	}
	return s.Classifier
}

// authorize runs h for principal k if the route's rule allows it.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, k *portrait.Key, h func(http.ResponseWriter, *http.Request, *portrait.Key)) {
	p := access.PrincipalOf(k)
	rule, ok := access.Lookup(r.Pattern)
	if !ok {
		s.Log.Error("route has no access rule: refused", "route", r.Pattern)
		Error(w, r, portrait.Errorf(portrait.EFORBIDDEN, "route %s has no access rule", r.Pattern))
		return
	}
	if rule.Public || rule.Ingest || !p.Can(rule.Scope) {
		s.audit(r, p, "denied", http.StatusForbidden, nil)
		Error(w, r, portrait.Errorf(portrait.EFORBIDDEN, "role %s may not call %s (it needs the %s scope)", p.Role, r.Pattern, rule.Scope))
		return
	}
	m := &access.Masker{C: s.classifier(), P: p}
	ac := &accessCtx{p: p, key: k, rule: rule, m: m}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, ac))
	// Only personal routes carry classified values; the others (definitions,
	// aggregates, key lists) use names such as "name" or "email" for their
	// own fields, which a masker would mistake for traits.
	mw := &maskWriter{ResponseWriter: w, status: http.StatusOK}
	if rule.Personal {
		mw.m = m
	}
	h(mw, r, k)
	mw.mask() // before the audit record, which lists what the mask saw
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if rule.Personal || write {
		action := "read"
		switch {
		case strings.HasSuffix(r.Pattern, "/export"), strings.HasSuffix(r.Pattern, "/runs/{run}/file"):
			// A delivered file's download is an export too.
			action = "export"
		case write:
			action = strings.ToLower(r.Method)
		}
		if err := s.audit(r, p, action, mw.status, m.Seen()); err != nil && mw.mode == modeJSON && rule.Personal && !write {
			// A personal read that cannot be accounted for is not served.
			mw.body = []byte(`{"error":{"code":"unavailable","message":"the read cannot be audited now; try again"}}` + "\n")
			mw.status = http.StatusServiceUnavailable
		}
	}
	mw.finish()
}

// audit records a request in the audit log (when one is wired).
func (s *Server) audit(r *http.Request, p access.Principal, action string, status int, fields []access.Field) error {
	if s.Audit == nil {
		return nil
	}
	rec := portrait.AuditRecord{At: s.Now(), Actor: p.Name, KeyID: p.KeyID, Role: p.Role, Action: action,
		Target: r.URL.Path, Remote: clientOf(r), Status: status, Detail: map[string]any{"route": r.Pattern, "clearance": p.Clearance.String()}}
	for _, f := range fields {
		rec.Fields = append(rec.Fields, portrait.AuditField{Name: f.Name, Level: f.Level.String(), Masked: f.Masked})
	}
	err := s.Audit.Record(context.WithoutCancel(r.Context()), rec)
	if err != nil {
		s.Log.Error("cannot write the audit log", "err", err, "action", action, "target", rec.Target)
	}
	return err
}

// recordChange audits a change made through the API with its details.
func (s *Server) recordChange(r *http.Request, action, target string, detail map[string]any) error {
	if s.Audit == nil {
		return nil
	}
	ac := accessOf(r.Context())
	rec := portrait.AuditRecord{At: s.Now(), Action: action, Target: target, Remote: clientOf(r), Detail: detail}
	if ac != nil {
		rec.Actor, rec.KeyID, rec.Role = ac.p.Name, ac.p.KeyID, ac.p.Role
	} else {
		rec.Actor = "anonymous"
	}
	return s.Audit.Record(context.WithoutCancel(r.Context()), rec)
}

// requireVisible refuses (403, naming the field) to filter, group, sort or
// segment by a field the caller may not see: the answer would reveal the
// values the mask hides. kind is access.KindTrait or access.KindIdentifier.
func requireVisible(r *http.Request, kind string, names ...string) error {
	ac := accessOf(r.Context())
	if ac == nil {
		return nil
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if l, ok := ac.level(kind, n); ok && !ac.p.Sees(l) {
			return portrait.Errorf(portrait.EFORBIDDEN, "field %q is %s (%s) and your clearance is %s: it cannot be used to filter, group, sort or segment",
				n, l, access.LevelNamesZh[l.String()], ac.p.Clearance)
		}
	}
	return nil
}

// maskRow masks an export row to the caller's clearance (the same
// function as every JSON response).
func maskRow(r *http.Request, header, row []string) {
	if ac := accessOf(r.Context()); ac != nil {
		ac.m.MaskRow(header, row)
	}
}

// canSee reports whether the caller sees a field of this kind unmasked.
func canSee(r *http.Request, kind, name string) bool {
	ac := accessOf(r.Context())
	if ac == nil || name == "" {
		return true
	}
	l, ok := ac.level(kind, name)
	return !ok || ac.p.Sees(l)
}

// level is a field's level; ok is false for a field that is not classified.
func (ac *accessCtx) level(kind, name string) (access.Level, bool) {
	if kind == access.KindIdentifier {
		return ac.m.C.Identifier(name)
	}
	return ac.m.C.Trait(name)
}

const (
	modeUnset = iota
	modeJSON  // buffered, masked at the end
	modeSSE   // each data line masked as it goes
	modeRaw   // passed through (files: the handler masks rows itself)
)

// maskWriter masks what a handler writes (m nil: passes it through):
// JSON bodies whole, server-sent events line by line.
type maskWriter struct {
	http.ResponseWriter
	m      *access.Masker
	status int
	mode   int
	buf    bytes.Buffer
	body   []byte // the masked JSON body (mask)
}

func (w *maskWriter) WriteHeader(code int) {
	if w.mode != modeUnset {
		return
	}
	w.status = code
	ct := w.Header().Get("Content-Type")
	switch {
	case w.m == nil:
		w.mode = modeRaw
		w.ResponseWriter.WriteHeader(code)
	case strings.HasPrefix(ct, "application/json"):
		w.mode = modeJSON
	case strings.HasPrefix(ct, "text/event-stream"):
		w.mode = modeSSE
		w.ResponseWriter.WriteHeader(code)
	default:
		w.mode = modeRaw
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *maskWriter) Write(b []byte) (int, error) {
	if w.mode == modeUnset {
		w.WriteHeader(http.StatusOK)
	}
	switch w.mode {
	case modeJSON:
		return w.buf.Write(b)
	case modeSSE:
		lines := bytes.SplitAfter(b, []byte("\n"))
		for _, ln := range lines {
			if d, ok := bytes.CutPrefix(ln, []byte("data: ")); ok {
				masked := w.m.MaskJSON(bytes.TrimRight(d, "\n"))
				ln = append(append([]byte("data: "), bytes.TrimRight(masked, "\n")...), '\n')
			}
			if _, err := w.ResponseWriter.Write(ln); err != nil {
				return 0, err
			}
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *maskWriter) Flush() {
	if w.mode == modeJSON {
		return // flushed, masked, at the end
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *maskWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// mask masks a buffered JSON body.
func (w *maskWriter) mask() {
	if w.mode == modeJSON {
		w.body = w.m.MaskJSON(w.buf.Bytes())
	}
}

// finish writes the masked JSON body.
func (w *maskWriter) finish() {
	if w.mode != modeJSON {
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(w.body)))
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.Write(w.body)
}
