package http

import (
	"net/http"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Retention is what GET /v1/retention reports: the configured ages and
// the store's record of what each retention run deleted.
type Retention struct {
	Runs portrait.RetentionLog
	// EventAge and QuarantineAge are the configured limits (0: kept).
	EventAge, QuarantineAge time.Duration
}

func (s *Server) mountRetention(mux *http.ServeMux) {
	if s.Retention == nil || s.Retention.Runs == nil {
		return
	}
	mux.Handle("GET /v1/retention", s.instrument("/v1/retention", s.admin(s.handleRetention)))
}

type retentionPolicy struct {
	Enabled bool `json:"enabled"`
	// MaxAge is Go's duration text ("8760h0m0s"), MaxAgeSeconds the same
	// in seconds; both absent when nothing expires.
	MaxAge        string `json:"max_age,omitempty"`
	MaxAgeSeconds int64  `json:"max_age_seconds,omitempty"`
}

func policy(d time.Duration) retentionPolicy {
	if d <= 0 {
		return retentionPolicy{}
	}
	return retentionPolicy{Enabled: true, MaxAge: d.String(), MaxAgeSeconds: int64(d / time.Second)}
}

// handleRetention answers the retention status: the limits, and the runs
// that deleted something, newest first (?limit=, default 50).
func (s *Server) handleRetention(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	if limit < 1 || limit > 1000 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be between 1 and 1000"))
		return
	}
	runs, err := s.Retention.Runs.RetentionRuns(r.Context(), limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	if runs == nil {
		runs = []portrait.RetentionRun{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"events":     policy(s.Retention.EventAge),
		"quarantine": policy(s.Retention.QuarantineAge),
		"runs":       runs,
	})
}
