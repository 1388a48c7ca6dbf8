package account

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Coverage says how well the buying committee is known.
type Coverage struct {
	// Roles: each buying role's best status (verified, reported,
	// presumed) or "missing".
	Roles map[string]string `json:"roles"`
	// Levels: contacts per level.
	Levels map[string]int `json:"levels"`
	// Score: 0..1, a verified or reported role counts 1, a presumed one ½,
	// a missing one 0.
	Score float64  `json:"score"`
	Gaps  []string `json:"gaps"`
	// GapCodes says each gap of Gaps (same order) as a code and its
	// parameters, for a reader in another language: no_role {role},
	// role_presumed {role}, no_level_contact {level}.
	GapCodes []Gap `json:"gap_codes"`
}

// Gap is one coverage gap as a code and its parameters.
type Gap struct {
	Code   string            `json:"code"`
	Params map[string]string `json:"params"`
}

// Rollup sums an account and everything below it in the hierarchy.
type Rollup struct {
	Accounts   int     `json:"accounts"`
	Revenue    float64 `json:"revenue"`
	Employees  float64 `json:"employees"`
	Engagement float64 `json:"engagement"`
	Won        int     `json:"won"`
	Depth      int     `json:"depth"` // levels below the account
}

// Person is a key person as shown on an account.
type Person struct {
	Person        string          `json:"person"`
	Via           string          `json:"via"`
	Role          *Role           `json:"role,omitempty"`
	LevelName     string          `json:"level_name,omitempty"`
	Focus         string          `json:"focus,omitempty"`
	Opportunities map[string]Role `json:"opportunities,omitempty"`
	Engagement    float64         `json:"engagement"`
	Activities    map[string]int  `json:"activities,omitempty"`
	LastActivity  *time.Time      `json:"last_activity,omitempty"`
	Needs         []*Need         `json:"needs,omitempty"`
	// Accounts: every account the person is linked to (a consultant on
	// two committees, a group executive on the subsidiaries').
	Accounts []string `json:"accounts"`
}

// View is an account as the API shows it.
type View struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Keys        []Key               `json:"keys"`
	Traits      map[string]*Trait   `json:"traits"`
	TraitGroups map[string][]string `json:"trait_groups"`
	Industry    []Industry          `json:"industry,omitempty"`
	Parent      string              `json:"parent,omitempty"`
	Children    []string            `json:"children,omitempty"`
	Rollup      Rollup              `json:"rollup"`
	Coverage    Coverage            `json:"coverage"`
	Engagement  float64             `json:"engagement"`
	// EngagementByRole sums the people's engagement by buying role.
	EngagementByRole map[string]float64 `json:"engagement_by_role"`
	Activities       map[string]int     `json:"activities,omitempty"`
	People           int                `json:"people"`
	Needs            []*Need            `json:"needs,omitempty"`
	PainChains       [][]*Need          `json:"pain_chains,omitempty"`
	Opportunities    []*Opportunity     `json:"opportunities,omitempty"`
	Won              int                `json:"won"`
	Lost             int                `json:"lost"`
	Open             int                `json:"open"`
	Tickets          int                `json:"service_tickets"`
	OverdueDays      int                `json:"payment_overdue_days"`
	MergedFrom       []string           `json:"merged_from,omitempty"`
	Created          time.Time          `json:"created"`
	Updated          time.Time          `json:"updated"`
	Score
}

// Get returns one account's view (ENOTFOUND-free: ok false when absent).
// An id of a merged account answers with the survivor.
func (m *Model) Get(id string) (*View, bool) {
	m.refresh(m.Scorecard())
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := m.find(id)
	if a == nil {
		return nil, false
	}
	return m.view(a, m.Now()), true
}

func (m *Model) find(id string) *Account {
	if a := m.accounts[id]; a != nil {
		return a
	}
	for _, a := range m.accounts {
		for _, f := range a.MergedFrom {
			if f == id {
				return a
			}
		}
	}
	return nil
}

