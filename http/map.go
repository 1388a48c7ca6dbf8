package http

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/bizmap"
)

// mountMap serves the customer business map (客户经营地图): the grid, its
// XLSX export, a cell's members, a cell saved as a segment, and the stages
// and rules it is drawn with.
func (s *Server) mountMap(mux *http.ServeMux) {
	if s.Map == nil {
		return
	}
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, k *portrait.Key)) {
		mux.Handle(pattern, s.instrument(pattern[strings.Index(pattern, " ")+1:], s.admin(fn)))
	}
	h("GET /v1/map", s.handleMap)
	h("GET /v1/map/export", s.handleMapExport)
	h("GET /v1/map/config", s.handleMapConfig)
	h("GET /v1/map/members", s.handleMapMembers)
	h("POST /v1/map/segments", s.handleMapSegment)
}

// mapQuery reads segments=ID,ID (or "all"), stages=a,b, top and lang.
func (s *Server) mapQuery(r *http.Request) (bizmap.Query, error) {
	q := r.URL.Query()
	split := func(v string) []string {
		var out []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	top, err := queryInt(r, "top", 5)
	if err != nil {
		return bizmap.Query{}, err
	}
	if top < 1 || top > bizmap.MaxTop {
		return bizmap.Query{}, portrait.Errorf(portrait.EINVALID, "top must be between 1 and %d", bizmap.MaxTop)
	}
	return bizmap.Query{Segments: split(q.Get("segments")), Stages: split(q.Get("stages")), Lang: requestLang(r), Top: top}, nil
}

func (s *Server) handleMap(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q, err := s.mapQuery(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	m, err := s.Map.Build(q)
	if err != nil {
		Error(w, r, err)
		return
	}
	s.maskMapFigures(r, m)
	s.maskMapLiterals(r, m)
	writeJSON(w, http.StatusOK, m)
}

// maskMapFigures leaves out the cells' figures computed from a trait the
// caller may not see (revenue, CLV, churn probability for an analyst of
// internal clearance), as the breakdown leaves out a hidden metric: a
// cell of one customer would give that customer's value. The counts stay,
// and masked_figures says which figures went and why.
func (s *Server) maskMapFigures(r *http.Request, m *bizmap.Map) {
	if accessOf(r.Context()) == nil {
		return
	}
	s.Map.Mask(m, func(trait string) bool { return !canSee(r, access.KindTrait, trait) },
		func(trait string) string {
			if err := requireVisible(r, access.KindTrait, trait); err != nil {
				return err.Error()
			}
			return ""
		})
}

// maskMapLiterals masks the literals of the rows' expressions and the
// cells' segment expressions (built from them) that the caller may not
// see, as GET /v1/segments/{id} does (segments_mask.go). The map is built
// for this response, so it is changed in place.
func (s *Server) maskMapLiterals(r *http.Request, m *bizmap.Map) {
	k := newRuleMasker(r)
	if k.none {
		return
	}
	for i := range m.Rows {
		row := &m.Rows[i]
		lits := s.Segments.PlanLiterals(row.Segment)
		plan := ""
		if st, err := s.Segments.Get(row.Segment); err == nil && row.Expression != "" {
			plan = k.mask(st.Plan)
		}
		row.Expression = k.expression(row.Expression, lits, plan)
		for j := range row.Cells {
			// No canonical form to fall back to: an expression that cannot
			// be masked as written is left out (the cell is still opened as
			// a segment by POST /v1/map/segments, from the real definition).
			row.Cells[j].SegmentExpression = k.expression(row.Cells[j].SegmentExpression, lits, "")
		}
	}
}

func (s *Server) handleMapExport(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if f := r.URL.Query().Get("format"); f != "" && f != "xlsx" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "format must be xlsx, not %q", f))
		return
	}
	q, err := s.mapQuery(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	m, err := s.Map.Build(q)
	if err != nil {
		Error(w, r, err)
		return
	}
	s.maskMapFigures(r, m)
	var buf bytes.Buffer
	if err := bizmap.WriteXLSX(m, q.Lang, &buf); err != nil {
		Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	w.Header().Set("Content-Disposition", `attachment; filename="customer-map.xlsx"`)
	w.Write(buf.Bytes())
}

func (s *Server) handleMapConfig(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	lang := requestLang(r)
	type stage struct {
		Name  string `json:"name"`
		Label string `json:"label"`
	}
	var stages []stage
	for _, st := range s.Map.Journey.Stages {
		stages = append(stages, stage{Name: st.Name, Label: st.Label(lang)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"stages": stages, "rules": s.Map.Rules(), "figures": bizmap.Figures})
}

func (s *Server) handleMapMembers(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	seg, stage := q.Get("segment"), q.Get("stage")
	if seg == "" || stage == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "segment and stage are required"))
		return
	}
	offset, err := queryInt(r, "offset", 0)
	if err != nil {
		Error(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	if offset < 0 || limit < 1 || limit > 1000 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "offset must be ≥ 0 and limit between 1 and 1000"))
		return
	}
	ids, total, err := s.Map.Members(seg, stage, offset, limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"segment": seg, "stage": stage, "total": total, "profiles": ids, "offset": offset})
}

// handleMapSegment saves a cell as a segment of its members:
// {"segment": id|"all", "stage": name, "name": optional}.
func (s *Server) handleMapSegment(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if s.Segments == nil {
		Error(w, r, portrait.Errorf(portrait.EUNAVAILABLE, "segments are not served"))
		return
	}
	var body struct {
		Segment string `json:"segment"`
		Stage   string `json:"stage"`
		Name    string `json:"name"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, `body must be {"segment", "stage", "name"}: %v`, err))
		return
	}
	if body.Segment == "" || body.Stage == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "segment and stage are required"))
		return
	}
	d, err := s.Map.CellDefinition(body.Segment, body.Stage, body.Name)
	if err != nil {
		Error(w, r, err)
		return
	}
	// The cell's segment tests the row's fields: one the caller may not
	// see is refused (403 naming it), as POST /v1/segments refuses it.
	if err := segmentFieldsVisible(r, *d); err != nil {
		Error(w, r, err)
		return
	}
	st, err := s.Segments.Create(r.Context(), d)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.maskedStatus(r, st))
}
