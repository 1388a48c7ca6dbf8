package http

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/segment"
)

// mountInsight serves audience insight and audiences for action (issue 14
// §4–5): comparing a segment with the population or another segment,
// segments from uploaded identifier lists, and lookalike expansion. Set
// operations are definitions (POST /v1/segments) and activation exports
// are GET /v1/segments/{id}/export?identifiers=… (segments_export.go).
func (s *Server) mountInsight(mux *http.ServeMux) {
	if s.Segments == nil {
		return
	}
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, k *portrait.Key)) {
		mux.Handle(pattern, s.instrument(pattern[strings.Index(pattern, " ")+1:], s.admin(fn)))
	}
	h("GET /v1/segments/{id}/insight", s.segmentInsight)
	h("POST /v1/segments/upload", s.uploadSegment)
	h("POST /v1/segments/{id}/lookalike", s.lookalikeSegment)
	if s.Deliveries != nil {
		s.mountDeliveries(h)
	}
}

// segmentInsight compares a segment's members with every profile
// (base=all, the default) or with another segment's (base=<segment id>).
func (s *Server) segmentInsight(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	target, err := s.Segments.MemberSet(r.PathValue("id"))
	if err != nil {
		Error(w, r, err)
		return
	}
	var base *roaring.Bitmap
	if b := strings.TrimSpace(r.URL.Query().Get("base")); b != "" && b != "all" {
		if base, err = s.Segments.MemberSet(b); err != nil {
			Error(w, r, err)
			return
		}
	}
	var opt segment.InsightOptions
	if f := r.URL.Query().Get("fdr"); f != "" {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0 && v < 1) {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "fdr must be a number between 0 and 1, e.g. 0.05"))
			return
		}
		opt.FDR = v
	}
	ins, err := s.Segments.Index.Insight(target, base, opt)
	if err != nil {
		Error(w, r, err)
		return
	}
	// Values of traits above the caller's clearance are not shown, not
	// even as a row of an insight: they are left out, as if not tested.
	visible := func(attr string) bool {
		name, ok := strings.CutPrefix(attr, "traits.")
		return !ok || canSee(r, access.KindTrait, name)
	}
	ins.Attributes = slices.DeleteFunc(ins.Attributes, func(a segment.AttributeInsight) bool { return !visible(a.Attribute) })
	ins.Numeric = slices.DeleteFunc(ins.Numeric, func(n segment.NumericInsight) bool { return !visible(n.Attribute) })
	writeJSON(w, http.StatusOK, ins)
}

// maxListUpload bounds an uploaded identifier list.
const maxListUpload = 64 << 20

