package http

import (
	"context"
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
	mux.Handle("GET /v1/linkage/duplicates", s.instrument("/v1/linkage/duplicates", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		limit, err := queryInt(r, "limit", 100)
		if err != nil {
			Error(w, r, err)
			return
		}
		ds, err := s.Linkage.Duplicates(r.Context())
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, linkage.Report(ds, limit))
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

// importDuplicates adds to an import's summary document the probable
// duplicates its rows produced (profiles an identity limit keeps apart
// although they share a person's identifiers). They are read from the
// merge journal when the summary is asked for, since the import answers
// before its events are applied.
func (s *Server) importDuplicates(ctx context.Context, doc map[string]any) error {
	if s.Linkage == nil || s.Linkage.Journal == nil || doc["state"] != "done" {
		return nil
	}
	source, _ := doc["source"].(string)
	file, _ := doc["file"].(string)
	if file == "" {
		file, _ = doc["file_sha256"].(string)
	}
	ds, err := linkage.ProbableDuplicates(ctx, s.Linkage.Journal, linkage.FromImport(source, file))
	if err != nil {
		return err
	}
	doc["probable_duplicates"] = linkage.Report(ds, 100)
	return nil
}
