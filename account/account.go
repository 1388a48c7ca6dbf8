// Package account makes corporate customers (对公客户) first-class: accounts
// identified by their unified social credit code, web domain, CRM id or a
// Segment group call's groupId; their traits in three groups (industry,
// enterprise, relationship), each reported, presumed or verified; their
// buying committee (关键人: EB, UB, TB, Coach at 决策层, 高层, 中层, 基层); needs
// along the pain chain; sales activities feeding engagement; a parent and
// subsidiary hierarchy with roll-ups; and the ICP score that ranks them.
//
// Accounts are derived state like profiles: Model is the result of applying
// the event log (group, identify and track calls) and the API's edits in
// order, and Rebuild replays them, which is how a merge is undone.
package account

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Key types that identify an account, strongest first.
const (
	KeyUSCC   = "uscc"   // 统一社会信用代码, validated (GB 32100)
	KeyDomain = "domain" // web domain, "example.com"
	KeyCRM    = "crm"    // the CRM's account id
	KeyGroup  = "group"  // a group call's groupId
)

// KeyTypes in order of strength.
var KeyTypes = []string{KeyUSCC, KeyDomain, KeyCRM, KeyGroup}

// Key is one identifier of an account.
type Key struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (k Key) String() string { return k.Type + ":" + k.Value }

// Buying roles (Miller Heiman): who signs, who uses, who judges the
// technology, who guides the seller.
const (
	RoleEB    = "EB"
	RoleUB    = "UB"
	RoleTB    = "TB"
	RoleCoach = "Coach"
)

// Roles in the order the console shows them.
var Roles = []string{RoleEB, RoleUB, RoleTB, RoleCoach}

// Levels of the organisation, top first.
const (
	LevelDecision  = "decision"  // 决策层
	LevelSenior    = "senior"    // 高层
	LevelMiddle    = "middle"    // 中层
	LevelFrontline = "frontline" // 基层
)

// Levels top first.
var Levels = []string{LevelDecision, LevelSenior, LevelMiddle, LevelFrontline}

// LevelNames are the Chinese names of the levels.
var LevelNames = map[string]string{LevelDecision: "决策层", LevelSenior: "高层", LevelMiddle: "中层", LevelFrontline: "基层"}

// LevelFocus is what each level cares about: the questions a seller
// prepares for a meeting at that level.
var LevelFocus = map[string]string{
	LevelDecision:  "strategy, return on investment, risk (战略、投资回报、风险)",
	LevelSenior:    "targets, budget, cross-department results (目标、预算、跨部门成效)",
	LevelMiddle:    "process efficiency, team performance (流程效率、团队绩效)",
	LevelFrontline: "daily pains, ease of use (日常痛点、易用性)",
}

// NormalizeRole reads a buying role: EB, UB, TB, Coach, in any case, or
// their long names.
func NormalizeRole(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "eb", "economic buyer", "economic_buyer", "经济决策者", "决策者":
		return RoleEB, true
	case "ub", "user buyer", "user_buyer", "使用者", "用户决策者":
		return RoleUB, true
	case "tb", "technical buyer", "technical_buyer", "技术决策者", "技术把关者":
		return RoleTB, true
	case "coach", "教练", "内线":
		return RoleCoach, true
	}
	return "", false
}

// NormalizeLevel reads a level in Chinese or English.
func NormalizeLevel(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "决策层", "decision", "executive", "c-level":
		return LevelDecision, true
	case "高层", "senior":
		return LevelSenior, true
	case "中层", "middle", "manager":
		return LevelMiddle, true
	case "基层", "frontline", "staff":
		return LevelFrontline, true
	}
	return "", false
}

// Trait groups.
const (
	GroupIndustry     = "industry"     // 行业特征
	GroupEnterprise   = "enterprise"   // 企业特征
	GroupRelationship = "relationship" // 关系特征
	GroupOther        = "other"
)

// traitGroups places the known account traits.
var traitGroups = map[string]string{
	"industry": GroupIndustry, "industry_name": GroupIndustry, "business_cycle": GroupIndustry, "policy_exposure": GroupIndustry,
	"name": GroupEnterprise, "uscc": GroupEnterprise, "domain": GroupEnterprise, "employees": GroupEnterprise, "revenue": GroupEnterprise,
	"size": GroupEnterprise, "ownership": GroupEnterprise, "stage": GroupEnterprise, "region": GroupEnterprise, "province": GroupEnterprise,
	"city": GroupEnterprise, "listed": GroupEnterprise, "founded": GroupEnterprise,
	"products_held": GroupRelationship, "contract_value": GroupRelationship, "owner": GroupRelationship, "open_opportunities": GroupRelationship,
	"crm_id": GroupRelationship, "payment_overdue_days": GroupRelationship, "service_cost": GroupRelationship, "customer_since": GroupRelationship,
}

