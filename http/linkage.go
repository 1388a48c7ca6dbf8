package http

import (
	"net/http"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

// mountLinkage serves record linkage: runs, the review band, decisions.
func (s *Server) mountLinkage(mux *http.ServeMux) {
	if s.Linkage == nil {
		return
	}
	mux.Handle("POST /v1/linkage/runs", s.instrument("/v1/linkage/runs", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		res, err := s.Linkage.Run(r.Context())
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})))
	mux.Handle("GET /v1/linkage/candidates", s.instrument("/v1/linkage/candidates", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		status := r.URL.Query().Get("status")
		if status == "" {
			status = linkage.Pending
		}
		if status == "all" {
			status = ""
		}
		switch status {
		case "", linkage.Pending, linkage.Accepted, linkage.Rejected, linkage.Linked:
		default:
			Error(w, r, portrait.Errorf(portrait.EINVALID, "status must be pending, accepted, rejected, linked or all"))
			return
		}
		limit, err := queryInt(r, "limit", 100)
		if err != nil {
			Error(w, r, err)
			return
		}
		cs, err := s.Linkage.Store.Candidates(r.Context(), status, limit)
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"candidates": cs})
	})))
	decide := func(accept bool) http.Handler {
		return s.admin(func(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
			var c *linkage.Candidate
			var err error
			if accept {
				c, err = s.Linkage.Accept(r.Context(), r.PathValue("id"), k.Name)
			} else {
				c, err = s.Linkage.Reject(r.Context(), r.PathValue("id"), k.Name)
			}
			if err != nil {
				Error(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, c)
		})
	}
	mux.Handle("POST /v1/linkage/candidates/{id}/accept", s.instrument("/v1/linkage/candidates/{id}/accept", decide(true)))
	mux.Handle("POST /v1/linkage/candidates/{id}/reject", s.instrument("/v1/linkage/candidates/{id}/reject", decide(false)))
}
