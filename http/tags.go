package http

import (
	"encoding/json"
	"net/http"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/tag"
)

// mountEnrichment adds the tag, trait and satisfaction routes when their
// services are wired.
func (s *Server) mountEnrichment(mux *http.ServeMux) {
	if s.Tags != nil {
		mux.Handle("GET /v1/tags", s.instrument("/v1/tags", s.admin(s.handleTags)))
		mux.Handle("POST /v1/tags", s.instrument("/v1/tags", s.admin(s.handleDefineTag)))
		mux.Handle("GET /v1/tags/{name}", s.instrument("/v1/tags/{name}", s.admin(s.handleTagVersions)))
		mux.Handle("DELETE /v1/tags/{name}", s.instrument("/v1/tags/{name}", s.admin(s.handleDeleteTag)))
	}
	if s.Traits != nil {
		mux.Handle("GET /v1/traits", s.instrument("/v1/traits", s.admin(s.handleTraitSchema)))
		mux.Handle("POST /v1/traits", s.instrument("/v1/traits", s.admin(s.handleDefineTrait)))
		mux.Handle("DELETE /v1/traits/{name}", s.instrument("/v1/traits/{name}", s.admin(s.handleDeleteTrait)))
		mux.Handle("GET /v1/analytics/nps", s.instrument("/v1/analytics/nps", s.admin(s.handleNPS)))
		mux.Handle("GET /v1/analytics/rfm/boundaries", s.instrument("/v1/analytics/rfm/boundaries", s.admin(s.handleRFMBoundaries)))
		mux.Handle("POST /v1/analytics/rfm/boundaries", s.instrument("/v1/analytics/rfm/boundaries", s.admin(s.handleRecomputeRFM)))
	}
}

// decodeBody reads a JSON object of at most 64 KB, refusing unknown fields
// so that a misspelt field is an error rather than ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return portrait.Errorf(portrait.EINVALID, "invalid JSON body: %v", err)
	}
	return nil
}

func (s *Server) handleTags(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	tags := maskTags(r, s.Tags.List())
	tax := s.Tags.Taxonomy()
	for i := range tax {
		for j := range tax[i].Categories {
			tax[i].Categories[j].Tags = maskTags(r, tax[i].Categories[j].Tags)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags, "taxonomy": tax, "backfill": s.Tags.Progress()})
}

// maskTags masks the literals of the rules (never nil): a rule such as
// id_number == "1101…" would otherwise show the value to whoever may read
// tags (segments_mask.go). The slice is the caller's own copy.
func maskTags(r *http.Request, tags []tag.Definition) []tag.Definition {
	if tags == nil {
		return []tag.Definition{}
	}
	m := newRuleMasker(r)
	for i := range tags {
		tags[i].Expression = m.mask(tags[i].Expression)
	}
	return tags
}

func (s *Server) handleDefineTag(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var d tag.Definition
	if err := decodeBody(r, &d); err != nil {
		Error(w, r, err)
		return
	}
	d.Version, d.Deleted = 0, false
	// A masked literal saved back would replace the real value: 400.
	if err := refuseMaskedRule(r, d.Expression); err != nil {
		Error(w, r, err)
		return
	}
	// A rule over a field the caller may not see would reveal it through
	// its members (as a segment would): 403 naming the field. The names
	// the rule reads in any spelling ($env["id_number"] too), not only
	// those the compiler resolves.
	if c, err := tag.Compile(d, s.Tags.Schema.Types()); err == nil {
		fields, _ := exprlit.Fields(d.Expression)
		if err := requireVisible(r, access.KindTrait, append(c.References(), fields...)...); err != nil {
			Error(w, r, err)
			return
		}
	}
	out, err := s.Tags.Define(r.Context(), d)
	if err != nil {
		Error(w, r, err)
		return
	}
	out.Expression = maskRule(r, out.Expression)
	writeJSON(w, http.StatusCreated, map[string]any{"tag": out, "backfill": s.Tags.Progress()})
}

func (s *Server) handleTagVersions(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	vs, err := s.Tags.Versions(r.Context(), r.PathValue("name"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "versions": maskTags(r, vs)})
}

func (s *Server) handleDeleteTag(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if err := s.Tags.Delete(r.Context(), r.PathValue("name")); err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("name"), "backfill": s.Tags.Progress()})
}

// tagsView is a profile's tags as clients see them: never null.
func tagsView(p *portrait.Profile) []portrait.ProfileTag {
	if p.Tags == nil {
		return []portrait.ProfileTag{}
	}
	return p.Tags
}