// TraitGroup says which group a trait belongs to.
func TraitGroup(name string) string {
	if g, ok := traitGroups[name]; ok {
		return g
	}
	return GroupOther
}

// traitAliases are names CRMs and the demo use for the canonical traits.
var traitAliases = map[string]string{
	"industry_code": "industry", "annual_revenue_cny": "revenue", "annual_revenue": "revenue", "employee_count": "employees",
	"credit_code": "uscc", "unified_social_credit_code": "uscc", "website": "domain", "company_name": "name",
}

// Value statuses.
const (
	StatusReported = "reported" // from a source system, not confirmed by anyone
	StatusPresumed = "presumed" // entered as a guess, with its reasoning (预设值)
	StatusVerified = "verified" // confirmed or corrected by a named user
)

// Trait is one account trait with where it came from and how sure it is.
type Trait struct {
	Value      any        `json:"value"`
	Group      string     `json:"group"`
	Status     string     `json:"status"`
	Reasoning  string     `json:"reasoning,omitempty"`
	Source     string     `json:"source,omitempty"`
	VerifiedBy string     `json:"verified_by,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	Previous   any        `json:"previous,omitempty"` // the presumed value a verification corrected
	At         time.Time  `json:"at"`
}

// Role is a person's place on one account's committee (or one
// opportunity's, when Opportunity is set).
type Role struct {
	Role        string     `json:"role,omitempty"`
	Level       string     `json:"level,omitempty"`
	Title       string     `json:"title,omitempty"`
	Opportunity string     `json:"opportunity,omitempty"`
	Status      string     `json:"status"`
	Reasoning   string     `json:"reasoning,omitempty"`
	Source      string     `json:"source,omitempty"`
	VerifiedBy  string     `json:"verified_by,omitempty"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	At          time.Time  `json:"at"`
}

// Member is a person linked to an account.
type Member struct {
	Person string `json:"person"` // "user_id:u1" or "anonymous_id:a1"
	// Via says how the person was linked: group (a group call), domain
	// (their email's domain is the account's), api.
	Via string `json:"via"`
	// Role on the account: an account role set through the API or an
	// import wins over the person's identify traits.
	Role          *Role           `json:"role,omitempty"`
	Opportunities map[string]Role `json:"opportunities,omitempty"`
	Since         time.Time       `json:"since"`
}

// Need is an organisational or personal need on the pain chain: a
// frontline pain that becomes a middle-management target and a
// decision-level priority (LinkedTo points one level up).
type Need struct {
	ID       string    `json:"id"`
	Level    string    `json:"level"`
	Text     string    `json:"text"`
	Person   string    `json:"person,omitempty"` // empty: the organisation's need
	LinkedTo string    `json:"linked_to,omitempty"`
	Status   string    `json:"status"`
	At       time.Time `json:"at"`
}

// Opportunity is a deal with the account.
type Opportunity struct {
	ID     string    `json:"id"`
	Stage  string    `json:"stage"` // open, won, lost
	Amount float64   `json:"amount,omitempty"`
	At     time.Time `json:"at"`
}

// Activity kinds of sales work.
const (
	ActVisit    = "visit"
	ActCall     = "call"
	ActMeeting  = "meeting"
	ActProposal = "proposal"
)

// ActivityWeights weigh activities in engagement: a proposal or a visit
// says more about a live relationship than a call.
var ActivityWeights = map[string]float64{ActVisit: 3, ActCall: 1, ActMeeting: 3, ActProposal: 4}

// EngagementHalfLife is how fast engagement fades: an activity counts half
// after this long.
const EngagementHalfLife = 90 * 24 * time.Hour

// engagementEpoch anchors the decayed sums (see Engagement).
var engagementEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Engagement is a decayed activity sum: each activity adds its weight
// scaled to engagementEpoch, so that adding is order-independent and the
// value at any instant is one multiplication.
type Engagement struct {
	Sum    float64        `json:"-"`
	Counts map[string]int `json:"counts,omitempty"`
	Last   time.Time      `json:"last,omitempty"`
}

func (e *Engagement) add(kind string, at time.Time, n int) {
	w := ActivityWeights[kind]
	if e.Counts == nil {
		e.Counts = map[string]int{}
	}
	e.Counts[kind] += n
	e.Sum += float64(n) * w * math.Exp2(at.Sub(engagementEpoch).Hours()/EngagementHalfLife.Hours())
	if at.After(e.Last) {
		e.Last = at
	}
}

