package http

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
)

// mountAccounts serves corporate accounts (issue 16): CRUD, lookup and
// search, the ICP ranking, the buying committee, verification, needs,
// merges, target lists and the industry classification.
func (s *Server) mountAccounts(mux *http.ServeMux) {
	if s.Accounts == nil {
		return
	}
	mux.Handle("GET /v1/accounts", s.instrument("/v1/accounts", s.admin(s.handleAccounts)))
	mux.Handle("POST /v1/accounts", s.instrument("/v1/accounts", s.admin(s.handleCreateAccount)))
	mux.Handle("GET /v1/accounts/lookup", s.instrument("/v1/accounts/lookup", s.admin(s.handleAccountLookup)))
	mux.Handle("GET /v1/accounts/lookalike", s.instrument("/v1/accounts/lookalike", s.admin(s.handleAccountLookalike)))
	mux.Handle("GET /v1/accounts/export", s.instrument("/v1/accounts/export", s.admin(s.handleAccountExport)))
	mux.Handle("POST /v1/accounts/targets", s.instrument("/v1/accounts/targets", s.admin(s.handleAccountTargets)))
	mux.Handle("GET /v1/accounts/icp", s.instrument("/v1/accounts/icp", s.admin(s.handleICP)))
	mux.Handle("PUT /v1/accounts/icp", s.instrument("/v1/accounts/icp", s.admin(s.handleSetICP)))
	mux.Handle("POST /v1/accounts/icp/train", s.instrument("/v1/accounts/icp/train", s.admin(s.handleTrainICP)))
	mux.Handle("GET /v1/accounts/merges", s.instrument("/v1/accounts/merges", s.admin(s.handleAccountMerges)))
	mux.Handle("GET /v1/accounts/{id}", s.instrument("/v1/accounts/{id}", s.admin(s.handleAccount)))
	mux.Handle("PATCH /v1/accounts/{id}", s.instrument("/v1/accounts/{id}", s.admin(s.handlePatchAccount)))
	mux.Handle("DELETE /v1/accounts/{id}", s.instrument("/v1/accounts/{id}", s.admin(s.handleDeleteAccount)))
	mux.Handle("GET /v1/accounts/{id}/people", s.instrument("/v1/accounts/{id}/people", s.admin(s.handleAccountPeople)))
	mux.Handle("PUT /v1/accounts/{id}/people/{person}", s.instrument("/v1/accounts/{id}/people/{person}", s.admin(s.handleAccountRole)))
	mux.Handle("POST /v1/accounts/{id}/people/{person}/verify", s.instrument("/v1/accounts/{id}/people/{person}/verify", s.admin(s.handleVerifyRole)))
	mux.Handle("POST /v1/accounts/{id}/verify", s.instrument("/v1/accounts/{id}/verify", s.admin(s.handleVerifyTrait)))
	mux.Handle("PUT /v1/accounts/{id}/parent", s.instrument("/v1/accounts/{id}/parent", s.admin(s.handleAccountParent)))
	mux.Handle("POST /v1/accounts/{id}/needs", s.instrument("/v1/accounts/{id}/needs", s.admin(s.handleAccountNeed)))
	mux.Handle("POST /v1/accounts/{id}/unmerge", s.instrument("/v1/accounts/{id}/unmerge", s.admin(s.handleAccountUnmerge)))
	mux.Handle("GET /v1/people/{person}/accounts", s.instrument("/v1/people/{person}/accounts", s.admin(s.handlePersonAccounts)))
	mux.Handle("GET /v1/industries", s.instrument("/v1/industries", s.admin(s.handleIndustries)))
}

// by is who makes a change: the body's "by" (a salesperson's name), else
// the key's name.
func by(body string, k *portrait.Key) string {
	if strings.TrimSpace(body) != "" {
		return body
	}
	if k != nil {
		return k.Name
	}
	return ""
}

