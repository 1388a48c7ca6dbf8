package http

import (
	"context"
	"net/http"
	"strconv"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/quality"
)

// handleQuality serves the data-quality report (docs/quality.md); ?top=N
// bounds the reasons listed per source. Building it reads every profile,
// so it is served from the server's answer cache (freshness.go): exact
// while nothing was committed; once data changed, the previous report
// (stale: true, at most 5 minutes old) while one rebuild runs in the
// background, at most every 10 seconds. "freshness" says which it was.
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
	if top <= 0 {
		top = 10
	}
	v, f, err := s.caches().quality.get(r.Context(), "top="+strconv.Itoa(top), s.Now, s.buildQuality(top))
	if err != nil {
		Error(w, r, err)
		return
	}
	out := *v.(*quality.Report) // shared: only the copy gets this request's freshness
	out.Freshness = &quality.Freshness{DataVersion: f.DataVersion, ComputedAt: f.ComputedAt, Cached: f.Cached, Stale: f.Stale,
		AgeSeconds: f.AgeSeconds, MaxStaleSeconds: f.MaxStaleSeconds}
	writeJSON(w, http.StatusOK, &out)
}

func (s *Server) buildQuality(top int) func(ctx context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		return quality.Build(ctx, s.QualityStore, s.Now(), top)
	}
}
