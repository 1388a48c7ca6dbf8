package http

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

// mountSearch serves the console's type-ahead customer search.
func (s *Server) mountSearch(mux *http.ServeMux) {
	if s.Search == nil {
		return
	}
	mux.Handle("GET /v1/search", s.instrument("/v1/search", s.admin(s.handleSearch)))
}

// searchTraits are shown beside each result, enough to tell two 王芳 apart.
var searchTraits = []string{"city", "province", "lifecycle_stage", "revenue", "member_level"}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	start := time.Now()
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "q is required: a name, pinyin, phone, email or identifier"))
		return
	}
	if utf8.RuneCountInString(q) > 200 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "q is longer than 200 characters"))
		return
	}
	limit, err := queryInt(r, "limit", 20)
	if err != nil {
		Error(w, r, err)
		return
	}
	if limit < 1 || limit > 100 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be between 1 and 100"))
		return
	}
	hits := s.Search.Search(q, limit)
	results := make([]map[string]any, 0, len(hits))
	for _, h := range hits {
		if !canSee(r, access.KindTrait, h.Field) || !canSee(r, access.KindIdentifier, h.Field) {
			continue // found by a field the caller may not see (access.go)
		}
		p, err := s.Profiles.Profile(r.Context(), h.ProfileID)
		if portrait.ErrorCode(err) == portrait.ENOTFOUND {
			continue // merged or erased since the index saw it
		}
		if err != nil {
			Error(w, r, err)
			return
		}
		name, _ := p.Traits["name"].Value.(string)
		tr := map[string]any{}
		for _, k := range searchTraits {
			if t, ok := p.Traits[k]; ok && t.Value != nil {
				tr[k] = t.Value
			}
		}
		ids := p.Identifiers
		if ids == nil {
			ids = []portrait.Identifier{}
		}
		results = append(results, map[string]any{"profile_id": p.ID, "name": name,
			"matched": map[string]any{"field": h.Field, "value": h.Value, "exact": h.Exact}, "identifiers": ids, "traits": tr})
	}
	writeJSON(w, http.StatusOK, map[string]any{"query": q, "results": results, "took_ms": ms(time.Since(start))})
}
