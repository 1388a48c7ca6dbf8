package http

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// profileIssueReader lists the values the cleaners refused on one profile.
type profileIssueReader interface {
	ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error)
}

// mountProfile360 adds the parts of the profile page beyond the profile
// itself; served when the profile store can answer them.
func (s *Server) mountProfile360(mux *http.ServeMux) {
	if s.Linkage != nil {
		mux.Handle("POST /v1/profiles/{id}/merges/{merge}/undo", s.instrument("/v1/profiles/{id}/merges/{merge}/undo", s.admin(s.handleUndoMerge)))
	}
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

// handleUndoMerge undoes one merge of a profile's journal, named by its
// entry id. Only merges made by record linkage can be undone: their undo is
// the pair's rejection, a retract event through the log. A merge made by a
// shared identifier would need the identity graph to remember a split;
// that is refused with a clear message rather than half done.
func (s *Server) handleUndoMerge(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	id := r.PathValue("id")
	mid, err := strconv.ParseInt(r.PathValue("merge"), 10, 64)
	if err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "the merge is named by its journal entry id, a number"))
		return
	}
	journal, err := s.Profiles.ProfileMerges(r.Context(), id)
	if err != nil {
		Error(w, r, err)
		return
	}
	var m *portrait.MergeEntry
	for _, e := range journal {
		if e.ID == mid {
			m = e
		}
	}
	switch {
	case m == nil:
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no merge %d in the journal of profile %s", mid, id))
		return
	case m.Kind != portrait.MergeMerged:
		Error(w, r, portrait.Errorf(portrait.EINVALID, "journal entry %d is a %s entry, not a merge", mid, m.Kind))
		return
	case !strings.HasPrefix(m.MessageID, "link-"):
		Error(w, r, portrait.Errorf(portrait.EINVALID, "merge %d was made by the shared identifier %s %q; only merges made by record linkage can be undone", mid, m.Identifier.Type, m.Identifier.Value))
		return
	}
	c, err := s.Linkage.UndoLink(r.Context(), m.MessageID, k.Name)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"merge": m, "candidate": c, "by": k.Name, "at": s.Now().UTC()})
}
