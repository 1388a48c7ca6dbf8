package http

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
)

// ClassificationStore keeps the classification levels changed through the
// API (the store).
type ClassificationStore interface {
	SetClassification(ctx context.Context, kind, name, level string) error
}

// SealingStatus is what a store that seals at rest says about a name
// (both stores): whether a data key is configured, and how many of the
// name's stored values are not sealed (written before it became secret,
// or before the key), which the background pass (Server.Reseal) or
// `portrait keys rotate-data-key` seals.
type SealingStatus interface {
	SealsAtRest() bool
	InClear(ctx context.Context, kind, name string) (map[string]int, error)
}

// sealingStatus is the store's SealingStatus: Sealing when wired, else
// Classifications when it is the store itself (main wraps it to notify
// other nodes of changes, and the wrapper hides the store's methods).
func (s *Server) sealingStatus() (SealingStatus, bool) {
	if s.Sealing != nil {
		return s.Sealing, true
	}
	st, ok := s.Classifications.(SealingStatus)
	return st, ok
}

// mountKeys serves API tokens and write keys (POST/GET /v1/keys, DELETE
// /v1/keys/{id}) and the classification levels.
func (s *Server) mountKeys(mux *http.ServeMux) {
	mux.Handle("GET /v1/keys", s.instrument("/v1/keys", s.admin(s.handleListKeys)))
	mux.Handle("POST /v1/keys", s.instrument("/v1/keys", s.admin(s.handleCreateKey)))
	mux.Handle("DELETE /v1/keys/{id}", s.instrument("/v1/keys/{id}", s.admin(s.handleRevokeKey)))
	mux.Handle("GET /v1/keys/data-key", s.instrument("/v1/keys/data-key", s.admin(s.handleDataKey)))
	mux.Handle("GET /v1/classifications", s.instrument("/v1/classifications", s.admin(s.handleClassifications)))
	mux.Handle("PUT /v1/classifications/{kind}/{name}", s.instrument("/v1/classifications/{kind}/{name}", s.admin(s.handleSetClassification)))
	mux.Handle("GET /v1/classifications/{kind}/{name}", s.instrument("/v1/classifications/{kind}/{name}", s.admin(s.handleClassification)))
}

// DataKeyStatus is the store's view of the data keys (encryption at rest):
// the configured ones and, where cheap, what is still sealed with each.
type DataKeyStatus interface {
	DataKeys() (current string, ids []string)
	DataKeyUse(ctx context.Context) (map[string]map[string]int64, error)
}

// dataKeyNotCounted says what DataKeyUse leaves out, in the answer.
const dataKeyNotCounted = "event bodies, profile documents and the documents kept whole (quarantine, import summaries, dead letters, accounts) hold sealed values inside them and are not counted here (that would read every one): a rotation reseals them all, and its counts are in last_rotation"

