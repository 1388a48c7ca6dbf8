package account_test

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
)

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type seq struct{ n int }

func (s *seq) ev(typ, user, group, name string, at time.Time, traits, props map[string]any) *portrait.Event {
	s.n++
	e := &portrait.Event{Seq: int64(s.n), MessageID: fmt.Sprintf("m%d", s.n), Type: typ, Source: "crm", UserID: user, GroupID: group, Name: name, Timestamp: at}
	if traits != nil {
		e.Traits, _ = json.Marshal(traits)
	}
	if props != nil {
		e.Properties, _ = json.Marshal(props)
	}
	return e
}

func newModel() *account.Model {
	return account.NewModel(func() time.Time { return t0.Add(24 * time.Hour) })
}

// Real codes of listed companies (Huawei, Tencent, Alibaba) pass; every
// corruption is refused with the reason.
func TestUSCCValidation(t *testing.T) {
	var s seq
	m := newModel()
	for i, code := range []string{"914403001922038216", "9144030071526726XG", "91330100716105852F"} {
		m.Apply(s.ev("group", fmt.Sprintf("u%d", i), fmt.Sprintf("g%d", i), "", t0, map[string]any{"uscc": code, "name": "公司"}, nil))
		if id, ok := m.Lookup(account.KeyUSCC, code); !ok || id == "" {
			t.Fatalf("valid %s not a key", code)
		}
	}
	if n := len(m.TakeIssues()); n != 0 {
		t.Fatalf("%d issues for valid codes", n)
	}
	bad := map[string]string{
		"914403001922038217":  "check character",         // last digit changed
		"91440300192203821":   "18 characters",           // one short
		"914403001922O38216":  "not allowed",             // O is never used
		"0144030019220382 16": "",                        // spaces are stripped, then: authority 0
		"91440A001922038216":  "region code",             // letters in the region
		"9144030071526726XH":  "check character",         // Tencent's, corrupted
		"91330100716105852":   "must have 18 characters", // truncated
	}
	for code, want := range bad {
		m.Apply(s.ev("group", "ux", "gbad-"+code, "", t0, map[string]any{"uscc": code}, nil))
		is := m.TakeIssues()
		if len(is) != 1 || is[0].Trait != "uscc" || !strings.Contains(is[0].Reason, strings.TrimSpace(want)) || is[0].Account == "" {
			t.Fatalf("%s: issues %+v, want reason with %q", code, is, want)
		}
		if _, ok := m.Lookup(account.KeyUSCC, code); ok {
			t.Fatalf("invalid %s became a key", code)
		}
		id, _ := m.Lookup(account.KeyGroup, "gbad-"+code)
		v, _ := m.Get(id)
		if v.Traits["uscc"] != nil {
			t.Fatalf("invalid uscc kept as a trait")
		}
	}
}

func TestDomainMatching(t *testing.T) {
	for raw, want := range map[string]string{"https://www.Huaxin-Tech.com/about?x=1": "huaxin-tech.com", "li@huaxin-tech.com": "huaxin-tech.com", "huaxin-tech.com:443": "huaxin-tech.com"} {
		if d, err := account.NormalizeDomain(raw); err != nil || d != want {
			t.Fatalf("%s → %q %v", raw, d, err)
		}
	}
	for _, raw := range []string{"someone@qq.com", "localhost", "not a domain"} {
		if _, err := account.NormalizeDomain(raw); err == nil {
			t.Fatalf("%s accepted", raw)
		}
	}
	var s seq
	m := newModel()
	// The person is seen before the account: their work email links them
	// once the account's domain is known; a qq.com mailbox links nobody.
	m.Apply(s.ev("identify", "u1", "", "", t0, map[string]any{"email": "Wang.Wei@HUAXIN-tech.com"}, nil))
	m.Apply(s.ev("identify", "u2", "", "", t0, map[string]any{"email": "x@qq.com"}, nil))
	m.Apply(s.ev("group", "", "acct-1", "", t0.Add(time.Hour), map[string]any{"name": "华信科技", "website": "http://www.huaxin-tech.com"}, nil))
	m.Apply(s.ev("identify", "u3", "", "", t0.Add(2*time.Hour), map[string]any{"email": "zhao@huaxin-tech.com"}, nil))
	id, ok := m.Lookup(account.KeyDomain, "www.huaxin-tech.com")
	if !ok {
		t.Fatal("domain not a key")
	}
	people, _ := m.People(id)
	got := []string{}
	for _, p := range people {
		got = append(got, p.Person+"/"+p.Via)
	}
	if strings.Join(got, ",") != "user_id:u1/domain,user_id:u3/domain" {
		t.Fatalf("people %v", got)
	}
	// A second group call with the same domain under another groupId is
	// the same company: one account.
	m.Apply(s.ev("group", "u4", "crm-77", "", t0.Add(3*time.Hour), map[string]any{"domain": "huaxin-tech.com"}, nil))
	if id2, _ := m.Lookup(account.KeyGroup, "crm-77"); id2 != id || m.Len() != 1 {
		t.Fatalf("not matched by domain: %s vs %s, %d accounts", id2, id, m.Len())
	}
}

