package http

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/traits"
)

// handleNPS: GET /v1/analytics/nps?by=tag|trait:<name>|segment:<id>&interval=month&from=...&to=...
// Several by=segment:<id> values, or segments=a,b, give one row per segment
// (per period); a customer in two segments counts in both.
func (s *Server) handleNPS(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	nq := traits.NPSQuery{By: q.Get("by"), Interval: q.Get("interval")}
	// Grouped by a trait, each row names a value of it: one the caller may
	// not see cannot group (the rows were phone numbers in clear).
	for _, by := range q["by"] {
		if name, ok := strings.CutPrefix(by, "trait:"); ok {
			if err := requireVisible(r, access.KindTrait, name); err != nil {
				Error(w, r, err)
				return
			}
		}
	}
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
	segs, err := s.npsSegments(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	out := map[string]any{"by": nq.By, "interval": nq.Interval}
	if segs != nil {
		names := make([]map[string]any, 0, len(segs))
		sets := make([]*roaring.Bitmap, 0, len(segs))
		for _, id := range segs {
			st, err := s.Segments.Get(id)
			if err != nil {
				Error(w, r, err)
				return
			}
			names = append(names, map[string]any{"id": id, "name": st.Name})
			bm, err := s.Segments.MemberSet(id)
			if err != nil {
				Error(w, r, err)
				return
			}
			sets = append(sets, bm)
		}
		out["by"], out["segments"] = "segment", names
		if s.Segments.Index.Keeps() {
			// The index keeps every customer's answers: each segment's
			// answers are its members' among them, no document read.
			nq.By = "" // grouped here, by segment: only the period and range to check
			if err := nq.Validate(); err != nil {
				Error(w, r, err)
				return
			}
			rows, err := traits.AggregateSurveys(func(fn func([]traits.Survey, []string) error) error {
				for i, bm := range sets {
					group := []string{segs[i]}
					err := s.Segments.Index.EachKept(bm, false, func(_ string, v any, _ []string) error {
						return fn(v.([]traits.Survey), group)
					})
					if err != nil {
						return err
					}
				}
				return r.Context().Err()
			}, nq)
			s.writeNPS(w, r, out, nq, rows, err)
			return
		}
		members := map[string][]string{} // profile → segments
		all := roaring.New()
		for i, bm := range sets {
			for _, pid := range s.Segments.Index.IDs(bm, 0, int(bm.GetCardinality())) {
				members[pid] = append(members[pid], segs[i])
			}
			all.Or(bm)
		}
		nq.By = "segment"
		nq.Groups = func(p *portrait.Profile) []string { return members[p.ID] }
		// Only members who answered a survey (they hold nps_score or
		// csat_score) can count: read those, not every profile.
		all.And(s.Segments.Index.Holding("nps_score", "csat_score"))
		ids := s.Segments.Index.IDs(all, 0, int(all.GetCardinality()))
		rows, err := traits.AggregateNPS(r.Context(), func(ctx context.Context, fn func(*portrait.Profile) error) error {
			for _, id := range ids {
				p, err := s.Profiles.Profile(ctx, id)
				if portrait.ErrorCode(err) == portrait.ENOTFOUND {
					continue // merged or erased since the index saw it
				}
				if err != nil {
					return err
				}
				if err := fn(p); err != nil {
					return err
				}
			}
			return nil
		}, nq)
		s.writeNPS(w, r, out, nq, rows, err)
		return
	}
	if s.Segments != nil && s.Segments.Index.Keeps() && (nq.By == "" || nq.By == "tag") {
		// Overall and by tag: the kept answers and the tag bitmaps.
		if err := nq.Validate(); err != nil {
			Error(w, r, err)
			return
		}
		byTag := nq.By == "tag"
		rows, err := traits.AggregateSurveys(func(fn func([]traits.Survey, []string) error) error {
			all := []string{"all"}
			err := s.Segments.Index.EachKept(nil, byTag, func(_ string, v any, tags []string) error {
				if byTag {
					return fn(v.([]traits.Survey), traits.TagGroups(tags))
				}
				return fn(v.([]traits.Survey), all)
			})
			if err != nil {
				return err
			}
			return r.Context().Err()
		}, nq)
		s.writeNPS(w, r, out, nq, rows, err)
		return
	}
	rows, err := s.Traits.NPS(r.Context(), nq)
	s.writeNPS(w, r, out, nq, rows, err)
}

func (s *Server) writeNPS(w http.ResponseWriter, r *http.Request, out map[string]any, nq traits.NPSQuery, rows []traits.NPSRow, err error) {
	if err != nil {
		Error(w, r, err)
		return
	}
	if nq.Interval == "" {
		nq.Interval = "month" // the default Validate applied
	}
	out["interval"], out["rows"] = nq.Interval, rows
	writeJSON(w, http.StatusOK, out)
}

// npsSegments reads the segments NPS is grouped by: by=segment:<id> (one or
// more) and segments=a,b. Nil: not grouped by segment.
func (s *Server) npsSegments(r *http.Request) ([]string, error) {
	q := r.URL.Query()
	var ids []string
	bySegment := false
	for _, by := range q["by"] {
		if id, ok := strings.CutPrefix(by, "segment:"); ok {
			bySegment = true
			if id != "" {
				ids = append(ids, id)
			}
		} else if len(q["by"]) > 1 {
			return nil, portrait.Errorf(portrait.EINVALID, "several by values must all be segment:<id>, not %q", by)
		}
	}
	if v := q.Get("segments"); v != "" {
		for _, by := range q["by"] {
			if by != "" && !strings.HasPrefix(by, "segment:") {
				return nil, portrait.Errorf(portrait.EINVALID, "segments=… groups by segment; it cannot be combined with by=%s", by)
			}
		}
		bySegment = true
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if !bySegment {
		return nil, nil
	}
	if len(ids) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "by=segment needs a segment id: by=segment:<id> or segments=a,b")
	}
	if s.Segments == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "segments are not served by this server")
	}
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