func accountFilter(r *http.Request) (account.Filter, error) {
	q := r.URL.Query()
	f := account.Filter{Query: q.Get("q"), Industry: q.Get("industry"), Province: q.Get("province"), Gaps: q["gap"]}
	if v := q.Get("min_icp"); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return f, portrait.Errorf(portrait.EINVALID, "min_icp must be a number")
		}
		f.MinICP = x
	}
	if v := q.Get("flagged"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, portrait.Errorf(portrait.EINVALID, "flagged must be true or false")
		}
		f.Flagged = &b
	}
	return f, nil
}

func (s *Server) handleAccounts(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	f, err := accountFilter(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	offset, err := queryInt(r, "offset", 0)
	if err != nil {
		Error(w, r, err)
		return
	}
	if limit == 0 {
		limit = 50 // scores are explained per row: never all 100,000 at once
	}
	rows, total, err := s.Accounts.Model.List(f, r.URL.Query().Get("sort"), offset, min(limit, 1000))
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": rows, "total": total, "loaded": s.Accounts.Loaded()})
}

// accountBody is what POST and PATCH take: keys (or their shortcuts),
// traits, and how sure the values are.
type accountBody struct {
	Keys      []account.Key  `json:"keys"`
	USCC      string         `json:"uscc"`
	Domain    string         `json:"domain"`
	CRMID     string         `json:"crm_id"`
	GroupID   string         `json:"group_id"`
	Traits    map[string]any `json:"traits"`
	Status    string         `json:"status"`
	Reasoning string         `json:"reasoning"`
	Parent    string         `json:"parent"`
	By        string         `json:"by"`
}

func (b *accountBody) edit(id string, k *portrait.Key) *account.Edit {
	keys := b.Keys
	for _, x := range []account.Key{{Type: account.KeyUSCC, Value: b.USCC}, {Type: account.KeyDomain, Value: b.Domain}, {Type: account.KeyCRM, Value: b.CRMID}, {Type: account.KeyGroup, Value: b.GroupID}} {
		if x.Value != "" {
			keys = append(keys, x)
		}
	}
	return &account.Edit{Kind: account.EditUpsert, Account: id, Keys: keys, Traits: b.Traits, Status: b.Status, Reasoning: b.Reasoning, By: by(b.By, k)}
}

func (s *Server) handleCreateAccount(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b accountBody
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	ed := b.edit("", k)
	if err := s.Accounts.Edit(r.Context(), ed); err != nil {
		Error(w, r, err)
		return
	}
	if b.Parent != "" {
		if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditParent, Account: ed.Account, Parent: b.Parent, By: ed.By}); err != nil {
			Error(w, r, err)
			return
		}
	}
	v, _ := s.Accounts.Model.Get(ed.Account)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) handlePatchAccount(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b accountBody
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	if len(b.Traits) > 0 || len(b.Keys) > 0 || b.USCC != "" || b.Domain != "" || b.CRMID != "" || b.GroupID != "" {
		if err := s.Accounts.Edit(r.Context(), b.edit(id, k)); err != nil {
			Error(w, r, err)
			return
		}
	}
	if b.Parent != "" {
		if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditParent, Account: id, Parent: b.Parent, By: by(b.By, k)}); err != nil {
			Error(w, r, err)
			return
		}
	}
	s.writeAccount(w, r, id)
}

func (s *Server) writeAccount(w http.ResponseWriter, r *http.Request, id string) {
	v, ok := s.Accounts.Model.Get(id)
	if !ok {
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "account %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	s.writeAccount(w, r, r.PathValue("id"))
}

func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditDelete, Account: r.PathValue("id"), By: by(r.URL.Query().Get("by"), k)}); err != nil {
		Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAccountLookup(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	typ, value := q.Get("type"), q.Get("value")
	if typ == "" || value == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "type (uscc, domain, crm, group) and value are required"))
		return
	}
	id, ok := s.Accounts.Model.Lookup(typ, value)
	if !ok {
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no account with that %s", typ))
		return
	}
	s.writeAccount(w, r, id)
}