// handleDataKey is the rotation status for auditors (keys:read: admin,
// auditor): the current data key, the keys configured, the key ids still
// referenced by stored values with their counts where counting is cheap,
// and the last rotation from the audit log (when, by whom, what it
// resealed, and old_versions_may_remain).
func (s *Server) handleDataKey(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	out := map[string]any{"sealing": false, "current": nil, "keys": []string{}, "referenced": map[string]any{},
		"not_configured": []string{}, "not_counted": dataKeyNotCounted, "last_rotation": nil}
	if s.DataKeys != nil {
		cur, ids := s.DataKeys.DataKeys()
		if cur != "" {
			out["sealing"], out["current"], out["keys"] = true, cur, ids
		}
		use, err := s.DataKeys.DataKeyUse(r.Context())
		if err != nil {
			Error(w, r, err)
			return
		}
		ref := map[string]any{}
		missing := []string{}
		for k, counts := range use {
			if k == "" {
				out["unkeyed_suppressions"] = counts["suppressions"]
				continue
			}
			ref[k] = counts
			if !slices.Contains(ids, k) {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		out["referenced"], out["not_configured"] = ref, missing
	}
	if s.Audit != nil {
		recs, err := s.Audit.ListAudit(r.Context(), portrait.AuditFilter{Action: "data_key.rotate", Newest: true, Limit: 1})
		if err != nil {
			Error(w, r, err)
			return
		}
		if len(recs) > 0 {
			rec := recs[0]
			last := map[string]any{"at": rec.At, "by": rec.Actor, "seq": rec.Seq, "new_key": rec.Target,
				"keys": rec.Detail["keys"], "resealed": rec.Detail["resealed"], "old_versions_may_remain": nil}
			if m, ok := rec.Detail["resealed"].(map[string]any); ok && m["old_versions_may_remain"] != nil {
				last["old_versions_may_remain"] = m["old_versions_may_remain"]
			}
			out["last_rotation"] = last
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	keys, err := s.Keys.ListKeys(r.Context())
	if err != nil {
		Error(w, r, err)
		return
	}
	if keys == nil {
		keys = []*portrait.Key{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys, "roles": access.Roles, "levels": access.LevelNames(), "families": access.Families})
}

type createKeyBody struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // "token" (default) or "write"
	Role      string    `json:"role"`
	Scopes    []string  `json:"scopes"`
	Clearance string    `json:"clearance"`
	Priority  int       `json:"priority"`
	ExpiresAt time.Time `json:"expires_at"`
	ExpiresIn string    `json:"expires_in"` // a Go duration, e.g. "720h"
}

// handleCreateKey creates an API token with a role and clearance (or a
// write key for a source) and returns its secret, once.
func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var in createKeyBody
	if err := decodeBody(r, &in); err != nil {
		Error(w, r, err)
		return
	}
	k := &portrait.Key{Name: strings.TrimSpace(in.Name), Priority: in.Priority, ExpiresAt: in.ExpiresAt}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "expires_in must be a positive duration such as \"720h\""))
			return
		}
		k.ExpiresAt = s.Now().Add(d)
	}
	prefix := "pat_"
	switch in.Kind {
	case "", "token", portrait.KeyAdmin:
		k.Kind = portrait.KeyAdmin
		if in.Role == "" {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "a token needs a role: one of %s or custom", strings.Join(access.Roles, ", ")))
			return
		}
		scopes, err := access.CheckRole(in.Role, in.Scopes)
		if err != nil {
			Error(w, r, err)
			return
		}
		level := access.DefaultClearance(in.Role)
		if in.Clearance != "" {
			if level, err = access.ParseLevel(in.Clearance); err != nil {
				Error(w, r, err)
				return
			}
		}
		k.Role, k.Scopes, k.Clearance = in.Role, scopes, level.String()
	case portrait.KeyWrite:
		if in.Role != "" || in.Clearance != "" || len(in.Scopes) > 0 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "a write key only sends events: it takes no role, scopes or clearance"))
			return
		}
		k.Kind, prefix = portrait.KeyWrite, "pwk_"
	default:
		Error(w, r, portrait.Errorf(portrait.EINVALID, "kind must be token or write"))
		return
	}
	if k.Name == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "a key needs a name"))
		return
	}
	secret := access.NewSecret(prefix)
	if err := s.Keys.CreateKey(r.Context(), k, secret); err != nil {
		Error(w, r, err)
		return
	}
	if err := s.recordChange(r, "key.create", "key/"+strconv.FormatInt(k.ID, 10), map[string]any{
		"name": k.Name, "kind": k.Kind, "role": k.Role, "scopes": k.Scopes, "clearance": k.Clearance}); err != nil {
		// The key exists; say it was made even though the record failed.
		s.Log.Error("key created without an audit record", "id", k.ID, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"key": k, "secret": secret,
		"note": "the secret is shown only now: Portrait keeps only a salted hash of it"})
}

// handleRevokeKey revokes a key: it stops working at once here (and within
// the key cache period in other processes) and its console sessions end.
func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "the key id must be a positive integer"))
		return
	}
	if err := s.Keys.RevokeKey(r.Context(), id); err != nil {
		Error(w, r, err)
		return
	}
	s.forgetKey(id)
	s.recordChange(r, "key.revoke", "key/"+strconv.FormatInt(id, 10), nil)
	writeJSON(w, http.StatusOK, map[string]any{"revoked": id})
}

// knownIdentifiers are listed with their levels even before data uses them.
var knownIdentifiers = []string{portrait.IDUserID, portrait.IDAnonymousID, portrait.IDEmail, portrait.IDPhone, "id_number", "address"}

type levelRow struct {
	Name  string `json:"name"`
	Level string `json:"level"`
	Zh    string `json:"level_zh"`
}

func (s *Server) handleClassifications(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	c := s.classifier()
	traitRows := []levelRow{}
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if l, ok := c.Trait(name); ok {
			traitRows = append(traitRows, levelRow{name, l.String(), access.LevelNamesZh[l.String()]})
		}
	}
	if s.Traits != nil && s.Traits.Enricher != nil {
		for _, f := range s.Traits.Enricher.Schema.Fields() {
			add(f.Name)
		}
	}
	idRows := []levelRow{}
	ids := append([]string(nil), knownIdentifiers...)
	for _, st := range c.Settings() {
		if st.Kind == access.KindTrait {
			add(st.Name)
		} else {
			ids = append(ids, st.Name)
		}
	}
	sort.Strings(ids)
	for i, n := range ids {
		if i > 0 && ids[i-1] == n {
			continue
		}
		if l, ok := c.Identifier(n); ok {
			idRows = append(idRows, levelRow{n, l.String(), access.LevelNamesZh[l.String()]})
		}
	}
	sort.Slice(traitRows, func(i, j int) bool { return traitRows[i].Name < traitRows[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"levels": access.LevelNames(), "traits": traitRows, "identifiers": idRows, "settings": c.Settings()})
}