// At is the engagement at now.
func (e *Engagement) At(now time.Time) float64 {
	if e == nil || e.Sum == 0 {
		return 0
	}
	return e.Sum * math.Exp2(-now.Sub(engagementEpoch).Hours()/EngagementHalfLife.Hours())
}

func (e *Engagement) merge(o *Engagement) {
	if o == nil {
		return
	}
	e.Sum += o.Sum
	for k, n := range o.Counts {
		if e.Counts == nil {
			e.Counts = map[string]int{}
		}
		e.Counts[k] += n
	}
	if o.Last.After(e.Last) {
		e.Last = o.Last
	}
}

// Account is one corporate customer.
type Account struct {
	ID      string            `json:"id"`
	Keys    []Key             `json:"keys"`
	Traits  map[string]*Trait `json:"traits"`
	Parent  string            `json:"parent,omitempty"`
	Members map[string]*Member
	Needs   []*Need                 `json:"needs,omitempty"`
	Opps    map[string]*Opportunity `json:"-"`
	// Engagement of the account's own people; per person in People.
	Engagement Engagement `json:"engagement"`
	People     map[string]*Engagement
	// Tickets and overdue payments feed the low-value/high-risk flag.
	Tickets     int `json:"service_tickets"`
	OverdueDays int `json:"payment_overdue_days"`
	MergedFrom  []string
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	version     int       // bumped on every change; the derived values compare it
	d           derived
}

// derived are the values scoring reads, recomputed only when the account
// changed (see Model.refresh): ranking 100,000 accounts must not rebuild
// 100,000 coverages.
type derived struct {
	ver      int
	valid    bool
	cov      float64
	decision bool
	ind      Industry
	indOK    bool
	emp, rev float64
	prov     string
	// base: the score's static points for card (all but engagement).
	card *Scorecard
	base float64
}

// Name is the account's name trait, or its id.
func (a *Account) Name() string {
	if t := a.Traits["name"]; t != nil {
		if s, ok := t.Value.(string); ok && s != "" {
			return s
		}
	}
	return a.ID
}

// Number returns a numeric trait (employees, revenue) or NaN.
func (a *Account) Number(name string) float64 {
	t := a.Traits[name]
	if t == nil {
		return math.NaN()
	}
	return toFloat(t.Value)
}

// String returns a text trait.
func (a *Account) String(name string) string {
	if t := a.Traits[name]; t != nil {
		if s, ok := t.Value.(string); ok {
			return s
		}
	}
	return ""
}

// Won and Lost count the account's closed opportunities.
func (a *Account) Won() (won, lost, open int) {
	for _, o := range a.Opps {
		switch o.Stage {
		case "won":
			won++
		case "lost":
			lost++
		default:
			open++
		}
	}
	return
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case string:
		var f float64
		if _, err := fmt.Sscan(strings.ReplaceAll(x, ",", ""), &f); err == nil {
			return f
		}
	}
	return math.NaN()
}

// IDFor is the id of an account first seen under k: deterministic, so a
// rebuild gives the same ids.
func IDFor(k Key) string {
	h := sha256.Sum256([]byte(k.String()))
	return "acc_" + hex.EncodeToString(h[:8])
}

// freeMail are mailbox providers, never a company's domain.
var freeMail = map[string]bool{"qq.com": true, "163.com": true, "126.com": true, "gmail.com": true, "outlook.com": true, "hotmail.com": true,
	"foxmail.com": true, "sina.com": true, "sohu.com": true, "yahoo.com": true, "icloud.com": true, "aliyun.com": true, "139.com": true, "yeah.net": true}

// NormalizeDomain reduces a URL, a host or an email address to the
// registrable-looking domain accounts are matched on: lower case, without
// scheme, "www.", port, path or the mailbox. Free mail providers are not
// company domains and are refused.
func NormalizeDomain(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(raw))
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			s = u.Host
		}
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "www."), ".")
	if s == "" || !strings.Contains(s, ".") || strings.ContainsAny(s, " _") {
		return "", fmt.Errorf("domain is not a web domain: send the company's site, e.g. example.com")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r > 127) {
			return "", fmt.Errorf("domain has the character %q, which a web domain cannot have: send the company's site, e.g. example.com", r)
		}
	}
	if freeMail[s] {
		return "", fmt.Errorf("domain %s is a free mail provider, not a company's", s)
	}
	return s, nil
}