// personView is a key person with their profile, when the person is known.
type personView struct {
	account.Person
	ProfileID string `json:"profile_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
}

func (s *Server) people(ctx context.Context, ps []account.Person) []personView {
	out := make([]personView, len(ps))
	for i, p := range ps {
		out[i].Person = p
		typ, val, ok := strings.Cut(p.Person, ":")
		if !ok || s.Profiles == nil {
			continue
		}
		pr, err := s.Profiles.ProfileByIdentifier(ctx, portrait.Identifier{Type: typ, Value: val})
		if err != nil || pr == nil {
			continue
		}
		out[i].ProfileID = pr.ID
		if t, ok := pr.Traits["name"]; ok {
			out[i].Name = fmt.Sprint(t.Value)
		}
		if t, ok := pr.Traits["email"]; ok {
			out[i].Email = fmt.Sprint(t.Value)
		}
	}
	return out
}

func (s *Server) handleAccountPeople(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	ps, ok := s.Accounts.Model.People(r.PathValue("id"))
	if !ok {
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "account %q not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": s.people(r.Context(), ps), "levels": account.Levels, "level_names": account.LevelNames, "level_focus": account.LevelFocus})
}

type roleBody struct {
	Role        string `json:"role"`
	Level       string `json:"level"`
	Title       string `json:"title"`
	Opportunity string `json:"opportunity"`
	Status      string `json:"status"`
	Reasoning   string `json:"reasoning"`
	By          string `json:"by"`
}

func (s *Server) roleEdit(w http.ResponseWriter, r *http.Request, k *portrait.Key, kind string) {
	var b roleBody
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	ed := &account.Edit{Kind: kind, Account: r.PathValue("id"), Person: r.PathValue("person"), Role: b.Role, Level: b.Level, Title: b.Title,
		Opportunity: b.Opportunity, Status: b.Status, Reasoning: b.Reasoning, By: by(b.By, k)}
	if err := s.Accounts.Edit(r.Context(), ed); err != nil {
		Error(w, r, err)
		return
	}
	ps, _ := s.Accounts.Model.People(ed.Account)
	for _, p := range s.people(r.Context(), ps) {
		if p.Person.Person == ed.Person {
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "%s is not on account %s", ed.Person, ed.Account))
}

func (s *Server) handleAccountRole(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	s.roleEdit(w, r, k, account.EditRole)
}

func (s *Server) handleVerifyRole(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	s.roleEdit(w, r, k, account.EditVerifyRole)
}

func (s *Server) handleVerifyTrait(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b struct {
		Trait     string `json:"trait"`
		Value     any    `json:"value"`
		Reasoning string `json:"reasoning"`
		By        string `json:"by"`
	}
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	if b.Trait == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "trait is required"))
		return
	}
	id := r.PathValue("id")
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditVerify, Account: id, Trait: b.Trait, Value: b.Value, Reasoning: b.Reasoning, By: by(b.By, k)}); err != nil {
		Error(w, r, err)
		return
	}
	s.writeAccount(w, r, id)
}

func (s *Server) handleAccountParent(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b struct {
		Parent string `json:"parent"`
		By     string `json:"by"`
	}
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditParent, Account: id, Parent: b.Parent, By: by(b.By, k)}); err != nil {
		Error(w, r, err)
		return
	}
	s.writeAccount(w, r, id)
}

func (s *Server) handleAccountNeed(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b struct {
		account.Need
		By string `json:"by"`
	}
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	n := b.Need
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditNeed, Account: id, Need: &n, By: by(b.By, k)}); err != nil {
		Error(w, r, err)
		return
	}
	s.writeAccount(w, r, id)
}

func (s *Server) handleAccountMerges(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	writeJSON(w, http.StatusOK, map[string]any{"merges": s.Accounts.Model.Merges()})
}

func (s *Server) handleAccountUnmerge(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var b struct {
		Other string `json:"other"`
		By    string `json:"by"`
	}
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditUnmerge, Account: id, Other: b.Other, By: by(b.By, k)}); err != nil {
		Error(w, r, err)
		return
	}
	s.writeAccount(w, r, id)
}

func (s *Server) handlePersonAccounts(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	pk := r.PathValue("person")
	roles := s.Accounts.Model.AccountsOf(pk)
	out := []map[string]any{}
	for id, role := range roles {
		v, ok := s.Accounts.Model.Get(id)
		if !ok {
			continue
		}
		out = append(out, map[string]any{"account": id, "name": v.Name, "role": role, "icp_score": v.ICP})
	}
	writeJSON(w, http.StatusOK, map[string]any{"person": pk, "accounts": out})
}

// handleAccountLookalike finds the accounts most like seed ones:
// ?seed=won (the default: the accounts with a won opportunity, the best
// current customers) or a comma-separated list of account ids or keys
// (type:value, as "group:corp-0001"); limit (default 20, at most 1000);
// hold_out (default 0.2) and rand (the hold-out's seed). The answer holds
// the accounts (seeds excluded) with their score and reasons, and the
// held-out evaluation: AUC, precision at k and the curve.
func (s *Server) handleAccountLookalike(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 20)
	if err != nil {
		Error(w, r, err)
		return
	}
	rnd, err := queryInt(r, "rand", 1)
	if err != nil {
		Error(w, r, err)
		return
	}
	hold := 0.0
	if v := q.Get("hold_out"); v != "" {
		if hold, err = strconv.ParseFloat(v, 64); err != nil || hold <= 0 || hold >= 1 {
			Error(w, r, portrait.Errorf(portrait.EINVALID, "hold_out must be a share between 0 and 1, not %q", v))
			return
		}
	}
	m := s.Accounts.Model
	seed := strings.TrimSpace(q.Get("seed"))
	var seeds []string
	switch seed {
	case "", "won":
		seed = "won"
		seeds = m.WonAccounts()
	default:
		for _, x := range strings.Split(seed, ",") {
			x = strings.TrimSpace(x)
			if typ, val, ok := strings.Cut(x, ":"); ok {
				id, found := m.Lookup(typ, val)
				if !found {
					Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no account has the key %s", x))
					return
				}
				x = id
			}
			if x != "" {
				seeds = append(seeds, x)
			}
		}
	}
	l, err := m.Lookalike(account.LookalikeOptions{Seeds: seeds, Limit: limit, HoldOut: hold, Seed: uint64(rnd)})
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seed": seed, "lookalike": l, "loaded": s.Accounts.Loaded()})
}

func (s *Server) handleICP(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	writeJSON(w, http.StatusOK, map[string]any{"scorecard": s.Accounts.Model.Scorecard(), "learned": s.Accounts.Model.Report()})
}

func (s *Server) handleSetICP(w http.ResponseWriter, r *http.Request, k *portrait.Key) {
	var c account.Scorecard
	if err := decodeBody(r, &c); err != nil {
		Error(w, r, err)
		return
	}
	if err := s.Accounts.Edit(r.Context(), &account.Edit{Kind: account.EditScorecard, Scorecard: &c, By: by("", k)}); err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"scorecard": &c})
}

func (s *Server) handleTrainICP(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	rep, err := s.Accounts.Model.Train(1)
	if err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"learned": rep})
}

func (s *Server) handleIndustries(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	writeJSON(w, http.StatusOK, map[string]any{"standard": "GB/T 4754-2017", "industries": account.Industries()})
}

// targetRows are the accounts of a target list and their people: one line
// per key person (an account without people gets one line).
func (s *Server) targetRows(ctx context.Context, f account.Filter, limit int) ([][]string, []account.Row, error) {
	rows, _, err := s.Accounts.Model.List(f, account.SortICP, 0, limit)
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for _, a := range rows {
		base := []string{a.ID, a.Name, strconv.FormatFloat(a.ICP, 'f', 1, 64), a.Industry, a.Province, strings.Join(a.Gaps, "; ")}
		flag := ""
		if a.Flag != nil {
			flag = strings.Join(a.Flag.Reasons, "; ")
		}
		base = append(base, flag)
		ps, _ := s.Accounts.Model.People(a.ID)
		if len(ps) == 0 {
			out = append(out, append(base, "", "", "", "", ""))
			continue
		}
		for _, p := range s.people(ctx, ps) {
			role, level, status := "", "", ""
			if p.Role != nil {
				role, level, status = p.Role.Role, account.LevelNames[p.Role.Level], p.Role.Status
			}
			out = append(out, append(append([]string{}, base...), p.Person.Person, p.Name, role, level, status))
		}
	}
	return out, rows, nil
}

func (s *Server) handleAccountExport(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	f, err := accountFilter(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 1000)
	if err != nil {
		Error(w, r, err)
		return
	}
	recs, _, err := s.targetRows(r.Context(), f, limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="accounts.csv"`)
	io.WriteString(w, "\ufeff") // Excel in a Chinese locale reads UTF-8 only with the mark
	cw := csv.NewWriter(w)
	cw.Write([]string{"account_id", "account", "icp_score", "industry", "province", "coverage_gaps", "flag", "person", "name", "buying_role", "level", "role_status"})
	cw.WriteAll(recs)
}