func TestGroupCallsResolveMergeAndUndo(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("group", "u1", "g-a", "", t0, map[string]any{"name": "恒达医药", "industry": "C27", "employees": 600, "revenue": "300,000,000"}, nil))
	m.Apply(s.ev("group", "u2", "g-b", "", t0.Add(time.Hour), map[string]any{"uscc": "914403001922038216"}, nil))
	if m.Len() != 2 {
		t.Fatalf("%d accounts", m.Len())
	}
	// A call naming g-a with g-b's USCC joins them.
	m.Apply(s.ev("group", "u3", "g-a", "", t0.Add(2*time.Hour), map[string]any{"uscc": "914403001922038216"}, nil))
	if m.Len() != 1 {
		t.Fatalf("not merged: %d", m.Len())
	}
	id, _ := m.Lookup(account.KeyGroup, "g-a")
	v, _ := m.Get(id)
	if v.Name != "恒达医药" || v.Traits["industry"].Value != "27" || v.Traits["industry_name"].Value != "医药制造业" || v.Traits["revenue"].Value != 3e8 || v.People != 3 {
		t.Fatalf("merged view %+v", v)
	}
	if v.Traits["industry"].Group != account.GroupIndustry || v.Traits["employees"].Group != account.GroupEnterprise {
		t.Fatal("trait groups")
	}
	ms := m.Merges()
	if len(ms) != 1 || ms[0].Survivor != id || ms[0].Via.Type != account.KeyUSCC {
		t.Fatalf("journal %+v", ms)
	}
	// Undo: replayed without the merge, the two stay apart, for good.
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditUnmerge, Account: ms[0].Survivor, Other: ms[0].Merged, By: "admin", At: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Fatalf("undo left %d accounts", m.Len())
	}
	m.Apply(s.ev("group", "u3", "g-a", "", t0.Add(4*time.Hour), map[string]any{"uscc": "914403001922038216"}, nil))
	if m.Len() != 2 {
		t.Fatal("merged again after undo")
	}
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditUnmerge, Account: "x", Other: "y", By: "admin"}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Fatalf("unknown unmerge: %v", err)
	}
}

// A consultant sits on two committees with different roles; identify
// traits place them, an account role set by the API wins there only.
func TestRolesAcrossAccounts(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("identify", "lin", "", "", t0, map[string]any{"buying_role": "TB", "level": "高层", "title": "CTO"}, nil))
	m.Apply(s.ev("group", "lin", "a1", "", t0, map[string]any{"name": "A"}, nil))
	m.Apply(s.ev("group", "lin", "a2", "", t0, map[string]any{"name": "B"}, nil))
	a1, _ := m.Lookup(account.KeyGroup, "a1")
	a2, _ := m.Lookup(account.KeyGroup, "a2")
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditRole, Account: a2, Person: "user_id:lin", Role: "coach", Level: "middle", By: "sales.zhang", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditRole, Account: a1, Person: "user_id:lin", Role: "EB", Opportunity: "opp-9", By: "sales.zhang", At: t0}); err != nil {
		t.Fatal(err)
	}
	roles := m.AccountsOf("user_id:lin")
	if len(roles) != 2 || roles[a1].Role != account.RoleTB || roles[a1].Level != account.LevelSenior || roles[a2].Role != account.RoleCoach || roles[a2].Level != account.LevelMiddle {
		t.Fatalf("roles %+v / %+v", roles[a1], roles[a2])
	}
	p, _ := m.People(a1)
	if len(p) != 1 || p[0].Opportunities["opp-9"].Role != account.RoleEB || len(p[0].Accounts) != 2 || p[0].LevelName != "高层" {
		t.Fatalf("people %+v", p)
	}
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditRole, Account: a1, Person: "user_id:lin", Role: "boss", By: "x"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("bad role: %v", err)
	}
	// English levels read too.
	m.Apply(s.ev("identify", "wu", "", "", t0, map[string]any{"buying_role": "UB", "level": "frontline"}, nil))
	m.Apply(s.ev("group", "wu", "a1", "", t0, nil, nil))
	v, _ := m.Get(a1)
	if v.Coverage.Levels[account.LevelFrontline] != 1 {
		t.Fatalf("levels %+v", v.Coverage.Levels)
	}
}

