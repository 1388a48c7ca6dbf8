package http

import (
	"net/http"
	"sync"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/quality"
)

// qualityCache holds the report between requests when the store can say
// whether its data changed (quality.Versioner); built on first use.
type qualityCache struct {
	once  sync.Once
	cache *quality.Cache
}

// handleQuality serves the data-quality report (docs/quality.md); ?top=N
// bounds the reasons listed per source. The report is recomputed only when
// data was committed since the last one; "freshness" says which it was.
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
	s.qualityCache.once.Do(func() {
		if v, ok := s.QualityStore.(quality.Versioner); ok {
			s.qualityCache.cache = &quality.Cache{Store: s.QualityStore, Versions: v}
		}
	})
	var rep *quality.Report
	if c := s.qualityCache.cache; c != nil {
		rep, err = c.Report(r.Context(), s.Now(), top)
	} else {
		rep, err = quality.Build(r.Context(), s.QualityStore, s.Now(), top)
	}
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
