package account

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// Scorecard is the configurable part of the ICP (ideal customer profile):
// weights on five factors, each scored 0..1, and what counts as a fit.
type Scorecard struct {
	Weights map[string]float64 `json:"weights" yaml:"weights"` // industry, size, region, engagement, coverage
	// Industries are target GB/T 4754 codes or prefixes ("I", "65", "663").
	Industries []string `json:"industries" yaml:"industries"`
	// Regions are target provinces (省).
	Regions []string `json:"regions" yaml:"regions"`
	// Employees is the ideal headcount band.
	Employees [2]float64 `json:"employees" yaml:"employees"`
	// EngagementFull is the engagement at which that factor is full.
	EngagementFull float64 `json:"engagement_full" yaml:"engagement_full"`
	// LearnedWeight is the learned score's share of icp_score once a model
	// is trained (0..1).
	LearnedWeight float64 `json:"learned_weight" yaml:"learned_weight"`
	// The low-value/high-risk flag (垃圾客户): a fit below LowFit, payments
	// overdue longer than MaxOverdueDays, more than MaxTicketsPerMillion
	// service tickets per million of revenue.
	LowFit               float64 `json:"low_fit" yaml:"low_fit"`
	MaxOverdueDays       int     `json:"max_overdue_days" yaml:"max_overdue_days"`
	MaxTicketsPerMillion float64 `json:"max_tickets_per_million" yaml:"max_tickets_per_million"`

	normOnce sync.Once
	normW    [5]float64
}

// Factors of the scorecard.
var Factors = []string{"industry", "size", "region", "engagement", "coverage"}

// DefaultScorecard suits a B2B software seller: software, finance and
// manufacturing of electronics, mid-sized to large companies.
func DefaultScorecard() *Scorecard {
	return &Scorecard{
		Weights:    map[string]float64{"industry": 25, "size": 20, "region": 10, "engagement": 25, "coverage": 20},
		Industries: []string{"I", "J", "39", "27"}, Regions: []string{"北京市", "上海市", "广东省", "浙江省", "江苏省"},
		Employees: [2]float64{200, 20000}, EngagementFull: 15, LearnedWeight: 0.4,
		LowFit: 30, MaxOverdueDays: 90, MaxTicketsPerMillion: 2,
	}
}

// Validate checks the weights and bounds.
func (c *Scorecard) Validate() error {
	sum := 0.0
	for f, w := range c.Weights {
		known := false
		for _, k := range Factors {
			known = known || k == f
		}
		if !known {
			return portrait.Errorf(portrait.EINVALID, "scorecard factor %q is not one of %s", f, strings.Join(Factors, ", "))
		}
		if w < 0 || math.IsNaN(w) {
			return portrait.Errorf(portrait.EINVALID, "scorecard weight of %s must be ≥ 0", f)
		}
		sum += w
	}
	if sum == 0 {
		return portrait.Errorf(portrait.EINVALID, "scorecard weights are all zero")
	}
	if c.LearnedWeight < 0 || c.LearnedWeight > 1 {
		return portrait.Errorf(portrait.EINVALID, "learned_weight must be within 0..1")
	}
	if c.Employees[0] > c.Employees[1] && c.Employees[1] > 0 {
		return portrait.Errorf(portrait.EINVALID, "employees band is reversed")
	}
	for _, code := range c.Industries {
		if _, err := LookupIndustry(code); err != nil {
			return err
		}
	}
	return nil
}

