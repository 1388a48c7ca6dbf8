package http

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/traits"
)

// OverviewStore is what the overview reads beyond the segment index: event
// and quarantine counts, the latest merges, refused trait values.
type OverviewStore interface {
	SourceActivity(ctx context.Context) ([]portrait.SourceActivity, error)
	EventsPerMinute(ctx context.Context, since time.Time) (map[time.Time]int64, error)
	RecentMerges(ctx context.Context, limit int) ([]*portrait.MergeEntry, error)
	EachTraitIssue(ctx context.Context, fn func(source, trait, reason string, n int64) error) error
}

// mountOverview serves the console's landing page in one call.
func (s *Server) mountOverview(mux *http.ServeMux) {
	if s.Overview == nil || s.Segments == nil {
		return
	}
	mux.Handle("GET /v1/overview", s.instrument("/v1/overview", s.admin(s.handleOverview)))
}

type sourceRow struct {
	Source        string     `json:"source"`
	LastEventAt   *time.Time `json:"last_event_at"`
	Events        int64      `json:"events"`
	Rejected      int64      `json:"rejected"`
	RejectionRate float64    `json:"rejection_rate"` // rejected / (events + rejected)
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	ctx := r.Context()
	now := s.Now().UTC()
	ix := s.Segments.Index
	out := map[string]any{}

	// profiles and the identified share, from the index
	idDim, _ := segment.ParseDim("identified")
	bd, err := ix.Breakdown(idDim, nil, "", 2)
	if err != nil {
		Error(w, r, err)
		return
	}
	identified := 0
	for _, g := range bd.Groups {
		if g.Key == "identified" {
			identified = g.Count
		}
	}
	out["profiles"], out["identified"], out["identified_share"] = bd.Total, identified, share(int64(identified), int64(bd.Total))

	// the last 60 whole minutes and the current one, oldest first, zeros kept
	// so the chart's axis is continuous
	cur := now.Truncate(time.Minute)
	first := cur.Add(-59 * time.Minute)
	perMin, err := s.Overview.EventsPerMinute(ctx, first)
	if err != nil {
		Error(w, r, err)
		return
	}
	epm := make([]map[string]any, 0, 60)
	for m := first; !m.After(cur); m = m.Add(time.Minute) {
		epm = append(epm, map[string]any{"minute": m, "count": perMin[m]})
	}
	out["events_per_minute"] = epm

	// sources: every write key, and every source that sent something
	acts, err := s.Overview.SourceActivity(ctx)
	if err != nil {
		Error(w, r, err)
		return
	}
	bySrc := map[string]*sourceRow{}
	rows := []*sourceRow{}
	row := func(name string) *sourceRow {
		if x := bySrc[name]; x != nil {
			return x
		}
		x := &sourceRow{Source: name}
		bySrc[name] = x
		rows = append(rows, x)
		return x
	}
	if s.Keys != nil {
		keys, err := s.Keys.ListKeys(ctx)
		if err != nil {
			Error(w, r, err)
			return
		}
		for _, k := range keys {
			if k.Kind == portrait.KeyWrite {
				row(k.Name)
			}
		}
	}
	var events, rejected int64
	for _, a := range acts {
		x := row(a.Source)
		x.Events, x.Rejected = a.Events, a.Rejected
		if !a.LastEvent.IsZero() {
			t := a.LastEvent.UTC()
			x.LastEventAt = &t
		}
		x.RejectionRate = share(a.Rejected, a.Events+a.Rejected)
		events += a.Events
		rejected += a.Rejected
	}
	slices.SortFunc(rows, func(a, b *sourceRow) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(a.Source, b.Source))
	})
	out["sources"] = rows
	out["events_total"] = events

	// Quality score: the share of records that arrived clean, neither
	// quarantined nor carrying a trait value the cleaners refused. It is
	// made of counts the store keeps grouped, so the overview does not read
	// every profile as the full report (GET /v1/quality) does.
	var issues int64
	if err := s.Overview.EachTraitIssue(ctx, func(_, _, _ string, n int64) error {
		issues += n
		return nil
	}); err != nil {
		Error(w, r, err)
		return
	}
	if events+rejected > 0 {
		out["quality_score"] = max(0, 1-float64(rejected+issues)/float64(events+rejected))
	} else {
		out["quality_score"] = nil // nothing received yet: no score, not a perfect one
	}

	out["segments"] = len(s.Segments.List())

	merges, err := s.Overview.RecentMerges(ctx, 10)
	if err != nil {
		Error(w, r, err)
		return
	}
	recent := make([]map[string]any, 0, len(merges))
	for _, m := range merges {
		reason := m.Reason
		if reason == "" && m.Identifier.Type != "" {
			reason = "shared " + m.Identifier.Type
		}
		// reason stays the English sentence; reason_code and its
		// parameters let the console say it in the reader's language.
		code, params := profile.ReasonCode(m.Reason, m.Identifier.Type)
		row := map[string]any{"profile_id": m.Into, "merged_from": m.From, "at": m.At.UTC(), "reason": reason,
			"identifier": m.Identifier}
		if code != "" {
			row["reason_code"], row["reason_params"] = code, params
		}
		recent = append(recent, row)
	}
	out["recent_merges"] = recent

	// lifecycle: current stages, in lifecycle order
	lcDim, _ := segment.ParseDim("lifecycle")
	lc, err := ix.Breakdown(lcDim, nil, "", 1000)
	if err != nil {
		Error(w, r, err)
		return
	}
	counts := map[string]int{}
	for _, g := range lc.Groups {
		counts[g.Key] = g.Count
	}
	stages := make([]map[string]any, 0, len(traits.Stages))
	for _, st := range traits.Stages {
		stages = append(stages, map[string]any{"stage": st, "count": counts[st]})
		delete(counts, st)
	}
	rest := make([]string, 0, len(counts))
	for st := range counts { // a stage this build does not know (custom lifecycle)
		rest = append(rest, st)
	}
	slices.Sort(rest)
	for _, st := range rest {
		stages = append(stages, map[string]any{"stage": st, "count": counts[st]})
	}
	out["lifecycle"] = stages
	writeJSON(w, http.StatusOK, out)
}

func share(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