// uploadSegment reads a CSV or XLSX list of identifiers (multipart field
// file, or the raw body with ?format=), matches each row to a profile and,
// unless dry_run=true, saves the matched profiles as a segment. The answer
// reports the match rate: matched, unmatched and invalid rows.
func (s *Server) uploadSegment(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if s.Profiles == nil {
		Error(w, r, portrait.Errorf(portrait.EUNAVAILABLE, "profile lookups are not enabled on this server"))
		return
	}
	q := r.URL.Query()
	name, typ, format, desc := q.Get("name"), q.Get("type"), q.Get("format"), q.Get("description")
	r.Body = http.MaxBytesReader(w, r.Body, maxListUpload)
	var body []byte
	if mr, err := r.MultipartReader(); err == nil {
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				Error(w, r, uploadErr(err))
				return
			}
			switch part.FormName() {
			case "file":
				if format == "" && strings.EqualFold(filepath.Ext(part.FileName()), ".xlsx") {
					format = "xlsx"
				}
				body, err = io.ReadAll(part)
			case "name":
				name, err = smallField(part)
			case "type":
				typ, err = smallField(part)
			case "format":
				format, err = smallField(part)
			case "description":
				desc, err = smallField(part)
			default:
				err = portrait.Errorf(portrait.EINVALID, "unexpected form field %q (want file, name, type, format, description)", part.FormName())
			}
			part.Close()
			if err != nil {
				Error(w, r, uploadErr(err))
				return
			}
		}
	} else {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			Error(w, r, uploadErr(err))
			return
		}
		body = b
	}
	if len(body) == 0 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "send the list as the multipart field file, or as the body with ?format=csv|xlsx"))
		return
	}
	if format == "" && bytes.HasPrefix(body, []byte("PK\x03\x04")) {
		format = "xlsx" // a zip: the workbook of an upload without a name
	}
	norm := s.NormalizeID
	if norm == nil {
		norm = func(_, v string) (string, bool) { v = strings.TrimSpace(v); return v, v != "" }
	}
	rows, rep, err := segment.ReadIdentifierList(bytes.NewReader(body), format, strings.ToLower(strings.TrimSpace(typ)), nil, norm)
	if err != nil {
		Error(w, r, err)
		return
	}
	seen := map[string]bool{}
	var ids []string
	for _, row := range rows {
		matched := false
		for _, id := range row.IDs {
			p, err := s.Profiles.ProfileByIdentifier(r.Context(), id)
			if portrait.ErrorCode(err) == portrait.ENOTFOUND {
				continue
			}
			if err != nil {
				Error(w, r, err)
				return
			}
			matched = true
			if !seen[p.ID] {
				seen[p.ID] = true
				ids = append(ids, p.ID)
			}
			break
		}
		if matched {
			rep.Matched++
		} else {
			rep.Unmatched++
		}
	}
	rep.Profiles = len(ids)
	if len(ids) == 0 && q.Get("dry_run") != "true" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "the list matched no profile (%d rows: %d unmatched, %d invalid); nothing to save", rep.Rows, rep.Unmatched, rep.Invalid))
		return
	}
	if rep.Rows > 0 {
		rep.MatchRate = float64(rep.Matched) / float64(rep.Rows)
	}
	if q.Get("dry_run") == "true" {
		writeJSON(w, http.StatusOK, map[string]any{"report": rep})
		return
	}
	if strings.TrimSpace(name) == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "name the segment: ?name= or the form field name (or dry_run=true to only match)"))
		return
	}
	st, err := s.Segments.Create(r.Context(), &segment.Definition{Name: name, Description: desc, Profiles: ids, Upload: rep})
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"segment": st, "report": rep})
}

// lookalikeRequest is the body of POST /v1/segments/{id}/lookalike.
type lookalikeRequest struct {
	// Size is how many profiles to save (0: evaluate only).
	Size int    `json:"size"`
	Name string `json:"name"`
	// Exclude overrides what the model may not read (default: what the
	// seed segment's definition reads), as "trait:<name>" or "tag:<name>".
	Exclude []string `json:"exclude"`
	HoldOut float64  `json:"hold_out"`
	Seed    uint64   `json:"seed"`
	// Purpose of the saved segment (default: the seed's own, so that an
	// audience grown from a marketing seed is a marketing audience).
	Purpose *string `json:"purpose"`
}

