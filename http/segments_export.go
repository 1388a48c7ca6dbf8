package http

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/segment"
)

// activationTypes are the identifier types an activation export can carry.
var activationTypes = []string{portrait.IDPhone, portrait.IDEmail}

// activationColumns reads identifiers=phone,email and hash=sha256 (or
// none) of an export for advertising platforms.
func activationColumns(r *http.Request) (types []string, hash bool, err error) {
	q := r.URL.Query()
	for _, t := range strings.Split(q.Get("identifiers"), ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || slices.Contains(types, t) {
			continue
		}
		if !slices.Contains(activationTypes, t) {
			return nil, false, portrait.Errorf(portrait.EINVALID, "identifiers lists phone and/or email, not %q", t)
		}
		types = append(types, t)
	}
	if len(types) == 0 {
		return nil, false, portrait.Errorf(portrait.EINVALID, "identifiers must list phone and/or email")
	}
	switch h := q.Get("hash"); h {
	case "", "none":
	case "sha256":
		hash = true
	default:
		return nil, false, portrait.Errorf(portrait.EINVALID, "hash must be sha256 or none, not %q", h)
	}
	return types, hash, nil
}

// exportable is the one place where a profile is filtered before it
// leaves the platform in an activation export or a delivery: a segment
// with a purpose exports only the profiles that consented to it, and so
// does an export or a delivery that declares its own purposes
// (?purpose=marketing, a delivery's purpose).
func (s *Server) exportable(_ context.Context, st *segment.Status, p *portrait.Profile, purposes []string) bool {
	if s.Segments.Consent == nil {
		return true
	}
	// Purposes holds the segment's own and those of the segments a set
	// operation is built on.
	for _, pus := range [][]string{st.Purposes, purposes} {
		for _, pu := range pus {
			if pu != "" && !s.Segments.Consent(pu, p.ID) {
				return false
			}
		}
	}
	return true
}

// activationRows are a segment's members as identifier rows for an
// advertising platform: one row per member holding at least one of the
// types (the first of each type, in the order the profile holds them),
// hashed as the platforms expect when hash is set. Members without any
// are skipped and counted.
//
// m masks them to a principal's clearance, the one masking function of
// every response: an identifier type the principal may not see is masked
// as in any export (138****8000), and left empty when hashed (the hash of
// a phone number is the phone number to anyone who tries them all). masked
// lists those types. A nil m masks nothing (a caller without a principal).
func (s *Server) activationRows(ctx context.Context, st *segment.Status, types []string, hash bool, m *access.Masker, purposes []string) (header []string, rows [][]string, skipped int, masked []string, err error) {
	hidden := make([]bool, len(types))
	for i, t := range types {
		if m != nil {
			if l, ok := m.C.Identifier(t); ok && !m.P.Sees(l) {
				hidden[i] = true
				masked = append(masked, t)
			}
		}
	}
	for _, t := range types {
		if hash {
			header = append(header, t+"_sha256")
		} else {
			header = append(header, t)
		}
	}
	for offset := 0; ; {
		ids, _, err := s.Segments.Members(st.ID, offset, 1000)
		if err != nil {
			return nil, nil, 0, nil, err
		}
		for _, id := range ids {
			p, err := s.Profiles.Profile(ctx, id)
			if portrait.ErrorCode(err) == portrait.ENOTFOUND {
				continue
			}
			if err != nil {
				return nil, nil, 0, nil, err
			}
			if !s.exportable(ctx, st, p, purposes) {
				skipped++
				continue
			}
			rec := make([]string, len(types))
			found := false
			for i, t := range types {
				for _, pid := range p.Identifiers {
					if pid.Type != t {
						continue
					}
					v := pid.Value
					if s.NormalizeID != nil {
						if nv, ok := s.NormalizeID(t, v); ok {
							v = nv
						}
					}
					switch {
					case hidden[i] && hash:
						continue
					case hidden[i]:
						rec[i], _ = m.Walk(map[string]any{"type": t, "value": segment.ActivationForm(t, v)}).(map[string]any)["value"].(string)
					case hash:
						rec[i] = segment.HashIdentifier(t, v)
					default:
						rec[i] = segment.ActivationForm(t, v)
					}
					found = true
					break
				}
			}
			if !found {
				skipped++
				continue
			}
			rows = append(rows, rec)
		}
		if len(ids) < 1000 {
			return header, rows, skipped, masked, nil
		}
		offset += len(ids)
	}
}

// ActivationRows is a delivery's activation file: the rows
// GET /v1/segments/{id}/export?identifiers=… gives, masked to the role and
// clearance recorded when the delivery was created (a scheduled run has no
// caller).
func (s *Server) ActivationRows(ctx context.Context, d *delivery.Delivery) (*delivery.Content, error) {
	st, err := s.Segments.Get(d.Segment)
	if err != nil {
		return nil, err
	}
	if s.Profiles == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "profile reads are not enabled on this server")
	}
	m := &access.Masker{C: s.classifier(), P: deliveryPrincipal(d)}
	header, rows, skipped, masked, err := s.activationRows(ctx, st, d.Identifiers, d.Hash, m, []string{d.Purpose})
	if err != nil {
		return nil, err
	}
	return &delivery.Content{Header: header, Rows: rows, Skipped: skipped, Masked: masked}, nil
}

// deliveryPrincipal is who a delivery runs as: its creator's role and
// clearance; public (fail closed, as access.PrincipalOf) when none was
// recorded.
func deliveryPrincipal(d *delivery.Delivery) access.Principal {
	return access.PrincipalOf(&portrait.Key{Name: d.CreatedBy, Role: d.Role, Clearance: d.Clearance})
}
