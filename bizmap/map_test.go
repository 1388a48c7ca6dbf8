package bizmap_test

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/bizmap"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

var (
	stages   = []string{"consult", "purchase", "after_sales"}
	cities   = []string{"上海市", "北京市", "杭州市"}
	needKeys = []string{"electronics", "beauty", "wealth_management", "risk_protection"}
	pains    = []string{"delivery", "quality", "service"}
	channels = []string{"web", "app", "wechat", "store"}
)

// gen makes profile i with journey, needs and prediction traits drawn at
// random, some of them missing, as the enrichers and analyses leave them.
func gen(i int, withPains bool) *portrait.Profile {
	r := rand.New(rand.NewPCG(uint64(i), 11))
	tr := map[string]portrait.Trait{}
	set := func(k string, v any) { tr[k] = portrait.Trait{Value: v, Source: "test"} }
	set("city", cities[r.IntN(len(cities))])
	set("revenue", float64(r.IntN(2000)))
	if r.Float64() < 0.6 {
		set("clv_12m", float64(r.IntN(5000))/10)
	}
	if r.Float64() < 0.7 {
		set("churn_probability", float64(r.IntN(1000))/1000)
		set("expected_purchases_90d", float64(r.IntN(300))/100)
	}
	var reached []any
	for _, s := range stages {
		if r.Float64() < 0.6 {
			reached = append(reached, s)
			set(journey.ChannelOf(s), channels[r.IntN(len(channels))])
			if r.Float64() < 0.5 {
				set(journey.NPSAt(s), float64(r.IntN(11)))
			}
			if r.Float64() < 0.5 {
				set(journey.CSATAt(s), float64(1+r.IntN(5)))
			}
		}
	}
	for k := 0; k+1 < len(stages); k++ {
		if slices.Contains(reached, any(stages[k])) && slices.Contains(reached, any(stages[k+1])) {
			set(journey.DaysTo(stages[k], stages[k+1]), float64(r.IntN(60)))
		}
	}
	if len(reached) > 0 {
		set(journey.TraitReached, reached)
		set(journey.TraitStage, reached[r.IntN(len(reached))])
	}
	var ns []any
	for _, n := range needKeys {
		if r.Float64() < 0.3 {
			ns = append(ns, n)
		}
	}
	if len(ns) > 0 {
		set(needs.TraitNeeds, ns)
	}
	if withPains {
		var ps []any
		for _, p := range pains {
			if r.Float64() < 0.25 {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			set(needs.TraitPainPoints, ps)
		}
	}
	return &portrait.Profile{ID: "p" + strconv.Itoa(i), Traits: tr}
}

type world struct {
	ix       *segment.Index
	segs     *segment.Service
	m        *bizmap.Service
	profiles []*portrait.Profile
}

func build(t *testing.T, n int, withPains bool, rules []bizmap.Rule) *world {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{ix: segment.NewIndex()}
	for i := range n {
		p := gen(i, withPains)
		w.profiles = append(w.profiles, p)
		w.ix.Upsert(p, nil)
	}
	w.segs = segment.NewService(w.ix, db)
	w.segs.Now = func() time.Time { return now }
	w.m, err = bizmap.New(w.ix, w.segs, journey.DefaultConfig(), needs.DefaultConfig(), rules)
	if err != nil {
		t.Fatal(err)
	}
	w.m.Now = func() time.Time { return now }
	return w
}

func (w *world) segment(t *testing.T, d *segment.Definition) string {
	t.Helper()
	st, err := w.segs.Create(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

func num(p *portrait.Profile, k string) (float64, bool) {
	v, ok := p.Traits[k].Value.(float64)
	return v, ok
}

func has(p *portrait.Profile, k string, e string) bool {
	l, _ := p.Traits[k].Value.([]any)
	return slices.Contains(l, any(e))
}

func round(f float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(f*p) / p
}

func eqPtr(a *float64, b float64, ok bool) bool {
	if !ok {
		return a == nil
	}
	return a != nil && *a == b
}

// plainCell computes a cell by looking at every profile.
func plainCell(t *testing.T, members []*portrait.Profile, stage, next string, got bizmap.Cell) {
	t.Helper()
	var in []*portrait.Profile
	for _, p := range members {
		if has(p, journey.TraitReached, stage) {
			in = append(in, p)
		}
	}
	if got.Customers != len(in) {
		t.Fatalf("%s: customers %d, plain %d", stage, got.Customers, len(in))
	}
	if want := round(float64(len(in))/float64(len(members)), 4); got.Share != want {
		t.Errorf("%s: share %v, plain %v", stage, got.Share, want)
	}
	mean := func(k string, d int) (float64, bool) {
		s, n := 0.0, 0
		for _, p := range in {
			if v, ok := num(p, k); ok {
				s += v
				n++
			}
		}
		if n == 0 {
			return 0, false
		}
		return round(s/float64(n), d), true
	}
	rev := 0.0
	cur, conv, pro, det, nps := 0, 0, 0, 0, 0
	var days []float64
	for _, p := range in {
		v, _ := num(p, "revenue")
		rev += v
		if next != "" && has(p, journey.TraitReached, next) {
			conv++
		}
		if x, ok := num(p, journey.NPSAt(stage)); ok {
			nps++
			if x >= 9 {
				pro++
			} else if x <= 6 {
				det++
			}
		}
		if d, ok := num(p, journey.DaysTo(stage, next)); ok && next != "" {
			days = append(days, d)
		}
	}
	for _, p := range members {
		if p.Traits[journey.TraitStage].Value == stage {
			cur++
		}
	}
	if got.Current != cur {
		t.Errorf("%s: current %d, plain %d", stage, got.Current, cur)
	}
	if got.Revenue == nil || round(rev, 2) != *got.Revenue {
		t.Errorf("%s: revenue %v, plain %v", stage, got.Revenue, rev)
	}
	for name, c := range map[string]struct {
		got *float64
		k   string
		d   int
	}{"clv": {got.CLV, "clv_12m", 2}, "churn": {got.ChurnProbability, "churn_probability", 4}, "expected": {got.ExpectedPurchases90d, "expected_purchases_90d", 4},
		"csat": {got.CSAT, journey.CSATAt(stage), 2}} {
		want, ok := mean(c.k, c.d)
		if !eqPtr(c.got, want, ok) {
			t.Errorf("%s: %s = %v, plain %v (%v)", stage, name, c.got, want, ok)
		}
	}
	if !eqPtr(got.NPS, round(100*float64(pro-det)/float64(max(nps, 1)), 1), nps > 0) {
		t.Errorf("%s: nps = %v, plain %d promoters %d detractors of %d", stage, got.NPS, pro, det, nps)
	}
	if next == "" {
		if got.Conversion != nil {
			t.Errorf("%s: conversion %v from the last stage", stage, *got.Conversion)
		}
	} else if !eqPtr(got.Conversion, round(float64(conv)/float64(len(in)), 4), len(in) > 0) {
		t.Errorf("%s: conversion %v, plain %d/%d", stage, got.Conversion, conv, len(in))
	}
	if len(days) > 0 {
		sort.Float64s(days)
		med := days[len(days)/2]
		if len(days)%2 == 0 {
			med = (days[len(days)/2-1] + days[len(days)/2]) / 2
		}
		if !eqPtr(got.MedianDaysToNext, med, true) {
			t.Errorf("%s: median days %v, plain %v", stage, got.MedianDaysToNext, med)
		}
	}
	counts := func(k string, keys []string) map[string]int {
		out := map[string]int{}
		for _, p := range in {
			for _, e := range keys {
				if has(p, k, e) {
					out[e]++
				}
			}
		}
		return out
	}
	wantNeeds := counts(needs.TraitNeeds, needKeys)
	for _, c := range got.Needs {
		if wantNeeds[c.Key] != c.Customers {
			t.Errorf("%s: need %s %d, plain %d", stage, c.Key, c.Customers, wantNeeds[c.Key])
		}
	}
	if len(got.Needs) != min(5, len(wantNeeds)) {
		t.Errorf("%s: %d needs, plain %d", stage, len(got.Needs), len(wantNeeds))
	}
	wantPains := counts(needs.TraitPainPoints, pains)
	for _, c := range got.PainPoints {
		if wantPains[c.Key] != c.Customers {
			t.Errorf("%s: pain %s %d, plain %d", stage, c.Key, c.Customers, wantPains[c.Key])
		}
	}
	if len(got.PainPoints) != len(wantPains) {
		t.Errorf("%s: %d pain points, plain %d", stage, len(got.PainPoints), len(wantPains))
	}
	chans := map[string]int{}
	for _, p := range in {
		if c, ok := p.Traits[journey.ChannelOf(stage)].Value.(string); ok {
			chans[c]++
		}
	}
	for _, c := range got.Channels {
		if chans[c.Key] != c.Customers {
			t.Errorf("%s: channel %s %d, plain %d", stage, c.Key, c.Customers, chans[c.Key])
		}
	}
}

func TestCellsMatchPlainComputation(t *testing.T) {
	w := build(t, 2000, true, nil)
	sh := w.segment(t, &segment.Definition{Name: "上海", Expression: `traits.city == "上海市"`})
	rich := w.segment(t, &segment.Definition{Name: "rich", Condition: &segment.Condition{Trait: "revenue", Op: ">=", Value: []byte("1000")}})
	m, err := w.m.Build(bizmap.Query{Segments: []string{sh, rich, bizmap.AllSegment}, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Stages, stages) || len(m.Rows) != 3 {
		t.Fatalf("stages %v, rows %d", m.Stages, len(m.Rows))
	}
	filters := []func(p *portrait.Profile) bool{
		func(p *portrait.Profile) bool { return p.Traits["city"].Value == "上海市" },
		func(p *portrait.Profile) bool { v, _ := num(p, "revenue"); return v >= 1000 },
		func(p *portrait.Profile) bool { return true },
	}
	for i, row := range m.Rows {
		var members []*portrait.Profile
		for _, p := range w.profiles {
			if filters[i](p) {
				members = append(members, p)
			}
		}
		if row.Customers != len(members) {
			t.Fatalf("row %s: %d customers, plain %d", row.Name, row.Customers, len(members))
		}
		for k, c := range row.Cells {
			next := ""
			if k+1 < len(stages) {
				next = stages[k+1]
			}
			plainCell(t, members, stages[k], next, c)
		}
	}
	// Only some stages, in the asked order.
	m2, err := w.m.Build(bizmap.Query{Segments: []string{sh}, Stages: []string{"purchase"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.Rows[0].Cells) != 1 || m2.Rows[0].Cells[0].Customers != m.Rows[0].Cells[1].Customers {
		t.Errorf("stages=purchase: %+v", m2.Rows[0].Cells)
	}
	// Every cell opens as a segment of exactly its members, for a row
	// defined by an expression and one defined by a condition tree.
	for _, seg := range []string{sh, rich} {
		for k, st := range stages {
			d, err := w.m.CellDefinition(seg, st, "")
			if err != nil {
				t.Fatal(err)
			}
			cs, err := w.segs.Create(context.Background(), d)
			if err != nil {
				t.Fatalf("cell %s/%s as a segment: %v", seg, st, err)
			}
			row := m.Rows[slices.IndexFunc(m.Rows, func(r bizmap.Row) bool { return r.Segment == seg })]
			if cs.Size != row.Cells[k].Customers {
				t.Errorf("cell %s/%s saved as a segment has %d members, the cell %d", seg, st, cs.Size, row.Cells[k].Customers)
			}
			ids, total, err := w.m.Members(seg, st, 0, 10)
			if err != nil || total != row.Cells[k].Customers || len(ids) != min(10, total) {
				t.Errorf("members of %s/%s: %d of %d, %v", seg, st, len(ids), total, err)
			}
		}
	}
	if _, err := w.m.Build(bizmap.Query{Stages: []string{"nope"}}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("unknown stage: %v", err)
	}
	if _, err := w.m.Build(bizmap.Query{Segments: []string{"nope"}}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("unknown segment: %v", err)
	}
}

// Without after-sales events there are no pain points, and no rule that
// reads them fires.
func TestNoAfterSalesNoPainPoints(t *testing.T) {
	w := build(t, 500, false, nil)
	m, err := w.m.Build(bizmap.Query{Segments: []string{bizmap.AllSegment}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Rows[0].Cells {
		if len(c.PainPoints) != 0 {
			t.Errorf("%s: pain points %v without after-sales events", c.Stage, c.PainPoints)
		}
		for _, a := range c.Actions {
			if a.Rule == "fix_pain_point" {
				t.Errorf("%s: fix_pain_point fired without pain points", c.Stage)
			}
		}
	}
}

// A rule fires where its figures say so, and names them.
func TestRulesNameTheirFigures(t *testing.T) {
	rules := []bizmap.Rule{
		{Name: "big", When: "customers >= 500 && conversion != nil && conversion < 0.7", Action: "look", LabelEn: "Look at {need}", LabelZh: "看看{need}"},
		{Name: "never", When: "customers < 0", Action: "x"},
	}
	w := build(t, 1500, true, rules)
	m, err := w.m.Build(bizmap.Query{Segments: []string{bizmap.AllSegment}, Lang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Rows[0].Cells {
		fired := len(c.Actions) == 1
		want := c.Customers >= 500 && c.Conversion != nil && *c.Conversion < 0.7
		if fired != want {
			t.Fatalf("%s: fired %v, want %v (customers %d, conversion %v)", c.Stage, fired, want, c.Customers, c.Conversion)
		}
		if fired {
			a := c.Actions[0]
			if a.Figures["customers"] != c.Customers || a.Figures["conversion"] != *c.Conversion || len(a.Figures) != 2 {
				t.Errorf("%s: figures %v", c.Stage, a.Figures)
			}
			if a.Label != "看看"+c.Needs[0].Label {
				t.Errorf("label %q, need %q", a.Label, c.Needs[0].Label)
			}
		}
	}
	for _, bad := range [][]bizmap.Rule{
		{{Name: "x", When: "customers >", Action: "a"}},
		{{Name: "x", When: "cusotmers > 1", Action: "a"}},
		{{Name: "x", When: "nps > 10", Action: "a"}}, // fails on unknown figures
		{{Name: "Bad", When: "true", Action: "a"}},
	} {
		if _, err := bizmap.New(w.ix, w.segs, journey.DefaultConfig(), needs.DefaultConfig(), bad); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("rule %+v: err %v, want invalid", bad[0], err)
		}
	}
}

func TestXLSX(t *testing.T) {
	w := build(t, 300, true, nil)
	sh := w.segment(t, &segment.Definition{Name: "=cmd()", Expression: `traits.city == "上海市"`})
	m, err := w.m.Build(bizmap.Query{Segments: []string{sh}, Lang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bizmap.WriteXLSX(m, "zh", &buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows("经营地图")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1][0] != "'=cmd()" || rows[1][2] != strconv.Itoa(m.Rows[0].Cells[0].Customers) {
		t.Errorf("grid rows %v", rows)
	}
	cells, err := f.GetRows("单元格")
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 1+len(stages) || cells[1][1] != "咨询" {
		t.Errorf("cells sheet %v", cells)
	}
}
