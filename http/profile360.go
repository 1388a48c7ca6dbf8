package http

import (
	"context"
	"net/http"

	"github.com/portrait-cdp/portrait"
)

// profileIssueReader lists the values the cleaners refused on one profile.
type profileIssueReader interface {
	ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error)
}

// mountProfile360 adds the parts of the profile page beyond the profile
// itself; served when the profile store can answer them.
func (s *Server) mountProfile360(mux *http.ServeMux) {
	issues, ok := s.Profiles.(profileIssueReader)
	if !ok {
		return
	}
	mux.Handle("GET /v1/profiles/{id}/issues", s.instrument("/v1/profiles/{id}/issues", s.admin(func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		limit, err := queryInt(r, "limit", 100)
		if err != nil {
			Error(w, r, err)
			return
		}
		if limit < 1 || limit > 1000 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be 1..1000"))
			return
		}
		list, err := issues.ProfileTraitIssues(r.Context(), r.PathValue("id"), limit)
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"issues": list})
	})))
}
