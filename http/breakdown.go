package http

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/traits"
)

// mountBreakdown serves the console's group-by and profile lists, both
// answered from the segment index.
func (s *Server) mountBreakdown(mux *http.ServeMux) {
	if s.Segments == nil {
		return
	}
	mux.Handle("GET /v1/breakdown", s.instrument("/v1/breakdown", s.admin(s.handleBreakdown)))
	mux.Handle("GET /v1/profiles", s.instrument("/v1/profiles", s.admin(s.handleProfileList)))
}

// segmentScope resolves the segment parameter to its members (nil: none
// given, everyone).
func (s *Server) segmentScope(r *http.Request) (*roaring.Bitmap, *string, error) {
	id := r.URL.Query().Get("segment")
	if id == "" {
		return nil, nil, nil
	}
	bm, err := s.Segments.MemberSet(id)
	return bm, &id, err
}

func (s *Server) handleBreakdown(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	start := time.Now()
	q := r.URL.Query()
	by := q.Get("by")
	dim, err := segment.ParseDim(by)
	if err != nil {
		Error(w, r, err)
		return
	}
	if err := requireVisible(r, access.KindTrait, dim.Trait); err != nil {
		Error(w, r, err)
		return
	}
	if dim.Kind == segment.DimTag && dim.TagDimension != "" {
		if !slices.Contains(traits.Dimensions, dim.TagDimension) {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "tag dimension %q is not one of %s", dim.TagDimension, strings.Join(traits.Dimensions, ", ")))
			return
		}
		dim.Tags = []string{}
		if s.Tags != nil {
			for _, d := range s.Tags.List() {
				if d.Dimension == dim.TagDimension {
					dim.Tags = append(dim.Tags, d.Name)
				}
			}
		}
	}
	top, err := queryInt(r, "top", 10)
	if err != nil {
		Error(w, r, err)
		return
	}
	if top < 1 || top > 1000 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "top must be between 1 and 1000"))
		return
	}
	within, segID, err := s.segmentScope(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	var metric *string
	if m := q.Get("metric"); m != "" {
		metric = &m
	}
	bd, err := s.Segments.Index.Breakdown(dim, within, q.Get("metric"), top)
	if err != nil {
		Error(w, r, err)
		return
	}
	if dim.Kind == segment.DimTag && s.Tags != nil {
		s.labelTags(bd.Groups, requestLang(r))
	}
	out := map[string]any{"by": by, "segment": segID, "metric": metric, "total": bd.Total,
		"groups": bd.Groups, "other": bd.Other, "missing": map[string]any{"count": bd.Missing.Count, "share": bd.Missing.Share},
		"took_ms": ms(time.Since(start))}
	if metric != nil && !canSee(r, access.KindTrait, *metric) {
		// A sum or mean of a field the caller may not see is that field's
		// value for a group of one (by=trait:name&metric=revenue gave each
		// customer's revenue), and a difference of two groups' sums is one
		// too: the counts stay, the sums and means are left out, and the
		// answer says why.
		for i := range bd.Groups {
			bd.Groups[i].Sum, bd.Groups[i].Mean = nil, nil
		}
		if bd.Other != nil {
			bd.Other.Sum, bd.Other.Mean = nil, nil
		}
		out["metric_masked"] = requireVisible(r, access.KindTrait, *metric).Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// labelTags gives tag groups their definition's name in lang (name_zh or
// name_en); a tag without a definition keeps its name.
func (s *Server) labelTags(groups []segment.Group, lang string) {
	names := map[string]string{}
	for _, d := range s.Tags.List() {
		if lang == "zh" {
			names[d.Name] = d.NameZh
		} else {
			names[d.Name] = d.NameEn
		}
	}
	for i := range groups {
		if l := names[groups[i].Key]; l != "" {
			groups[i].Label = l
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// listTraits are the traits a profile list shows beside the name: where the
// customer is, what they are worth, where they stand.
var listTraits = []string{"email", "phone", "city", "province", "gender", "member_level", "lifecycle_stage", "rfm_segment",
	"purchase_count", "revenue", "clv_12m", "p_alive", "churn_probability"}

// listCursor is the opaque cursor of a profile list: the last key of the
// page and the order it belongs to.
type listCursor struct {
	Sort string          `json:"o"`
	Desc bool            `json:"d,omitempty"`
	Tag  string          `json:"t,omitempty"`
	Seg  string          `json:"g,omitempty"`
	Last segment.ListKey `json:"l"`
}

func (s *Server) handleProfileList(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	if limit < 1 || limit > 500 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "limit must be between 1 and 500"))
		return
	}
	sortBy, tag := q.Get("sort"), q.Get("tag")
	if err := requireVisible(r, access.KindTrait, sortBy); err != nil {
		Error(w, r, err)
		return
	}
	var desc bool
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		desc = true
	default:
		Error(w, r, portrait.Errorf(portrait.EINVALID, "order must be asc or desc"))
		return
	}
	within, _, err := s.segmentScope(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	var after *segment.ListKey
	if c := q.Get("cursor"); c != "" {
		var cur listCursor
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(raw, &cur) != nil {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "cursor is not one this API gave"))
			return
		}
		if cur.Sort != sortBy || cur.Desc != desc || cur.Tag != tag || cur.Seg != q.Get("segment") {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "cursor belongs to another list (sort, order, tag or segment differ)"))
			return
		}
		after = &cur.Last
	}
	ix := s.Segments.Index
	scope := ix.Scope(within, tag)
	keys := ix.List(scope, sortBy, desc, after, limit)
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		p, err := s.Profiles.Profile(r.Context(), k.ID)
		if portrait.ErrorCode(err) == portrait.ENOTFOUND {
			continue // merged or erased since the index saw it
		}
		if err != nil {
			Error(w, r, err)
			return
		}
		out = append(out, listEntry(p, sortBy))
	}
	var next *string
	if len(keys) == limit {
		raw, _ := json.Marshal(listCursor{Sort: sortBy, Desc: desc, Tag: tag, Seg: q.Get("segment"), Last: keys[len(keys)-1]})
		c := base64.RawURLEncoding.EncodeToString(raw)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"profiles": out, "total": int(scope.GetCardinality()), "next_cursor": next})
}

func listEntry(p *portrait.Profile, sortBy string) map[string]any {
	tr := map[string]any{}
	for _, name := range listTraits {
		if t, ok := p.Traits[name]; ok && t.Value != nil {
			tr[name] = t.Value
		}
	}
	if t, ok := p.Traits[sortBy]; ok && sortBy != "" {
		tr[sortBy] = t.Value
	}
	tags := make([]string, 0, len(p.Tags))
	for _, t := range p.Tags {
		tags = append(tags, t.Name)
	}
	name, _ := p.Traits["name"].Value.(string)
	return map[string]any{"profile_id": p.ID, "name": name, "traits": tr, "tags": tags}
}