// handleAccountTargets turns a target list into something segments can
// use: each key person of the matching accounts gets the traits
// target_list (the list's name), target_account and target_icp_score, as
// events from the system source analytics/accounts — so a segment
// `traits.target_list == "Q3 华东"` holds exactly the list's people, and the list
// is replayed with the log like every other trait.
func (s *Server) handleAccountTargets(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	var b struct {
		Name     string   `json:"name"`
		Query    string   `json:"q"`
		Industry string   `json:"industry"`
		Province string   `json:"province"`
		MinICP   float64  `json:"min_icp"`
		Gaps     []string `json:"gaps"`
		Limit    int      `json:"limit"`
	}
	if err := decodeBody(r, &b); err != nil {
		Error(w, r, err)
		return
	}
	if strings.TrimSpace(b.Name) == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "name is required"))
		return
	}
	if b.Limit <= 0 || b.Limit > 5000 {
		b.Limit = 500
	}
	unflagged := false
	f := account.Filter{Query: b.Query, Industry: b.Industry, Province: b.Province, MinICP: b.MinICP, Gaps: b.Gaps, Flagged: &unflagged}
	rows, _, err := s.Accounts.Model.List(f, account.SortICP, 0, b.Limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	now := s.Now().UTC()
	var evs []*portrait.Event
	people := 0
	for _, a := range rows {
		ps, _ := s.Accounts.Model.People(a.ID)
		for _, p := range ps {
			typ, val, _ := strings.Cut(p.Person, ":")
			e := &portrait.Event{MessageID: fmt.Sprintf("target-%s-%s-%s-%d", b.Name, a.ID, p.Person, now.UnixMilli()), Type: portrait.EventIdentify,
				Source: portrait.SourceAnalyticsPrefix + "accounts", Timestamp: now, ReceivedAt: now}
			switch typ {
			case "user_id":
				e.UserID = val
			case "anonymous_id":
				e.AnonymousID = val
			default:
				continue
			}
			e.Traits = []byte(fmt.Sprintf(`{"target_list":%q,"target_account":%q,"target_icp_score":%g}`, b.Name, a.Name, a.ICP))
			evs = append(evs, e)
			people++
		}
	}
	if len(evs) > 0 {
		if _, err := s.Events.Append(r.Context(), evs, nil); err != nil {
			Error(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": b.Name, "accounts": len(rows), "people": people,
		"segment_expression": fmt.Sprintf(`traits.target_list == %q`, b.Name), "at": now.Format(time.RFC3339)})
}