// lookalikeSegment fits a lookalike model on a seed segment and answers
// with its precision at each size and its top features; with size and
// name it saves the top size profiles (outside the seed) as a segment.
func (s *Server) lookalikeSegment(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var in lookalikeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "body must be JSON {\"size\", \"name\", \"exclude\", \"hold_out\", \"seed\", \"purpose\"}: %v", err))
		return
	}
	if in.Size < 0 || in.Size > segment.MaxListProfiles {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "size must be between 0 and %d", segment.MaxListProfiles))
		return
	}
	if in.Size > 0 && strings.TrimSpace(in.Name) == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "name the expanded segment to save it"))
		return
	}
	id := r.PathValue("id")
	// The model never reads a trait the caller may not see: it would
	// select by it, and a categorical trait's values name its features.
	hidden := func(name string) bool { return !canSee(r, access.KindTrait, name) }
	l, err := s.Segments.Lookalike(id, segment.LookalikeOptions{Exclude: in.Exclude, Hidden: hidden, HoldOut: in.HoldOut, Seed: in.Seed})
	if err != nil {
		Error(w, r, err)
		return
	}
	out := map[string]any{"model": l}
	if in.Size > 0 {
		// The expansion inherits the seed's purpose: grown from a
		// marketing seed, it is a marketing audience, and those who did
		// not consent (or opted out of automated decisions) are left out.
		// Found by the issue 15 probe: the saved segment had no purpose.
		purpose := ""
		if in.Purpose != nil {
			purpose = *in.Purpose
		} else if seed, err := s.Segments.Get(id); err == nil && seed.Definition != nil {
			purpose = seed.Definition.Purpose
			if purpose == "" && len(seed.Purposes) == 1 { // a set operation's operand's
				purpose = seed.Purposes[0]
			}
		}
		top := l.Top(in.Size)
		if len(top) == 0 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "the list matched no profile: nothing to save"))
			return
		}
		st, err := s.Segments.Create(r.Context(), &segment.Definition{Name: in.Name, Description: "lookalike of " + id, Profiles: top, Purpose: purpose})
		if err != nil {
			Error(w, r, err)
			return
		}
		out["segment"] = st
		writeJSON(w, http.StatusCreated, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// mountDeliveries serves scheduled segment deliveries: create, list,
// delete, run now, and the record of each delivery.
func (s *Server) mountDeliveries(h func(string, func(http.ResponseWriter, *http.Request, *portrait.Key))) {
	d := s.Deliveries
	h("POST /v1/segment-deliveries", func(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
		var in delivery.Delivery
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "body must be JSON {\"segment_id\", \"identifiers\", \"hash\", \"purpose\", \"target\": {\"kind\": \"file|webhook|nats\", ...}, \"every\"}: %v", err))
			return
		}
		if _, err := s.Segments.Get(in.Segment); err != nil {
			Error(w, r, err)
			return
		}
		// Every run is masked to the creator's role and clearance (a
		// scheduled run has no caller); the body cannot choose them.
		p := access.PrincipalOf(k)
		in.CreatedBy, in.Role, in.Clearance = p.Name, p.Role, p.Clearance.String()
		out, err := d.Create(r.Context(), &in)
		if err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, out)
	})
	h("GET /v1/segment-deliveries", func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		ds, err := d.Store.Deliveries(r.Context())
		if err != nil {
			Error(w, r, err)
			return
		}
		if ds == nil {
			ds = []*delivery.Delivery{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
	})
	h("DELETE /v1/segment-deliveries/{id}", func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		if err := d.Store.DeleteDelivery(r.Context(), r.PathValue("id")); err != nil {
			Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	find := func(r *http.Request) (*delivery.Delivery, error) {
		ds, err := d.Store.Deliveries(r.Context())
		if err != nil {
			return nil, err
		}
		for _, x := range ds {
			if x.ID == r.PathValue("id") {
				return x, nil
			}
		}
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no delivery %q", r.PathValue("id"))
	}
	h("POST /v1/segment-deliveries/{id}/run", func(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
		x, err := find(r)
		if err != nil {
			Error(w, r, err)
			return
		}
		// Run now by a caller of lower clearance than the creator: the
		// lower one (the run is the caller's act too).
		if p := access.PrincipalOf(k); p.Clearance < deliveryPrincipal(x).Clearance {
			lowered := *x
			lowered.Clearance = p.Clearance.String()
			x = &lowered
		}
		writeJSON(w, http.StatusOK, d.Deliver(r.Context(), x))
	})
	h("GET /v1/segment-deliveries/{id}/runs", func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		if _, err := find(r); err != nil {
			Error(w, r, err)
			return
		}
		runs, err := d.Store.DeliveryRuns(r.Context(), r.PathValue("id"), 100)
		if err != nil {
			Error(w, r, err)
			return
		}
		if runs == nil {
			runs = []*delivery.Run{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
	})
	// The file a run wrote to the drop, opened when it is sealed with the
	// data key, and masked to the caller's clearance like every export.
	h("GET /v1/segment-deliveries/{id}/runs/{run}/file", func(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
		if _, err := find(r); err != nil {
			Error(w, r, err)
			return
		}
		run, err := strconv.ParseInt(r.PathValue("run"), 10, 64)
		if err != nil {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "run must be a run id, not %q", r.PathValue("run")))
			return
		}
		name, data, err := d.File(r.Context(), r.PathValue("id"), run)
		if err != nil {
			Error(w, r, err)
			return
		}
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil || len(recs) == 0 {
			Error(w, r, portrait.Errorf(portrait.EINTERNAL, "the file of run %d is not the CSV a delivery writes", run))
			return
		}
		for _, rec := range recs[1:] {
			maskRow(r, recs[0], rec)
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		cw := csv.NewWriter(w)
		cw.WriteAll(recs)
	})
}
