package http

import (
	"net/http"
	"time"

	"github.com/portrait-cdp/portrait"
)

// mountAudit serves the audit log to auditors: a filtered listing and a
// check of its hash chain. There is no route that changes it.
func (s *Server) mountAudit(mux *http.ServeMux) {
	if s.Audit == nil {
		return
	}
	mux.Handle("GET /v1/audit", s.instrument("/v1/audit", s.admin(s.handleAudit)))
	mux.Handle("GET /v1/audit/verify", s.instrument("/v1/audit/verify", s.admin(s.handleAuditVerify)))
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	f := portrait.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				Error(w, r, portrait.Errorf(portrait.EINVALID, "%s must be an RFC 3339 time", p.name))
				return
			}
			*p.to = t
		}
	}
	after, err := queryInt(r, "after", 0)
	if err != nil {
		Error(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 100)
	if err != nil || limit < 1 || limit > 1000 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be 1..1000"))
		return
	}
	before, err := queryInt(r, "before", 0)
	if err != nil {
		Error(w, r, err)
		return
	}
	f.After, f.Before, f.Limit, f.Newest = int64(after), int64(before), limit, q.Get("order") == "newest"
	recs, err := s.Audit.ListAudit(r.Context(), f)
	if err != nil {
		Error(w, r, err)
		return
	}
	out := map[string]any{"records": recs}
	if len(recs) == limit {
		// The seq to pass as after (oldest first) or before (newest first).
		out["next"] = recs[len(recs)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAuditVerify recomputes the chain and answers its head (seq and
// hash), which an auditor keeps elsewhere and passes back as ?anchor=SEQ:HASH
// (repeatable): a chain checked only against itself cannot show records
// cut off its end, nor a record edited with every later hash recomputed.
func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var anchors []portrait.AuditHead
	for _, a := range r.URL.Query()["anchor"] {
		h, err := portrait.ParseAuditHead(a)
		if err != nil {
			Error(w, r, err)
			return
		}
		anchors = append(anchors, h)
	}
	head, n, err := portrait.VerifyAuditAnchored(r.Context(), s.Audit, anchors...)
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]any{"ok": false, "checked": n, "error": portrait.ErrorMessage(err)})
		return
	}
	out := map[string]any{"ok": true, "checked": n, "anchors": len(anchors)}
	if head.Seq > 0 {
		out["head"] = head
	}
	writeJSON(w, http.StatusOK, out)
}
