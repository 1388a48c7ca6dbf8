package http

import (
	"net/http"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	p, err := s.Profiles.Profile(r.Context(), r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, profileView(p))
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	typ, value := strings.TrimSpace(q.Get("type")), q.Get("value")
	if typ == "" || value == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "lookup needs type and value, e.g. ?type=email&value=x@example.com"))
		return
	}
	if err := requireVisible(r, access.KindIdentifier, typ); err != nil {
		Error(w, r, err)
		return
	}
	p, err := s.Profiles.ProfileByIdentifier(r.Context(), s.normalizeLookup(typ, value))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, profileView(p))
}

// normalizeLookup standardises a looked-up value the way the identity graph
// stored it, so "Zhang.San@Example.COM" finds zhang.san@example.com.
func (s *Server) normalizeLookup(typ, value string) portrait.Identifier {
	typ = strings.ToLower(typ)
	value = strings.TrimSpace(value)
	if s.NormalizeID != nil {
		if v, ok := s.NormalizeID(typ, value); ok {
			value = v
		}
	}
	return portrait.Identifier{Type: typ, Value: value}
}

// profileView is the profile as clients see it.
func profileView(p *portrait.Profile) map[string]any {
	ids := p.Identifiers
	if ids == nil {
		ids = []portrait.Identifier{}
	}
	merged := p.MergedFrom
	if merged == nil {
		merged = []string{}
	}
	return map[string]any{
		"id": p.ID, "traits": p.Traits, "identifiers": ids, "merged_from": merged,
		"first_seen": p.FirstSeen, "last_seen": p.LastSeen,
		"event_count": p.EventCount, "event_counts": p.EventCounts, "track_counts": p.TrackCounts, "tags": tagsView(p),
		"updated_at": p.UpdatedAt,
	}
}

func (s *Server) handleProfileEvents(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	q := r.URL.Query()
	f := portrait.EventFilter{Type: q.Get("type"), Event: q.Get("event"), Source: q.Get("source")}
	switch f.Type {
	case "", portrait.EventIdentify, portrait.EventTrack, portrait.EventPage, portrait.EventScreen, portrait.EventGroup, portrait.EventAlias:
	default:
		Error(w, r, portrait.Errorf(portrait.EINVALID, "type must be one of identify, track, page, screen, group, alias"))
		return
	}
	events, next, err := s.Profiles.ProfileEvents(r.Context(), r.PathValue("id"), portrait.Page{Cursor: q.Get("cursor"), Limit: limit, Filter: f})
	if err != nil {
		Error(w, r, err)
		return
	}
	if events == nil {
		events = []*portrait.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "next": next})
}

func (s *Server) handleProfileMerges(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	m, err := s.Profiles.ProfileMerges(r.Context(), r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"merges": m})
}

func (s *Server) handleQuarantine(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		Error(w, r, err)
		return
	}
	if limit < 1 || limit > 1000 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be 1..1000"))
		return
	}
	after, err := queryInt(r, "after", 0)
	if err != nil {
		Error(w, r, err)
		return
	}
	recs, err := s.Quarantine.ListQuarantine(r.Context(), portrait.QuarantineFilter{Source: r.URL.Query().Get("source"), After: int64(after), Limit: limit})
	if err != nil {
		Error(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(recs))
	var next int64
	for _, q := range recs {
		items = append(items, map[string]any{"id": q.ID, "source": q.Source, "index": q.Index, "reason": q.Reason, "raw": string(q.Raw), "received_at": q.ReceivedAt})
		next = q.ID
	}
	out := map[string]any{"items": items}
	if len(recs) == limit && limit > 0 {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
}
