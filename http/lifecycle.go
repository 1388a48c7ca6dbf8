package http

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// mountLifecycle serves the lifecycle distribution over time and the flows
// between stages, read from the stage histories the segment index holds.
func (s *Server) mountLifecycle(mux *http.ServeMux) {
	if s.Segments == nil {
		return
	}
	mux.Handle("GET /v1/lifecycle/distribution", s.instrument("/v1/lifecycle/distribution", s.admin(s.handleLifecycleDistribution)))
	mux.Handle("GET /v1/lifecycle/flows", s.instrument("/v1/lifecycle/flows", s.admin(s.handleLifecycleFlows)))
}

// dateRange reads from and to (dates or RFC 3339 times); an absent to is
// today, an absent from is back bySteps intervals from to.
func (s *Server) dateRange(r *http.Request, back func(time.Time) time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, portrait.Errorf(portrait.EINVALID, "%s must be a date (2026-01-31) or an RFC 3339 time, not %q", name, v)
		}
		return t.UTC(), nil
	}
	if from, err = parse("from"); err != nil {
		return
	}
	if to, err = parse("to"); err != nil {
		return
	}
	if to.IsZero() {
		to = s.Now().UTC()
	}
	if from.IsZero() {
		from = back(to)
	}
	if to.Before(from) {
		err = portrait.Errorf(portrait.EINVALID, "from must not be after to")
	}
	return
}

func (s *Server) handleLifecycleDistribution(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	interval := r.URL.Query().Get("interval")
	back := map[string]func(time.Time) time.Time{
		"":      func(t time.Time) time.Time { return t.AddDate(0, 0, -7*11) },
		"week":  func(t time.Time) time.Time { return t.AddDate(0, 0, -7*11) },
		"day":   func(t time.Time) time.Time { return t.AddDate(0, 0, -29) },
		"month": func(t time.Time) time.Time { return t.AddDate(0, -11, 0) },
	}[interval]
	if back == nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "interval must be day, week or month, not %q", interval))
		return
	}
	if interval == "" {
		interval = "week"
	}
	from, to, err := s.dateRange(r, back)
	if err != nil {
		Error(w, r, err)
		return
	}
	if _, err := traits.Periods(interval, from, to); err != nil { // a bad range is the caller's error, not cached
		Error(w, r, err)
		return
	}
	_, segID, err := s.segmentScope(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	if segID == nil && s.Lifecycle != nil {
		// Everyone: the counts kept as histories change are exact now.
		periods, _ := traits.Periods(interval, from, to)
		if s.Lifecycle.Distribution(periods) {
			writeJSON(w, http.StatusOK, map[string]any{"interval": interval, "from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly),
				"segment": segID, "stages": traits.Stages, "series": periods, "history_kept": traits.HistoryKept, "freshness": s.keptFreshness()})
			return
		}
	}
	key := "distribution|" + interval + "|" + from.Format(time.RFC3339) + "|" + to.Format(time.RFC3339) + "|" + r.URL.Query().Get("segment")
	v, f, err := s.caches().lifecycle.get(r.Context(), key, s.Now, func(context.Context) (any, error) {
		within, err := s.membersOf(segID) // current members, also when refreshed later
		if err != nil {
			return nil, err
		}
		periods, err := traits.Periods(interval, from, to)
		if err != nil {
			return nil, err
		}
		s.Segments.Index.EachValue("lifecycle_history", within, func(_ string, v any) {
			traits.CountStages(periods, traits.ParseHistory(v))
		})
		return periods, nil
	})
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"interval": interval, "from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly),
		"segment": segID, "stages": traits.Stages, "series": v, "history_kept": traits.HistoryKept, "freshness": f})
}

func (s *Server) handleLifecycleFlows(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	// An absent from is a date too (the day 30 days before to), as the
	// API documents.
	from, to, err := s.dateRange(r, func(t time.Time) time.Time {
		t = t.AddDate(0, 0, -30)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	})
	if err != nil {
		Error(w, r, err)
		return
	}
	_, segID, err := s.segmentScope(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	// A date as to means the whole day.
	end := to
	if v := r.URL.Query().Get("to"); v == "" || len(v) == len(time.DateOnly) {
		end = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	}
	if segID == nil && s.Lifecycle != nil {
		if counts, ok := s.Lifecycle.Flows(from, end); ok {
			writeJSON(w, http.StatusOK, map[string]any{"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "segment": segID,
				"stages": traits.Stages, "flows": sortedFlows(counts), "history_kept": traits.HistoryKept, "freshness": s.keptFreshness()})
			return
		}
	}
	key := "flows|" + from.Format(time.RFC3339) + "|" + end.Format(time.RFC3339) + "|" + r.URL.Query().Get("segment")
	v, fr, err := s.caches().lifecycle.get(r.Context(), key, s.Now, func(context.Context) (any, error) {
		within, err := s.membersOf(segID)
		if err != nil {
			return nil, err
		}
		return s.lifecycleFlows(within, from, end), nil
	})
	if err != nil {
		Error(w, r, err)
		return
	}
	flows := v.([]traits.Flow)
	writeJSON(w, http.StatusOK, map[string]any{"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "segment": segID,
		"stages": traits.Stages, "flows": flows, "history_kept": traits.HistoryKept, "freshness": fr})
}

// lifecycleFlows counts the transitions in [from, end), largest first.
func (s *Server) lifecycleFlows(within *roaring.Bitmap, from, end time.Time) []traits.Flow {
	counts := map[traits.FlowKey]int{}
	s.Segments.Index.EachValue("lifecycle_history", within, func(_ string, v any) {
		traits.CountFlows(counts, traits.ParseHistory(v), from, end)
	})
	return sortedFlows(counts)
}

// keptFreshness is the freshness of an answer from the kept counts:
// computed in this request, as current as the segment index.
func (s *Server) keptFreshness() answerFreshness {
	return answerFreshness{ComputedAt: s.Now().UTC()}
}

// sortedFlows lists counted flows, largest first.
func sortedFlows(counts map[traits.FlowKey]int) []traits.Flow {
	flows := make([]traits.Flow, 0, len(counts))
	for k, n := range counts {
		f := traits.Flow{To: k.To, Count: n}
		if k.From != "" {
			from := k.From
			f.From = &from
		}
		flows = append(flows, f)
	}
	slices.SortFunc(flows, func(a, b traits.Flow) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		af, bf := "", ""
		if a.From != nil {
			af = *a.From
		}
		if b.From != nil {
			bf = *b.From
		}
		return cmp.Or(cmp.Compare(af, bf), cmp.Compare(a.To, b.To))
	})
	return flows
}

// membersOf is a segment's current members (nil id: everyone, nil).
func (s *Server) membersOf(id *string) (*roaring.Bitmap, error) {
	if id == nil {
		return nil, nil
	}
	return s.Segments.MemberSet(*id)
}