// Reason is one part of a score, in points of icp_score.
type Reason struct {
	Factor string  `json:"factor"`
	Points float64 `json:"points"`
	Text   string  `json:"text"`
	// Code and Params say Text for a reader in another language (the
	// console's words): industry_unknown, industry_target and
	// industry_not_target {code, name}, headcount_unknown, headcount
	// {employees, min, max}, region_unknown, region_target and
	// region_not_target {province}, engagement {value, full},
	// committee_full, committee_partial {pct, gaps: coverage gap codes},
	// learned {p, contributions}.
	Code   string         `json:"code,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// Flag marks a low-value or high-risk account (垃圾客户) and says why.
type Flag struct {
	Reasons []string `json:"reasons"`
	// Codes says each of Reasons (same order) as a code and parameters
	// for the console's words: low_fit {icp, min}, bad_payment {days,
	// limit}, service_cost {tickets, revenue}.
	Codes []FlagCode `json:"codes"`
}

// FlagCode is one flag reason as a code and its parameters.
type FlagCode struct {
	Code   string         `json:"code"`
	Params map[string]any `json:"params"`
}

// Score is an account's ICP score with its explanation.
type Score struct {
	ICP float64 `json:"icp_score"`
	// Fit is the scorecard's score, 0..100.
	Fit float64 `json:"fit_score"`
	// Learned is P(won) from the model trained on won/lost history.
	Learned *float64 `json:"learned_score,omitempty"`
	Reasons []Reason `json:"icp_reasons"`
	Flag    *Flag    `json:"flag,omitempty"`
}

// learned is a trained model with what explaining it needs.
type learned struct {
	model  *logit.Model
	means  []float64
	report *logit.Report
}

// FeatureNames are the learned model's inputs.
var FeatureNames = []string{"log_employees", "log_revenue", "engagement", "role_coverage", "decision_contact", "target_industry", "log_people"}

// norm is the weights in points (summing to 100), in Factors order,
// computed once per scorecard.
func (c *Scorecard) norm() *[5]float64 {
	c.normOnce.Do(func() {
		total := 0.0
		for _, w := range c.Weights {
			total += w
		}
		for i, f := range Factors {
			c.normW[i] = 100 * c.Weights[f] / total
		}
	})
	return &c.normW
}

type scoreCache struct {
	mu      sync.Mutex
	card    *Scorecard
	learned *learned
}

// SetScorecard replaces the scorecard.
func (m *Model) SetScorecard(c *Scorecard) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m.scores.mu.Lock()
	m.scores.card = c
	m.scores.mu.Unlock()
	return nil
}

// Scorecard returns the scorecard in use.
func (m *Model) Scorecard() *Scorecard {
	m.scores.mu.Lock()
	defer m.scores.mu.Unlock()
	if m.scores.card == nil {
		m.scores.card = DefaultScorecard()
	}
	return m.scores.card
}

func (m *Model) learnedModel() *learned {
	m.scores.mu.Lock()
	defer m.scores.mu.Unlock()
	return m.scores.learned
}

// refresh recomputes the derived values of the accounts that changed.
func (m *Model) refresh(card *Scorecard) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.accounts {
		if a.d.valid && a.d.ver == a.version {
			if a.d.card != card {
				m.static(a, card)
			}
			continue
		}
		c := m.coverage(a)
		a.d = derived{ver: a.version, valid: true, cov: c.Score, decision: c.Levels[LevelDecision] > 0,
			emp: a.Number("employees"), rev: a.Number("revenue"), prov: a.String("province")}
		if code := a.String("industry"); code != "" {
			if in, err := LookupIndustry(code); err == nil {
				a.d.ind, a.d.indOK = in, true
			}
		}
		m.static(a, card)
	}
}

func (c *Scorecard) targetOf(in Industry, ok bool) bool {
	if !ok {
		return false
	}
	for _, t := range c.Industries {
		t = strings.ToUpper(t)
		if t == in.Section || len(t) > 1 && strings.HasPrefix(in.Code, strings.TrimLeft(t, "ABCDEFGHIJKLMNOPQRST")) {
			return true
		}
	}
	return false
}

// features are the learned model's inputs for a (NaN when unknown); the
// derived values must be fresh.
func (m *Model) features(a *Account, card *Scorecard, now time.Time) []float64 {
	d := &a.d
	dec, tgt := 0.0, 0.0
	if d.decision {
		dec = 1
	}
	if card.targetOf(d.ind, d.indOK) {
		tgt = 1
	}
	return []float64{math.Log10(d.emp + 1), math.Log10(d.rev + 1), math.Log1p(a.Engagement.At(now)), d.cov, dec, tgt, math.Log1p(float64(len(a.Members)))}
}

// Train fits the learned score on the accounts with closed opportunities
// (won: any won; lost: only lost), holding a fifth of them out: the report's
// AUC is measured on accounts the model never saw.
func (m *Model) Train(seed uint64) (*logit.Report, error) {
	card := m.Scorecard()
	m.refresh(card)
	m.mu.RLock()
	now := m.Now()
	var x, y []float64
	for _, a := range m.sorted() {
		won, lost, _ := a.Won()
		if won+lost == 0 {
			continue
		}
		x = append(x, m.features(a, card, now)...)
		if won > 0 {
			y = append(y, 1)
		} else {
			y = append(y, 0)
		}
	}
	m.mu.RUnlock()
	d := len(FeatureNames)
	n := len(y)
	pos := 0
	for _, v := range y {
		pos += int(v)
	}
	if pos < 5 || n-pos < 5 {
		return nil, portrait.Errorf(portrait.EINVALID, "the learned score needs at least 5 won and 5 lost accounts (have %d won, %d lost)", pos, n-pos)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			x[i] = math.NaN()
		}
	}
	rep, err := logit.TrainEvaluate(x, n, d, y, FeatureNames, logit.EvalOptions{Options: logit.Options{Standardize: true}, Seed: seed})
	if err != nil {
		return nil, err
	}
	means := make([]float64, d)
	for j := range d {
		for i := range n {
			means[j] += x[i*d+j] // imputed in place by TrainEvaluate
		}
		means[j] /= float64(n)
	}
	m.scores.mu.Lock()
	m.scores.learned = &learned{model: rep.Model, means: means, report: rep}
	m.scores.mu.Unlock()
	return rep, nil
}

// Report is the learned score's last evaluation (nil before training).
func (m *Model) Report() *logit.Report {
	if l := m.learnedModel(); l != nil {
		return l.report
	}
	return nil
}

func (m *Model) sorted() []*Account {
	out := make([]*Account, 0, len(m.accounts))
	for _, a := range m.accounts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// score explains a's score; the caller holds the lock and refreshed.
func (m *Model) score(a *Account, now time.Time) Score {
	return m.scoreWith(a, now, m.Scorecard(), m.learnedModel(), true)
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// scoreWith scores a; without explain, it computes the numbers only (the
// ranking of 100,000 accounts builds reasons for the page it returns).
func (m *Model) scoreWith(a *Account, now time.Time, card *Scorecard, l *learned, explain bool) Score {
	var s Score
	d := &a.d
	// The five factors, each 0..1; reasons are written only when asked:
	// ranking 100,000 accounts writes them for one page.
	v := card.factors(d)
	emp := d.emp
	eng := a.Engagement.At(now)
	v[3] = clamp01(eng / math.Max(card.EngagementFull, 1e-9))
	w := card.norm()
	var pts [5]float64
	for i := range Factors {
		pts[i] = w[i] * v[i]
	}
	// Summed in the order quickICP uses: the static part, then engagement.
	s.Fit = pts[0] + pts[1] + pts[2] + pts[4] + pts[3]
	if explain {
		code, in, prov := a.String("industry"), d.ind, d.prov
		cov := m.coverage(a)
		texts := [5]string{}
		codes := [5]string{}
		params := [5]map[string]any{}
		switch {
		case code == "" || !d.indOK:
			texts[0], codes[0] = "industry unknown", "industry_unknown"
		case v[0] == 1:
			texts[0], codes[0] = fmt.Sprintf("target industry %s %s", in.Code, in.Name), "industry_target"
		default:
			texts[0], codes[0] = fmt.Sprintf("industry %s %s is not a target", in.Code, in.Name), "industry_not_target"
		}
		if codes[0] != "industry_unknown" {
			params[0] = map[string]any{"code": in.Code, "name": in.Name}
		}
		if math.IsNaN(emp) {
			texts[1], codes[1] = "headcount unknown (counted half)", "headcount_unknown"
		} else {
			texts[1], codes[1] = fmt.Sprintf("%.0f employees (ideal %.0f–%.0f)", emp, card.Employees[0], card.Employees[1]), "headcount"
			params[1] = map[string]any{"employees": math.Round(emp), "min": card.Employees[0], "max": card.Employees[1]}
		}
		switch {
		case prov == "":
			texts[2], codes[2] = "region unknown", "region_unknown"
		case v[2] == 1:
			texts[2], codes[2] = prov+" is a target region", "region_target"
		default:
			texts[2], codes[2] = prov+" is outside the target regions", "region_not_target"
		}
		if prov != "" {
			params[2] = map[string]any{"province": prov}
		}
		texts[3] = fmt.Sprintf("engagement %.1f of %.0f (visits, calls, meetings, proposals, fading by half in 90 days)", eng, card.EngagementFull)
		codes[3], params[3] = "engagement", map[string]any{"value": math.Round(eng*10) / 10, "full": card.EngagementFull}
		if len(cov.Gaps) == 0 {
			texts[4], codes[4] = "buying committee fully covered", "committee_full"
		} else {
			texts[4] = fmt.Sprintf("committee %.0f%% covered: %s", cov.Score*100, strings.Join(cov.Gaps, "; "))
			codes[4], params[4] = "committee_partial", map[string]any{"pct": math.Round(cov.Score * 100), "gaps": cov.GapCodes}
		}
		for i, f := range Factors {
			if card.Weights[f] > 0 {
				s.Reasons = append(s.Reasons, Reason{Factor: f, Points: pts[i], Text: texts[i], Code: codes[i], Params: params[i]})
			}
		}
	}
	s.ICP = s.Fit
	if l != nil && l.model != nil {
		x := m.features(a, card, now)
		for i, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				x[i] = l.means[i]
			}
		}
		p := l.model.Predict(x)
		s.Learned = &p
		s.ICP = combine(card, s.Fit, p)
		if explain {
			for i := range s.Reasons {
				s.Reasons[i].Points *= 1 - card.LearnedWeight
			}
			// The learned part, explained by the features that move this
			// account's log-odds most away from the average account.
			type contrib struct {
				name string
				v    float64
			}
			var cs []contrib
			for i, w := range l.model.Weights {
				cs = append(cs, contrib{FeatureNames[i], w * (x[i] - l.means[i])})
			}
			sort.Slice(cs, func(i, j int) bool { return math.Abs(cs[i].v) > math.Abs(cs[j].v) })
			var parts []string
			for _, c := range cs[:min(3, len(cs))] {
				parts = append(parts, fmt.Sprintf("%s %+.2f", c.name, c.v))
			}
			s.Reasons = append(s.Reasons, Reason{Factor: "learned", Points: card.LearnedWeight * 100 * p,
				Text: fmt.Sprintf("won/lost history: P(win) %.0f%%; log-odds vs the average account: %s", 100*p, strings.Join(parts, ", ")),
				Code: "learned", Params: map[string]any{"p": math.Round(100 * p), "contributions": strings.Join(parts, ", ")}})
		}
	}
	if s.Learned == nil {
		s.ICP = combine(card, s.Fit, math.NaN())
	}
	s.Fit = math.Round(s.Fit*10) / 10
	var flag []string
	var codes []FlagCode
	if s.ICP < card.LowFit {
		flag = append(flag, fmt.Sprintf("low fit: ICP %.0f < %.0f", s.ICP, card.LowFit))
		codes = append(codes, FlagCode{"low_fit", map[string]any{"icp": math.Round(s.ICP), "min": card.LowFit}})
	}
	if card.MaxOverdueDays > 0 && a.OverdueDays > card.MaxOverdueDays {
		flag = append(flag, fmt.Sprintf("bad payment history: %d days overdue (limit %d)", a.OverdueDays, card.MaxOverdueDays))
		codes = append(codes, FlagCode{"bad_payment", map[string]any{"days": a.OverdueDays, "limit": card.MaxOverdueDays}})
	}
	if rev := a.Number("revenue"); card.MaxTicketsPerMillion > 0 && a.Tickets > 0 {
		per := math.Inf(1)
		if !math.IsNaN(rev) && rev > 0 {
			per = float64(a.Tickets) / (rev / 1e6)
		}
		if sc := a.Number("service_cost"); !math.IsNaN(sc) && !math.IsNaN(rev) && rev > 0 && sc/rev > 0.2 {
			per = math.Inf(1)
		}
		if per > card.MaxTicketsPerMillion {
			flag = append(flag, fmt.Sprintf("excessive service cost: %d tickets on revenue %s", a.Tickets, money(rev)))
			var revenue any // unknown revenue (NaN) is null: JSON has no NaN
			if !math.IsNaN(rev) {
				revenue = rev
			}
			codes = append(codes, FlagCode{"service_cost", map[string]any{"tickets": a.Tickets, "revenue": revenue}})
		}
	}
	if len(flag) > 0 {
		s.Flag = &Flag{Reasons: flag, Codes: codes}
	}
	return s
}

func money(v float64) string {
	switch {
	case math.IsNaN(v):
		return "unknown"
	case v >= 1e8:
		return fmt.Sprintf("¥%.1f亿", v/1e8)
	case v >= 1e4:
		return fmt.Sprintf("¥%.0f万", v/1e4)
	}
	return fmt.Sprintf("¥%.0f", v)
}

// Row is one account of a ranked list.
type Row struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Industry   string   `json:"industry,omitempty"`
	Province   string   `json:"province,omitempty"`
	Employees  *float64 `json:"employees,omitempty"`
	Revenue    *float64 `json:"revenue,omitempty"`
	People     int      `json:"people"`
	Engagement float64  `json:"engagement"`
	Gaps       []string `json:"gaps,omitempty"`
	GapCodes   []Gap    `json:"gap_codes,omitempty"` // Gaps as codes (Coverage.GapCodes)
	Score
}

// Sorts of List.
const (
	SortICP     = "icp_score"
	SortName    = "name"
	SortRevenue = "revenue"
	SortUpdated = "updated"
)

// List filters and sorts the accounts and returns one page, with the total.
func (m *Model) List(f Filter, sortBy string, offset, limit int) ([]Row, int, error) {
	switch sortBy {
	case "", SortICP, "-" + SortICP, SortName, SortRevenue, SortUpdated:
	default:
		return nil, 0, portrait.Errorf(portrait.EINVALID, "sort must be icp_score, name, revenue or updated")
	}
	card, l := m.Scorecard(), m.learnedModel()
	m.refresh(card)
	m.mu.RLock()
	defer m.mu.RUnlock()
	now := m.Now()
	type item struct {
		a *Account
		s Score
	}
	items := make([]item, 0, len(m.accounts))
	for _, a := range m.accounts {
		var s Score
		switch {
		case f.Flagged != nil:
			s = m.scoreWith(a, now, card, l, false)
		case sortBy != SortName || f.MinICP > 0:
			s.ICP = m.quickICP(a, now, card, l)
		}
		if !f.match(m, a, &s) {
			continue
		}
		items = append(items, item{a, s})
	}
	less := func(i, j int) bool { return items[i].a.ID < items[j].a.ID }
	switch sortBy {
	case "", SortICP:
		less = func(i, j int) bool {
			if items[i].s.ICP != items[j].s.ICP {
				return items[i].s.ICP > items[j].s.ICP
			}
			return items[i].a.ID < items[j].a.ID
		}
	case "-" + SortICP:
		less = func(i, j int) bool {
			if items[i].s.ICP != items[j].s.ICP {
				return items[i].s.ICP < items[j].s.ICP
			}
			return items[i].a.ID < items[j].a.ID
		}
	case SortName:
		less = func(i, j int) bool { return items[i].a.Name() < items[j].a.Name() }
	case SortRevenue:
		less = func(i, j int) bool {
			ri, rj := items[i].a.Number("revenue"), items[j].a.Number("revenue")
			if math.IsNaN(ri) {
				ri = -1
			}
			if math.IsNaN(rj) {
				rj = -1
			}
			return ri > rj
		}
	case SortUpdated:
		less = func(i, j int) bool { return items[i].a.Updated.After(items[j].a.Updated) }
	}
	sort.SliceStable(items, less)
	total := len(items)
	if offset > total {
		offset = total
	}
	end := total
	if limit > 0 && offset+limit < end {
		end = offset + limit
	}
	rows := make([]Row, 0, end-offset)
	for _, it := range items[offset:end] {
		a := it.a
		r := Row{ID: a.ID, Name: a.Name(), Industry: a.String("industry"), Province: a.String("province"), People: len(a.Members),
			Engagement: math.Round(a.Engagement.At(now)*100) / 100, Score: m.scoreWith(a, now, card, l, true)}
		if e := a.Number("employees"); !math.IsNaN(e) {
			r.Employees = &e
		}
		if v := a.Number("revenue"); !math.IsNaN(v) {
			r.Revenue = &v
		}
		cov := m.coverage(a)
		r.Gaps, r.GapCodes = cov.Gaps, cov.GapCodes
		rows = append(rows, r)
	}
	return rows, total, nil
}

// combine blends the scorecard's fit with the learned P(won) (NaN: no
// model) and rounds to a tenth.
func combine(card *Scorecard, fit, p float64) float64 {
	icp := fit
	if !math.IsNaN(p) {
		icp = (1-card.LearnedWeight)*fit + card.LearnedWeight*100*p
	}
	return math.Round(icp*10) / 10
}

// static computes the parts of a's score that do not move with the clock
// (everything but engagement), for card; refresh keeps them.
func (m *Model) static(a *Account, card *Scorecard) {
	w, v := card.norm(), card.factors(&a.d)
	a.d.base = w[0]*v[0] + w[1]*v[1] + w[2]*v[2] + w[4]*v[4]
	a.d.card = card
}

// factors scores the static factors 0..1 (industry, size, region and
// coverage; engagement, index 3, is left 0 for the caller).
func (c *Scorecard) factors(d *derived) [5]float64 {
	var v [5]float64
	if c.targetOf(d.ind, d.indOK) {
		v[0] = 1
	}
	v[1] = 0.5 // headcount unknown: half
	if emp := d.emp; !math.IsNaN(emp) {
		lo, hi := c.Employees[0], c.Employees[1]
		switch {
		case emp < lo:
			v[1] = emp / lo
		case hi > 0 && emp > hi:
			v[1] = math.Sqrt(hi / emp)
		default:
			v[1] = 1
		}
	}
	for _, r := range c.Regions {
		if r == d.prov {
			v[2] = 1
		}
	}
	v[4] = d.cov
	return v
}

// quickICP is scoreWith(...).ICP from the kept static part: ranking
// 100,000 accounts costs one decay and, with a model, one prediction each.
func (m *Model) quickICP(a *Account, now time.Time, card *Scorecard, l *learned) float64 {
	w := card.norm()
	eng := a.Engagement.At(now)
	fit := a.d.base + w[3]*clamp01(eng/math.Max(card.EngagementFull, 1e-9))
	p := math.NaN()
	if l != nil && l.model != nil {
		x := m.features(a, card, now)
		for i, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				x[i] = l.means[i]
			}
		}
		p = l.model.Predict(x)
	}
	return combine(card, fit, p)
}

// RankOnly scores every account and sorts them by ICP, returning the ids:
// what `portrait bench accounts` times.
func (m *Model) RankOnly() []string {
	card, l := m.Scorecard(), m.learnedModel()
	m.refresh(card)
	m.mu.RLock()
	defer m.mu.RUnlock()
	now := m.Now()
	type item struct {
		id  string
		icp float64
	}
	items := make([]item, 0, len(m.accounts))
	for _, a := range m.accounts {
		items = append(items, item{a.ID, m.quickICP(a, now, card, l)})
	}
	slices.SortFunc(items, func(x, y item) int {
		if c := cmp.Compare(y.icp, x.icp); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}