// Lookup finds an account by key ("uscc", "91350100M000100Y43"); the value
// is standardised first.
func (m *Model) Lookup(typ, value string) (string, bool) {
	switch typ {
	case KeyUSCC:
		if c, err := validUSCC(value); err == nil {
			value = c
		}
	case KeyDomain:
		if d, err := NormalizeDomain(value); err == nil {
			value = d
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.keys[Key{typ, value}]
	return id, ok
}

func (m *Model) view(a *Account, now time.Time) *View {
	// Copies: the view is encoded after the lock is released, while the
	// follower goes on changing the account.
	v := &View{ID: a.ID, Name: a.Name(), Keys: slices.Clone(a.Keys), Traits: make(map[string]*Trait, len(a.Traits)), Parent: a.Parent, Tickets: a.Tickets,
		OverdueDays: a.OverdueDays, MergedFrom: slices.Clone(a.MergedFrom), Created: a.Created, Updated: a.Updated, Needs: cloneNeeds(a.Needs),
		Activities: maps.Clone(a.Engagement.Counts)}
	for n, t := range a.Traits {
		c := *t
		v.Traits[n] = &c
	}
	v.TraitGroups = map[string][]string{}
	for n, t := range a.Traits {
		v.TraitGroups[t.Group] = append(v.TraitGroups[t.Group], n)
	}
	for _, names := range v.TraitGroups {
		sort.Strings(names)
	}
	if code := a.String("industry"); code != "" {
		if in, err := LookupIndustry(code); err == nil {
			v.Industry = IndustryPath(in)
		}
	}
	children := m.children()
	v.Children = children[a.ID]
	v.Rollup = m.rollup(a, children, now, map[string]bool{})
	v.Coverage = m.coverage(a)
	v.Engagement = a.Engagement.At(now)
	v.EngagementByRole = map[string]float64{}
	for pk, eg := range a.People {
		role := "none"
		if mem := a.Members[pk]; mem != nil {
			if r := m.effectiveRole(mem); r != nil && r.Role != "" {
				role = r.Role
			}
		}
		v.EngagementByRole[role] += eg.At(now)
	}
	v.People = len(a.Members)
	v.PainChains = painChains(v.Needs)
	for _, o := range a.Opps {
		c := *o
		v.Opportunities = append(v.Opportunities, &c)
	}
	sort.Slice(v.Opportunities, func(i, j int) bool { return v.Opportunities[i].At.Before(v.Opportunities[j].At) })
	v.Won, v.Lost, v.Open = a.Won()
	v.Score = m.score(a, now)
	return v
}

func cloneNeeds(ns []*Need) []*Need {
	out := make([]*Need, len(ns))
	for i, n := range ns {
		c := *n
		out[i] = &c
	}
	return out
}

// painChains follows LinkedTo from each need nobody links to, bottom up: a
// frontline pain, the middle-management target it became, the decision
// level's priority.
func painChains(needs []*Need) [][]*Need {
	byID := map[string]*Need{}
	linked := map[string]bool{}
	for _, n := range needs {
		byID[n.ID] = n
		if n.LinkedTo != "" {
			linked[n.LinkedTo] = true
		}
	}
	var out [][]*Need
	for _, n := range needs {
		if linked[n.ID] || n.LinkedTo == "" {
			continue
		}
		chain := []*Need{n}
		for cur, k := n, 0; cur.LinkedTo != "" && k < 8; k++ {
			next := byID[cur.LinkedTo]
			if next == nil {
				break
			}
			chain = append(chain, next)
			cur = next
		}
		out = append(out, chain)
	}
	return out
}

func (m *Model) children() map[string][]string {
	out := map[string][]string{}
	for _, a := range m.accounts {
		if a.Parent != "" {
			out[a.Parent] = append(out[a.Parent], a.ID)
		}
	}
	for _, c := range out {
		sort.Strings(c)
	}
	return out
}

func (m *Model) rollup(a *Account, children map[string][]string, now time.Time, seen map[string]bool) Rollup {
	seen[a.ID] = true
	r := Rollup{Accounts: 1, Engagement: a.Engagement.At(now)}
	if f := a.Number("revenue"); !math.IsNaN(f) {
		r.Revenue = f
	}
	if f := a.Number("employees"); !math.IsNaN(f) {
		r.Employees = f
	}
	r.Won, _, _ = a.Won()
	for _, cid := range children[a.ID] {
		c := m.accounts[cid]
		if c == nil || seen[cid] {
			continue
		}
		cr := m.rollup(c, children, now, seen)
		r.Accounts += cr.Accounts
		r.Revenue += cr.Revenue
		r.Employees += cr.Employees
		r.Engagement += cr.Engagement
		r.Won += cr.Won
		r.Depth = max(r.Depth, cr.Depth+1)
	}
	return r
}

var statusRank = map[string]int{"missing": 0, StatusPresumed: 1, StatusReported: 2, StatusVerified: 3}

func (m *Model) coverage(a *Account) Coverage {
	c := Coverage{Roles: map[string]string{}, Levels: map[string]int{}, Gaps: []string{}, GapCodes: []Gap{}}
	for _, r := range Roles {
		c.Roles[r] = "missing"
	}
	for _, l := range Levels {
		c.Levels[l] = 0
	}
	for _, mem := range a.Members {
		r := m.effectiveRole(mem)
		if r == nil {
			continue
		}
		if r.Role != "" && statusRank[r.Status] > statusRank[c.Roles[r.Role]] {
			c.Roles[r.Role] = r.Status
		}
		if r.Level != "" {
			c.Levels[r.Level]++
		}
	}
	for _, r := range Roles {
		switch c.Roles[r] {
		case "missing":
			c.Gaps = append(c.Gaps, fmt.Sprintf("no %s identified", r))
			c.GapCodes = append(c.GapCodes, Gap{"no_role", map[string]string{"role": r}})
		case StatusPresumed:
			c.Score += 0.5
			c.Gaps = append(c.Gaps, fmt.Sprintf("%s presumed, not verified", r))
			c.GapCodes = append(c.GapCodes, Gap{"role_presumed", map[string]string{"role": r}})
		default:
			c.Score++
		}
	}
	c.Score /= float64(len(Roles))
	for _, l := range []string{LevelDecision, LevelSenior} {
		if c.Levels[l] == 0 {
			c.Gaps = append(c.Gaps, "no contact at "+LevelNames[l])
			c.GapCodes = append(c.GapCodes, Gap{"no_level_contact", map[string]string{"level": l}})
		}
	}
	return c
}

// People lists an account's key persons, top level first.
func (m *Model) People(id string) ([]Person, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := m.find(id)
	if a == nil {
		return nil, false
	}
	now := m.Now()
	out := make([]Person, 0, len(a.Members))
	for pk, mem := range a.Members {
		p := Person{Person: pk, Via: mem.Via, Opportunities: maps.Clone(mem.Opportunities)}
		if r := m.effectiveRole(mem); r != nil {
			c := *r
			p.Role = &c
		}
		if p.Role != nil && p.Role.Level != "" {
			p.LevelName, p.Focus = LevelNames[p.Role.Level], LevelFocus[p.Role.Level]
		}
		if eg := a.People[pk]; eg != nil {
			p.Engagement, p.Activities = eg.At(now), maps.Clone(eg.Counts)
			last := eg.Last
			p.LastActivity = &last
		}
		for _, n := range a.Needs {
			if n.Person == pk {
				c := *n
				p.Needs = append(p.Needs, &c)
			}
		}
		if ps := m.persons[pk]; ps != nil {
			for acc := range ps.accounts {
				p.Accounts = append(p.Accounts, acc)
			}
			sort.Strings(p.Accounts)
		}
		out = append(out, p)
	}
	lvl := func(p Person) int {
		if p.Role == nil {
			return len(Levels)
		}
		for i, l := range Levels {
			if p.Role.Level == l {
				return i
			}
		}
		return len(Levels)
	}
	sort.Slice(out, func(i, j int) bool {
		if li, lj := lvl(out[i]), lvl(out[j]); li != lj {
			return li < lj
		}
		return out[i].Person < out[j].Person
	})
	return out, true
}

// AccountsOf lists the accounts a person is linked to, with their role at
// each.
func (m *Model) AccountsOf(pk string) map[string]*Role {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]*Role{}
	if p := m.persons[pk]; p != nil {
		for id := range p.accounts {
			if a := m.accounts[id]; a != nil {
				if r := m.effectiveRole(a.Members[pk]); r != nil {
					c := *r
					out[id] = &c
				} else {
					out[id] = nil
				}
			}
		}
	}
	return out
}

// Filter selects accounts for lists and target lists.
type Filter struct {
	Query    string   // name or key contains (case-insensitive)
	Industry string   // code prefix: "I", "65", "651"
	Province string   // province trait
	MinICP   float64  // icp_score at least
	Flagged  *bool    // only flagged (true) or unflagged (false) accounts
	Gaps     []string // has all these gaps ("no EB identified")
	IDs      map[string]bool
}

func (f *Filter) match(m *Model, a *Account, s *Score) bool {
	if f.IDs != nil && !f.IDs[a.ID] {
		return false
	}
	if f.Query != "" {
		q := strings.ToLower(f.Query)
		hit := strings.Contains(strings.ToLower(a.Name()), q) || strings.Contains(a.ID, q)
		for _, k := range a.Keys {
			hit = hit || strings.Contains(strings.ToLower(k.Value), q)
		}
		if !hit {
			return false
		}
	}
	if f.Industry != "" {
		code := a.String("industry")
		in, err := LookupIndustry(code)
		want := strings.ToUpper(f.Industry)
		if err != nil || !(strings.HasPrefix(code, want) || in.Section == want) {
			return false
		}
	}
	if f.Province != "" && a.String("province") != f.Province {
		return false
	}
	if s != nil && s.ICP < f.MinICP {
		return false
	}
	if f.Flagged != nil && s != nil && (s.Flag != nil) != *f.Flagged {
		return false
	}
	if len(f.Gaps) > 0 {
		c := m.coverage(a)
		for _, g := range f.Gaps {
			found := false
			for _, have := range c.Gaps {
				found = found || strings.EqualFold(have, g)
			}
			if !found {
				return false
			}
		}
	}
	return true
}
