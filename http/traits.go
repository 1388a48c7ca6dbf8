package http

import (
	"net/http"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/exprlit"
	"github.com/portrait-cdp/portrait/traits"
)

func (s *Server) handleTraitSchema(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	en := s.Traits.Enricher
	defs := en.Definitions()
	m := newRuleMasker(r)
	for i := range defs {
		defs[i].Filter = m.mask(defs[i].Filter)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"traits": en.Schema.Fields(), "definitions": defs, "conflicts": en.Schema.Conflicts(),
		"dimensions": traits.Dimensions, "classifications": traits.Classifications, "config": en.Config(),
		"backfill": s.Traits.Progress(),
	})
}

func (s *Server) handleDefineTrait(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var d traits.Definition
	if err := decodeBody(r, &d); err != nil {
		Error(w, r, err)
		return
	}
	// A masked literal saved back would replace the real value: 400.
	if err := refuseMaskedRule(r, d.Filter); err != nil {
		Error(w, r, err)
		return
	}
	// A computed trait over a property the caller may not see would copy
	// or reveal it: 403 naming the field (the filter's names in any
	// spelling, properties.contact.phone's phone too).
	reads := d.Reads()
	if strings.TrimSpace(d.Filter) != "" {
		fields, _ := exprlit.Fields(d.Filter)
		reads = append(reads, fields...)
	}
	if err := requireVisible(r, access.KindTrait, reads...); err != nil {
		Error(w, r, err)
		return
	}
	out, err := s.Traits.Define(r.Context(), d)
	if err != nil {
		Error(w, r, err)
		return
	}
	out.Filter = maskRule(r, out.Filter)
	writeJSON(w, http.StatusCreated, map[string]any{"trait": out,
		"note": "the trait accumulates from events processed from now on; run `portrait rebuild` to compute it over the history"})
}

func (s *Server) handleDeleteTrait(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if err := s.Traits.Delete(r.Context(), r.PathValue("name")); err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("name")})
}

func (s *Server) handleRFMBoundaries(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	writeJSON(w, http.StatusOK, rfmBoundaries(r, s.Traits.Enricher.Boundaries()))
}

// rfmBoundaries is the answer with RFM boundaries. M's are quintiles of
// revenue, each the revenue of one customer (of five customers, each
// boundary is someone's): for a caller who may not see revenue they are
// left out, with metric_masked saying why, as a breakdown's hidden metric.
func rfmBoundaries(r *http.Request, b *traits.Boundaries) map[string]any {
	err := requireVisible(r, access.KindTrait, "revenue")
	if b == nil || err == nil {
		return map[string]any{"boundaries": b}
	}
	return map[string]any{"boundaries": map[string]any{"as_of": b.AsOf, "customers": b.Customers, "r": b.R, "f": b.F},
		"metric_masked": err.Error()}
}

func (s *Server) handleRecomputeRFM(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	b, err := s.Traits.RecomputeRFM(r.Context())
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rfmBoundaries(r, b))
}
