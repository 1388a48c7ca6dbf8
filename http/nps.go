package http

import (
	"net/http"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// handleNPS: GET /v1/analytics/nps?by=tag|trait:<name>&interval=month&from=...&to=...
func (s *Server) handleNPS(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	nq := traits.NPSQuery{By: q.Get("by"), Interval: q.Get("interval")}
	for _, x := range []struct {
		name string
		t    *time.Time
	}{{"from", &nq.From}, {"to", &nq.To}} {
		v := q.Get(x.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse("2006-01-02", v); err != nil {
				Error(w, r, portrait.Errorf(portrait.EINVALID, "%s must be a date (2026-01-31) or an RFC 3339 time", x.name))
				return
			}
		}
		*x.t = t
	}
	rows, err := s.Traits.NPS(r.Context(), nq)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"by": nq.By, "interval": nq.Interval, "rows": rows})
}
