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
	writeJSON(w, http.StatusOK, s.profileSegments(r.PathValue("id")))
}

// segmentMembership is one segment a customer is in.
type segmentMembership struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int    `json:"size"`
}

// profileSegments lists the segments the profile is in, from the index (also
// a part of the 360 view).
func (s *Server) profileSegments(id string) map[string]any {
	out := []segmentMembership{}
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
				out = append(out, segmentMembership{ID: st.ID, Name: st.Name, Size: st.Size})
			}
		}
	}
	return map[string]any{"profile_id": id, "indexed": indexed, "segments": out}
}
