package http

import (
	"net/http"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/quality"
)

// handleQuality serves the data-quality report (docs/quality.md); ?top=N
// bounds the reasons listed per source.
func (s *Server) handleQuality(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if s.QualityStore == nil {
		Error(w, r, portrait.Errorf(portrait.EUNAVAILABLE, "the quality report is not enabled on this server"))
		return
	}
	top, err := queryInt(r, "top", 10)
	if err != nil {
		Error(w, r, err)
		return
	}
	rep, err := quality.Build(r.Context(), s.QualityStore, s.Now(), top)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
