package http

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
)

// ErasureService erases people, lifts suppressions and exports a person's
// data (erasure.Service).
type ErasureService interface {
	Erase(ctx context.Context, id, by, reason string) (*portrait.ErasureReceipt, error)
	EraseByIdentifier(ctx context.Context, id portrait.Identifier, by, reason string) (*portrait.ErasureReceipt, error)
	Unsuppress(ctx context.Context, id portrait.Identifier, by string) error
	Receipts(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error)
	Suppressions(ctx context.Context) ([]*portrait.Suppression, error)
	Export(ctx context.Context, id string) (*erasure.Export, error)
	SetConsent(ctx context.Context, profileID, purpose, state, by string) (*portrait.Trait, error)
	Consent(ctx context.Context, profileID string) (map[string]portrait.Trait, error)
}

var _ ErasureService = (*erasure.Service)(nil)

// mountErasure serves erasure, suppression and the portable export.
func (s *Server) mountErasure(mux *http.ServeMux) {
	if s.Erasure == nil {
		return
	}
	mux.Handle("DELETE /v1/profiles/{id}", s.instrument("/v1/profiles/{id}", s.admin(s.handleErase)))
	mux.Handle("DELETE /v1/profiles/lookup", s.instrument("/v1/profiles/lookup", s.admin(s.handleEraseByIdentifier)))
	mux.Handle("GET /v1/profiles/{id}/export", s.instrument("/v1/profiles/{id}/export", s.admin(s.handlePersonExport)))
	mux.Handle("GET /v1/erasures", s.instrument("/v1/erasures", s.admin(s.handleErasures)))
	mux.Handle("GET /v1/suppressions", s.instrument("/v1/suppressions", s.admin(s.handleSuppressions)))
	mux.Handle("POST /v1/suppressions/lift", s.instrument("/v1/suppressions/lift", s.admin(s.handleUnsuppress)))
	mux.Handle("GET /v1/profiles/{id}/consent", s.instrument("/v1/profiles/{id}/consent", s.admin(s.handleConsent)))
	mux.Handle("PUT /v1/profiles/{id}/consent", s.instrument("/v1/profiles/{id}/consent", s.admin(s.handleSetConsent)))
}

// handleErase erases a profile: 200 with the receipt.
func (s *Server) handleErase(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	rc, err := s.Erasure.Erase(r.Context(), r.PathValue("id"), k.Name, r.URL.Query().Get("reason"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

// handleEraseByIdentifier erases the profile owning ?type=&value=.
func (s *Server) handleEraseByIdentifier(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	q := r.URL.Query()
	typ, value := strings.TrimSpace(q.Get("type")), q.Get("value")
	if typ == "" || value == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "erasure by identifier needs type and value, e.g. ?type=email&value=x@example.com"))
		return
	}
	rc, err := s.Erasure.EraseByIdentifier(r.Context(), s.normalizeLookup(typ, value), k.Name, q.Get("reason"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

func (s *Server) handlePersonExport(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	out, err := s.Erasure.Export(r.Context(), r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="person-`+out.Profile.ID+`.json"`)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleErasures(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		Error(w, r, err)
		return
	}
	list, err := s.Erasure.Receipts(r.Context(), limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	if list == nil {
		list = []*portrait.ErasureReceipt{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"erasures": list})
}

func (s *Server) handleSuppressions(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	list, err := s.Erasure.Suppressions(r.Context())
	if err != nil {
		Error(w, r, err)
		return
	}
	if list == nil {
		list = []*portrait.Suppression{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"suppressions": list})
}

// handleUnsuppress lifts the suppression of {"type","value"}: events that
// carry it are collected again.
func (s *Server) handleUnsuppress(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var in portrait.Identifier
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&in); err != nil || strings.TrimSpace(in.Type) == "" || in.Value == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, `the body is {"type": "email", "value": "x@example.com"}`))
		return
	}
	if err := s.Erasure.Unsuppress(r.Context(), s.normalizeLookup(in.Type, in.Value), k.Name); err != nil {
		Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleConsent lists a profile's consent by purpose, with provenance.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	c, err := s.Erasure.Consent(r.Context(), r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"consent": c})
}

// handleSetConsent records {"purpose", "state"} through the log: 202, as
// the profile shows it once the event is applied.
func (s *Server) handleSetConsent(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var in struct {
		Purpose string `json:"purpose"`
		State   string `json:"state"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&in); err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, `the body is {"purpose": "marketing", "state": "granted|denied|withdrawn"}`))
		return
	}
	t, err := s.Erasure.SetConsent(r.Context(), r.PathValue("id"), in.Purpose, in.State, k.Name)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, t)
}