// handleSetClassification changes the level of a trait or identifier type;
// it applies to every response from the next request on, and is audited
// with the level before and after.
func (s *Server) handleSetClassification(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	kind, name := r.PathValue("kind"), strings.TrimSpace(r.PathValue("name"))
	if kind != access.KindTrait && kind != access.KindIdentifier {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "kind must be trait or identifier"))
		return
	}
	if name == "" || len(name) > 128 {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "a name of 1 to 128 characters is required"))
		return
	}
	var in struct {
		Level string `json:"level"`
	}
	if err := decodeBody(r, &in); err != nil {
		Error(w, r, err)
		return
	}
	l, err := access.ParseLevel(in.Level)
	if err != nil {
		Error(w, r, err)
		return
	}
	if s.Classifications == nil {
		Error(w, r, portrait.Errorf(portrait.EUNAVAILABLE, "classification levels cannot be changed on this server"))
		return
	}
	c := s.classifier()
	var before access.Level
	var known bool
	if kind == access.KindTrait {
		before, known = c.Trait(name)
	} else {
		before, known = c.Identifier(name)
	}
	if err := s.Classifications.SetClassification(r.Context(), kind, name, l.String()); err != nil {
		Error(w, r, err)
		return
	}
	c.Set(kind, name, l)
	detail := map[string]any{"kind": kind, "name": name, "level": l.String()}
	if known {
		detail["before"] = before.String()
	}
	s.recordChange(r, "classification.change", kind+"/"+name, detail)
	out := map[string]any{"kind": kind, "name": name, "level": l.String(), "level_zh": access.LevelNamesZh[l.String()]}
	if st, ok := s.sealingStatus(); ok && l == access.Secret && st.SealsAtRest() && (!known || before != access.Secret) {
		// Said at the moment it matters: the values stored before are
		// sealed by a background pass, or, without one, by the rotation.
		if s.Reseal != nil {
			if err := s.Reseal(r.Context(), kind, name); err != nil {
				Error(w, r, err)
				return
			}
			out["sealing"] = "values written from now on are sealed at rest; values stored before are being sealed in the background: GET /v1/classifications/" + kind + "/" + name + " counts those still in clear"
		} else {
			out["sealing"] = "values written from now on are sealed at rest; values stored before stay as they are until `portrait keys rotate-data-key` seals them: GET /v1/classifications/" + kind + "/" + name + " counts them"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleClassification is one name's level and, on a store that seals at
// rest, how many of its stored values are not sealed.
func (s *Server) handleClassification(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	kind, name := r.PathValue("kind"), strings.TrimSpace(r.PathValue("name"))
	if kind != access.KindTrait && kind != access.KindIdentifier {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "kind must be trait or identifier"))
		return
	}
	c := s.classifier()
	var l access.Level
	var known bool
	if kind == access.KindTrait {
		l, known = c.Trait(name)
	} else {
		l, known = c.Identifier(name)
	}
	out := map[string]any{"kind": kind, "name": name, "level": l.String(), "level_zh": access.LevelNamesZh[l.String()], "sealed_at_rest": false}
	if !known {
		// not classified (yet: an observed trait is typed when the
		// processor first sees it): the masker leaves it alone
		out["level"], out["level_zh"] = "unclassified", ""
	}
	if st, ok := s.sealingStatus(); ok && known {
		sealing := l == access.Secret && st.SealsAtRest()
		out["sealed_at_rest"] = sealing
		if sealing {
			n, err := st.InClear(r.Context(), kind, name)
			if err != nil {
				Error(w, r, err)
				return
			}
			total := 0
			for _, v := range n {
				total += v
			}
			out["in_clear"], out["in_clear_total"] = n, total
			switch {
			case total > 0 && s.Reseal != nil:
				out["remedy"] = "they are being sealed in the background (a level raised to secret schedules it; a restart resumes it); `portrait keys rotate-data-key` on a stopped server also seals them"
			case total > 0:
				out["remedy"] = "stop the server and run `portrait keys rotate-data-key`: it seals them"
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