func TestPresumedToVerified(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("group", "", "a1", "", t0, map[string]any{"name": "A", "revenue": 5e7, "presumed": map[string]any{"revenue": "同行业同规模企业的典型营收"}}, nil))
	m.Apply(s.ev("identify", "chen", "", "", t0, map[string]any{"buying_role": "EB", "level": "决策层", "buying_role_status": "presumed", "buying_role_reasoning": "签过上一份合同"}, nil))
	m.Apply(s.ev("group", "chen", "a1", "", t0, nil, nil))
	id, _ := m.Lookup(account.KeyGroup, "a1")
	v, _ := m.Get(id)
	if tr := v.Traits["revenue"]; tr.Status != account.StatusPresumed || tr.Reasoning == "" || tr.VerifiedBy != "" {
		t.Fatalf("presumed %+v", tr)
	}
	if v.Coverage.Roles[account.RoleEB] != account.StatusPresumed || !has(v.Coverage.Gaps, "EB presumed, not verified") {
		t.Fatalf("coverage %+v", v.Coverage)
	}
	at := t0.Add(48 * time.Hour)
	// Corrected by a named user: the old value is kept as previous.
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditVerify, Account: id, Trait: "revenue", Value: 8e7, By: "王经理", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditVerifyRole, Account: id, Person: "user_id:chen", By: "王经理", At: at}); err != nil {
		t.Fatal(err)
	}
	v, _ = m.Get(id)
	tr := v.Traits["revenue"]
	if tr.Status != account.StatusVerified || tr.VerifiedBy != "王经理" || !tr.VerifiedAt.Equal(at) || tr.Value != 8e7 || tr.Previous != 5e7 {
		t.Fatalf("verified %+v", tr)
	}
	if v.Coverage.Roles[account.RoleEB] != account.StatusVerified || has(v.Coverage.Gaps, "EB presumed, not verified") {
		t.Fatalf("coverage after %+v", v.Coverage)
	}
	p, _ := m.People(id)
	if p[0].Role.VerifiedBy != "王经理" || p[0].Role.Role != account.RoleEB || p[0].Role.Level != account.LevelDecision {
		t.Fatalf("role %+v", p[0].Role)
	}
	// A source system's later value does not overwrite a verified one.
	m.Apply(s.ev("group", "", "a1", "", at.Add(time.Hour), map[string]any{"revenue": 1e6}, nil))
	if v, _ = m.Get(id); v.Traits["revenue"].Value != 8e7 {
		t.Fatal("verified value overwritten")
	}
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditVerify, Account: id, Trait: "revenue"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("verification without a name: %v", err)
	}
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCoverageGaps(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("identify", "a", "", "", t0, map[string]any{"buying_role": "UB", "hierarchy_level": "中层"}, nil))
	m.Apply(s.ev("identify", "b", "", "", t0, map[string]any{"buying_role": "TB", "level": "senior", "buying_role_status": "presumed", "buying_role_reasoning": "负责IT"}, nil))
	m.Apply(s.ev("group", "a", "x", "", t0, nil, nil))
	m.Apply(s.ev("group", "b", "x", "", t0, nil, nil))
	id, _ := m.Lookup(account.KeyGroup, "x")
	v, _ := m.Get(id)
	want := []string{"no EB identified", "TB presumed, not verified", "no Coach identified", "no contact at 决策层"}
	for _, w := range want {
		if !has(v.Coverage.Gaps, w) {
			t.Fatalf("gaps %v lack %q", v.Coverage.Gaps, w)
		}
	}
	if has(v.Coverage.Gaps, "no contact at 高层") || math.Abs(v.Coverage.Score-1.5/4) > 1e-9 {
		t.Fatalf("coverage %+v", v.Coverage)
	}
}

