package http

import (
	"net/http"

	"github.com/portrait-cdp/portrait"
)

// mountProfileSegments serves the segments one customer is in, in one call
// (the 360 page asked each segment's explanation to find out, one request
// per segment; explanations are now asked for only when opened).
func (s *Server) mountProfileSegments(mux *http.ServeMux) {
	if s.Segments == nil {
		return
	}
	mux.Handle("GET /v1/profiles/{id}/segments", s.instrument("/v1/profiles/{id}/segments", s.admin(s.handleProfileSegments)))
}

func (s *Server) handleProfileSegments(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	id := r.PathValue("id")
	type membership struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Size int    `json:"size"`
	}
	out := []membership{}
	// A profile the index has not seen yet (created an instant ago) is in
	// no segment yet: "indexed" says so rather than a 404.
	indexed := s.Segments.Index.Has(id)
	if indexed {
		me := s.Segments.Index.Numbers([]string{id})
		for _, st := range s.Segments.List() {
			bm, err := s.Segments.MemberSet(st.ID)
			if err != nil {
				continue // deleted since List
			}
			if bm.Intersects(me) {
				out = append(out, membership{ID: st.ID, Name: st.Name, Size: st.Size})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile_id": id, "indexed": indexed, "segments": out})
}