// Each gap comes with its code and parameters, in the order of the
// sentences, so that the console can say it in Chinese.
func TestCoverageGapCodes(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("identify", "a", "", "", t0, map[string]any{"buying_role": "UB", "hierarchy_level": "中层"}, nil))
	m.Apply(s.ev("identify", "b", "", "", t0, map[string]any{"buying_role": "TB", "level": "senior", "buying_role_status": "presumed", "buying_role_reasoning": "负责IT"}, nil))
	m.Apply(s.ev("group", "a", "x", "", t0, nil, nil))
	m.Apply(s.ev("group", "b", "x", "", t0, nil, nil))
	id, _ := m.Lookup(account.KeyGroup, "x")
	v, _ := m.Get(id)
	want := []account.Gap{
		{Code: "no_role", Params: map[string]string{"role": "EB"}},
		{Code: "role_presumed", Params: map[string]string{"role": "TB"}},
		{Code: "no_role", Params: map[string]string{"role": "Coach"}},
		{Code: "no_level_contact", Params: map[string]string{"level": "decision"}},
	}
	if !reflect.DeepEqual(v.Coverage.GapCodes, want) || len(v.Coverage.Gaps) != len(want) {
		t.Fatalf("gaps %v codes %v, want %v", v.Coverage.Gaps, v.Coverage.GapCodes, want)
	}
	rows, _, err := m.List(account.Filter{}, "", 0, 10)
	if err != nil || len(rows) != 1 || !reflect.DeepEqual(rows[0].GapCodes, want) {
		t.Fatalf("list rows %+v %v", rows, err)
	}
}

func TestRollupThreeLevels(t *testing.T) {
	var s seq
	m := newModel()
	// group HQ ← regional ← two branches; revenue and engagement add up
	// the tree.
	m.Apply(s.ev("group", "", "hq", "", t0, map[string]any{"name": "集团", "revenue": 1000}, nil))
	m.Apply(s.ev("group", "", "east", "", t0, map[string]any{"name": "华东", "revenue": 100, "parent": "hq"}, nil))
	m.Apply(s.ev("group", "", "sh", "", t0, map[string]any{"name": "上海", "revenue": 10, "parent": "east"}, nil))
	m.Apply(s.ev("group", "", "hz", "", t0, map[string]any{"name": "杭州", "revenue": 1, "parent": "east"}, nil))
	m.Apply(s.ev("group", "p1", "sh", "", t0, nil, nil))
	m.Apply(s.ev("track", "p1", "", "Sales Visit", t0.Add(24*time.Hour), nil, map[string]any{"account_id": "sh"}))
	hq, _ := m.Lookup(account.KeyGroup, "hq")
	east, _ := m.Lookup(account.KeyGroup, "east")
	v, _ := m.Get(hq)
	if v.Rollup.Accounts != 4 || v.Rollup.Revenue != 1111 || v.Rollup.Depth != 2 || math.Abs(v.Rollup.Engagement-3) > 1e-9 || len(v.Children) != 1 {
		t.Fatalf("hq rollup %+v", v.Rollup)
	}
	v, _ = m.Get(east)
	if v.Rollup.Revenue != 111 || v.Rollup.Accounts != 3 || v.Parent != hq {
		t.Fatalf("east rollup %+v", v.Rollup)
	}
	// A cycle is refused.
	if err := m.ApplyEdit(&account.Edit{Kind: account.EditParent, Account: hq, Parent: east, By: "x"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("cycle: %v", err)
	}
}

func TestActivitiesFeedEngagement(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("identify", "eb", "", "", t0, map[string]any{"buying_role": "EB", "level": "决策层"}, nil))
	m.Apply(s.ev("group", "eb", "x", "", t0, nil, nil))
	m.Apply(s.ev("group", "eb", "y", "", t0, nil, nil))
	at := t0.Add(24 * time.Hour) // "now" in newModel: no decay
	m.Apply(s.ev("track", "eb", "", "Sales Visit", at, nil, map[string]any{"account_id": "x"}))
	m.Apply(s.ev("track", "eb", "", "Proposal Sent", at, nil, map[string]any{"account_id": "x"}))
	m.Apply(s.ev("track", "eb", "", "Sales Call", at, nil, nil)) // no account named: both
	x, _ := m.Lookup(account.KeyGroup, "x")
	y, _ := m.Lookup(account.KeyGroup, "y")
	vx, _ := m.Get(x)
	vy, _ := m.Get(y)
	if math.Abs(vx.Engagement-8) > 1e-9 || math.Abs(vx.EngagementByRole["EB"]-8) > 1e-9 || math.Abs(vy.Engagement-1) > 1e-9 || vx.Activities["proposal"] != 1 {
		t.Fatalf("engagement x %v %v y %v", vx.Engagement, vx.EngagementByRole, vy.Engagement)
	}
	// 90 days later it counts half.
	m.Now = func() time.Time { return at.Add(account.EngagementHalfLife) }
	if vx, _ = m.Get(x); math.Abs(vx.Engagement-4) > 1e-9 {
		t.Fatalf("decayed %v", vx.Engagement)
	}
}

func TestPainChain(t *testing.T) {
	var s seq
	m := newModel()
	m.Apply(s.ev("group", "", "x", "", t0, nil, nil))
	id, _ := m.Lookup(account.KeyGroup, "x")
	for _, n := range []account.Need{
		{ID: "p", Level: "决策层", Text: "降本增效 cut operating cost 10%"},
		{ID: "t", Level: "中层", Text: "对账周期从5天缩短到1天", LinkedTo: "p"},
		{ID: "f", Level: "基层", Text: "每天手工对账3小时", LinkedTo: "t", Person: "user_id:clerk"},
	} {
		n := n
		if err := m.ApplyEdit(&account.Edit{Kind: account.EditNeed, Account: id, Need: &n, By: "sales", At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := m.Get(id)
	if len(v.PainChains) != 1 || len(v.PainChains[0]) != 3 || v.PainChains[0][0].ID != "f" || v.PainChains[0][2].Level != account.LevelDecision {
		t.Fatalf("chains %+v", v.PainChains)
	}
}

func TestIndustryTable(t *testing.T) {
	n := map[string]int{}
	for _, in := range account.Industries() {
		n[in.Level]++
	}
	if n[account.IndustrySection] != 20 || n[account.IndustryDivision] != 97 || n[account.IndustryGroup] != 473 {
		t.Fatalf("GB/T 4754-2017 has 20 sections, 97 divisions, 473 groups: %v", n)
	}
	for code, want := range map[string]string{"I65": "软件和信息技术服务业", "651": "软件开发", "6513": "软件开发", "j66": "货币金融服务", "C": "制造业"} {
		in, err := account.LookupIndustry(code)
		if err != nil || in.Name != want {
			t.Fatalf("%s → %+v %v", code, in, err)
		}
	}
	for _, bad := range []string{"J65", "Z", "00", "65x", ""} {
		if _, err := account.LookupIndustry(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// Relevant reads an identify's traits and context where they are: the
// follower asks it of every event in the log.
func TestRelevantIdentify(t *testing.T) {
	cases := []struct {
		traits, context string
		want            bool
	}{
		{`{"name":"Ann"}`, `{"ip":"1.2.3.4"}`, false},
		{`{"email":"ann@acme.example"}`, `{}`, true},
		{`{"name":"Ann"}`, `{"traits":{"buying_role":"champion"}}`, true},
		{`{"level":"VP"}`, ``, true},
		{``, ``, false},
	}
	for _, c := range cases {
		e := &portrait.Event{Type: portrait.EventIdentify, Traits: []byte(c.traits), Context: []byte(c.context)}
		if got := account.Relevant(e); got != c.want {
			t.Errorf("Relevant(traits %s, context %s) = %v, want %v", c.traits, c.context, got, c.want)
		}
	}
	e := &portrait.Event{Type: portrait.EventIdentify, Traits: []byte(`{"name":"Ann","plan":"pro"}`), Context: []byte(`{"ip":"1.2.3.4","library":{"name":"web"}}`)}
	if n := testing.AllocsPerRun(100, func() { account.Relevant(e) }); n != 0 {
		t.Errorf("Relevant allocates %v times per identify, want 0", n)
	}
}
