// Package bizmap computes the customer business map (客户经营地图): for each
// customer segment (rows) and each stage of the service path (columns),
// the customers who reached the stage, their share, revenue and CLV,
// satisfaction at that stage (NPS, CSAT), conversion to the next stage and
// the time it takes, the top needs and pain points, predicted behaviour
// (churn probability, expected purchases in 90 days) and recommended
// actions from declarative rules, each saying which figures triggered it.
//
// Every cell is an intersection of two bitmaps of the segment index: the
// segment's members and the profiles that reached the stage (the journey
// traits). Its figures read the index's dense columns, so a map over a
// million profiles takes a pass over each cell's members per figure.
package bizmap

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/segment"
)

// AllSegment is the row of the whole population.
const AllSegment = "all"

// Traits the figures read: the built-in revenue and the analyses' CLV and
// predictions (analytics/jobs writes them back).
const (
	TraitRevenue  = "revenue"
	TraitCLV      = "clv_12m"
	TraitChurn    = "churn_probability"
	TraitExpected = "expected_purchases_90d"
)

// MaxSegments and MaxTop bound a request.
const (
	MaxSegments = 50
	MaxTop      = 20
)

// Segments are the saved segments rows come from; segment.Service is one.
type Segments interface {
	Get(id string) (*segment.Status, error)
	MemberSet(id string) (*roaring.Bitmap, error)
	List() []*segment.Status
}

var _ Segments = (*segment.Service)(nil)

// Service computes maps.
type Service struct {
	Index    *segment.Index
	Segments Segments // nil: only the "all" row
	Journey  journey.Config
	Needs    needs.Config
	Now      portrait.Clock
	rules    []*compiledRule
}

// New returns a service with rules (nil: DefaultRules).
func New(ix *segment.Index, segs Segments, j journey.Config, n needs.Config, rules []Rule) (*Service, error) {
	if rules == nil {
		rules = DefaultRules()
	}
	cr, err := compileRules(rules)
	if err != nil {
		return nil, err
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &Service{Index: ix, Segments: segs, Journey: j, Needs: n, Now: time.Now, rules: cr}, nil
}

// Rules returns the rule set.
func (s *Service) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.Rule
	}
	return out
}

// Query selects the map's rows and columns.
type Query struct {
	Segments []string // segment ids, or AllSegment; empty: every saved segment
	Stages   []string // empty: every configured stage
	Lang     string   // zh or en, for labels
	Top      int      // needs and pain points per cell (default 5)
}

// Map is the grid.
type Map struct {
	Stages      []string    `json:"stages"`
	StageLabels []string    `json:"stage_labels"`
	Rows        []Row       `json:"rows"`
	Total       int         `json:"total"` // profiles indexed
	Rules       []string    `json:"rules"`
	TookMS      float64     `json:"took_ms"`
	AsOf        time.Time   `json:"as_of"`
	Legend      []FigureDoc `json:"legend,omitempty"`
	// MaskedFigures are the figures left out of every cell for this
	// caller (see Service.Mask); absent when none is.
	MaskedFigures []MaskedFigure `json:"masked_figures,omitempty"`
}

// FigureDoc explains a figure (for the console's legend).
type FigureDoc struct {
	Figure string `json:"figure"`
	Text   string `json:"text"`
}

// Row is a segment.
type Row struct {
	Segment    string `json:"segment"`
	Name       string `json:"name"`
	Customers  int    `json:"customers"`
	Expression string `json:"expression,omitempty"`
	Cells      []Cell `json:"cells"`
}

// Count is a need, pain point or channel in a cell.
type Count struct {
	Key        string   `json:"key"`
	Label      string   `json:"label"`
	Customers  int      `json:"customers"`
	Share      float64  `json:"share"`
	Conversion *float64 `json:"conversion,omitempty"` // channels: to the next stage
}

// Cell is a segment at a stage. Figures unknown for the cell are null.
type Cell struct {
	Stage                string   `json:"stage"`
	Customers            int      `json:"customers"` // reached the stage
	Share                float64  `json:"share"`     // of the segment
	Current              int      `json:"current"`   // in the stage now
	Revenue              *float64 `json:"revenue"`   // null only when masked
	CLV                  *float64 `json:"clv"`       // mean 12-month CLV of those with one
	NPS                  *float64 `json:"nps"`
	NPSResponses         int      `json:"nps_responses"`
	CSAT                 *float64 `json:"csat"`
	CSATResponses        int      `json:"csat_responses"`
	Conversion           *float64 `json:"conversion"` // to the next stage
	DropOff              *float64 `json:"drop_off"`
	MedianDaysToNext     *float64 `json:"median_days_to_next"`
	Needs                []Count  `json:"needs"`
	PainPoints           []Count  `json:"pain_points"`
	Channels             []Count  `json:"channels"`
	ChurnProbability     *float64 `json:"churn_probability"`
	ExpectedPurchases90d *float64 `json:"expected_purchases_90d"`
	Actions              []Action `json:"actions"`
	// SegmentExpression opens the cell as a segment of its members (empty
	// when the row's segment is a condition tree: POST /v1/map/segments
	// saves it either way).
	SegmentExpression string `json:"segment_expression,omitempty"`
}

func ptr(f float64) *float64 { return &f }

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// rowScope is a row's members and how to name it.
type rowScope struct {
	id, name, expr string
	cond           *segment.Condition
	members        *roaring.Bitmap
}

func (s *Service) rows(ids []string) ([]rowScope, error) {
	if len(ids) == 0 {
		if s.Segments != nil {
			for _, st := range s.Segments.List() {
				ids = append(ids, st.ID)
			}
		}
		if len(ids) == 0 {
			ids = []string{AllSegment}
		}
		if len(ids) > MaxSegments {
			ids = ids[:MaxSegments]
		}
	}
	if len(ids) > MaxSegments {
		return nil, portrait.Errorf(portrait.EINVALID, "at most %d segments in one map, not %d", MaxSegments, len(ids))
	}
	var out []rowScope
	for _, id := range ids {
		if id == AllSegment {
			out = append(out, rowScope{id: AllSegment, name: "all", members: s.Index.Scope(nil, "")})
			continue
		}
		if s.Segments == nil {
			return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
		}
		st, err := s.Segments.Get(id)
		if err != nil {
			return nil, err
		}
		m, err := s.Segments.MemberSet(id)
		if err != nil {
			return nil, err
		}
		out = append(out, rowScope{id: id, name: st.Name, expr: st.Expression, cond: st.Condition, members: m})
	}
	return out, nil
}

func (s *Service) stages(names []string) ([]string, error) {
	if len(names) == 0 {
		return s.Journey.Names(), nil
	}
	for _, n := range names {
		if s.Journey.Index(n) < 0 {
			return nil, portrait.Errorf(portrait.EINVALID, "stage %q is not one of %s", n, strings.Join(s.Journey.Names(), ", "))
		}
	}
	return names, nil
}

// stageSets are the profiles that reached each stage and those in it now.
func (s *Service) stageSets(now time.Time) (reached, current map[string]*roaring.Bitmap, err error) {
	reached, current = map[string]*roaring.Bitmap{}, map[string]*roaring.Bitmap{}
	for _, st := range s.Journey.Names() {
		r, err := segment.CompileExpr(journey.ReachedExpr(st))
		if err != nil {
			return nil, nil, err
		}
		c, err := segment.CompileExpr(fmt.Sprintf("%s == %q", journey.TraitStage, st))
		if err != nil {
			return nil, nil, err
		}
		reached[st], current[st] = s.Index.Evaluate(r, now), s.Index.Evaluate(c, now)
	}
	return reached, current, nil
}

// Build computes the map.
func (s *Service) Build(q Query) (*Map, error) {
	start := time.Now()
	now := s.Now()
	stages, err := s.stages(q.Stages)
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(q.Segments)
	if err != nil {
		return nil, err
	}
	if q.Top <= 0 {
		q.Top = 5
	}
	q.Top = min(q.Top, MaxTop)
	reached, current, err := s.stageSets(now)
	if err != nil {
		return nil, err
	}
	m := &Map{Stages: stages, Rows: make([]Row, 0, len(rows)), Total: s.Index.Len(), AsOf: now.UTC()}
	for _, st := range stages {
		m.StageLabels = append(m.StageLabels, s.Journey.Stages[s.Journey.Index(st)].Label(q.Lang))
	}
	for _, r := range s.rules {
		m.Rules = append(m.Rules, r.Name)
	}
	for _, r := range rows {
		m.Rows = append(m.Rows, Row{Segment: r.id, Name: r.name, Customers: int(r.members.GetCardinality()), Expression: r.expr, Cells: make([]Cell, len(stages))})
	}
	// Cells are independent reads of the index (under its read lock): they
	// are computed on every core, each worker taking the next cell.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(rows)*len(stages)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(rows)*len(stages) {
					return
				}
				i, j := k/len(stages), k%len(stages)
				m.Rows[i].Cells[j] = s.cell(rows[i], stages[j], reached, current, q)
			}
		}()
	}
	wg.Wait()
	m.TookMS = round(float64(time.Since(start).Microseconds())/1000, 2)
	return m, nil
}

func (s *Service) cell(r rowScope, stage string, reached, current map[string]*roaring.Bitmap, q Query) Cell {
	ix := s.Index
	members := roaring.And(r.members, reached[stage])
	n := int(members.GetCardinality())
	size := int(r.members.GetCardinality())
	c := Cell{Stage: stage, Customers: n, Needs: []Count{}, PainPoints: []Count{}, Channels: []Count{}}
	if size > 0 {
		c.Share = round(float64(n)/float64(size), 4)
	}
	c.Current = int(r.members.AndCardinality(current[stage]))
	c.SegmentExpression = cellExpression(r, stage)
	// every numeric figure of the cell in one pass over its members
	next := ""
	if i := s.Journey.Index(stage); i+1 < len(s.Journey.Stages) {
		next = s.Journey.Stages[i+1].Name
	}
	names := []string{TraitRevenue, TraitCLV, TraitChurn, TraitExpected, journey.NPSAt(stage), journey.CSATAt(stage)}
	want := []bool{false, false, false, false, true, false}
	if next != "" {
		names, want = append(names, journey.DaysTo(stage, next)), append(want, true)
	}
	var st []segment.NumericStat
	if n > 0 {
		st = ix.NumericStats(names, members, want)
	} else {
		st = make([]segment.NumericStat, len(names))
	}
	mean := func(k, digits int) *float64 {
		if st[k].N == 0 {
			return nil
		}
		return ptr(round(st[k].Sum/float64(st[k].N), digits))
	}
	c.Revenue = ptr(round(st[0].Sum, 2))
	c.CLV = mean(1, 2)
	c.ChurnProbability = mean(2, 4)
	c.ExpectedPurchases90d = mean(3, 4)
	if k := st[4].N; k > 0 {
		var pro, det int
		for _, v := range st[4].Values {
			switch {
			case v >= 9:
				pro++
			case v <= 6:
				det++
			}
		}
		c.NPS, c.NPSResponses = ptr(round(100*float64(pro-det)/float64(k), 1)), k
	}
	if k := st[5].N; k > 0 {
		c.CSAT, c.CSATResponses = ptr(round(st[5].Sum/float64(k), 2)), k
	}
	var converted *roaring.Bitmap
	if next != "" && n > 0 {
		converted = roaring.And(members, reached[next])
		conv := round(float64(converted.GetCardinality())/float64(n), 4)
		c.Conversion, c.DropOff = ptr(conv), ptr(round(1-conv, 4))
		if st[6].N > 0 {
			c.MedianDaysToNext = ptr(round(median(st[6].Values), 2))
		}
	}
	counts := func(trait string, within *roaring.Bitmap, label func(string) string) []Count {
		out := []Count{}
		if n == 0 {
			return out
		}
		bd, err := ix.Breakdown(segment.Dim{Kind: segment.DimTrait, Trait: trait}, within, "", q.Top)
		if err != nil {
			return out
		}
		for _, g := range bd.Groups {
			out = append(out, Count{Key: g.Key, Label: label(g.Key), Customers: g.Count, Share: round(float64(g.Count)/float64(n), 4)})
		}
		return out
	}
	needLabel := func(k string) string { return s.Needs.Label(k, q.Lang) }
	c.Needs = counts(needs.TraitNeeds, members, needLabel)
	c.PainPoints = counts(needs.TraitPainPoints, members, needLabel)
	c.Channels = counts(journey.ChannelOf(stage), members, func(k string) string { return k })
	if converted != nil && len(c.Channels) > 0 {
		// conversion by channel: of those who reached the stage through
		// it, the share who reached the next one
		if bd, err := ix.Breakdown(segment.Dim{Kind: segment.DimTrait, Trait: journey.ChannelOf(stage)}, converted, "", 1000); err == nil {
			conv := map[string]int{}
			for _, g := range bd.Groups {
				conv[g.Key] = g.Count
			}
			for i, ch := range c.Channels {
				c.Channels[i].Conversion = ptr(round(float64(conv[ch.Key])/float64(ch.Customers), 4))
			}
		}
	}
	env := map[string]any{"customers": c.Customers, "share": c.Share, "current": c.Current, "revenue": *c.Revenue,
		"segment_size": size, "clv": deref(c.CLV), "nps": deref(c.NPS), "csat": deref(c.CSAT), "conversion": deref(c.Conversion),
		"drop_off": deref(c.DropOff), "median_days_to_next": deref(c.MedianDaysToNext), "churn_probability": deref(c.ChurnProbability),
		"expected_purchases_90d": deref(c.ExpectedPurchases90d), "top_need": nil, "top_need_share": 0.0, "top_pain": nil,
		"top_pain_share": 0.0, "pain_share": 0.0}
	var needText, painText string
	if len(c.Needs) > 0 {
		env["top_need"], env["top_need_share"], needText = c.Needs[0].Key, c.Needs[0].Share, c.Needs[0].Label
	}
	if len(c.PainPoints) > 0 {
		env["top_pain"], env["top_pain_share"], painText = c.PainPoints[0].Key, c.PainPoints[0].Share, c.PainPoints[0].Label
		if bd, err := ix.Breakdown(segment.Dim{Kind: segment.DimTrait, Trait: needs.TraitPainPoints}, members, "", 1); err == nil && bd.Total > 0 {
			env["pain_share"] = round(float64(bd.Total-bd.Missing.Count)/float64(n), 4)
		}
	}
	c.Actions = evaluate(s.rules, stage, env, needText, painText, q.Lang)
	return c
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// cellExpression is the segment expression of a cell's members, when the
// row is defined by an expression (or is everyone).
func cellExpression(r rowScope, stage string) string {
	switch {
	case r.id == AllSegment:
		return journey.ReachedExpr(stage)
	case r.expr != "":
		return "(" + r.expr + ") && " + journey.ReachedExpr(stage)
	}
	return ""
}

// CellDefinition is a saved-segment definition of a cell's members: the
// row's expression or condition tree and the stage reached.
func (s *Service) CellDefinition(segID, stage, name string) (*segment.Definition, error) {
	if _, err := s.stages([]string{stage}); err != nil {
		return nil, err
	}
	rows, err := s.rows([]string{segID})
	if err != nil {
		return nil, err
	}
	r := rows[0]
	if name == "" {
		name = r.name + " · " + stage
	}
	d := &segment.Definition{Name: name, Description: fmt.Sprintf("customer business map cell: segment %s, stage %s", r.id, stage)}
	if e := cellExpression(r, stage); e != "" {
		d.Expression = e
		return d, nil
	}
	raw, _ := json.Marshal(stage)
	d.Condition = &segment.Condition{All: []segment.Condition{*r.cond, {Trait: journey.TraitReached, Op: "contains", Value: raw}}}
	return d, nil
}

// Members pages the members of a cell (profile ids in index order) and
// gives their number.
func (s *Service) Members(segID, stage string, offset, limit int) ([]string, int, error) {
	if _, err := s.stages([]string{stage}); err != nil {
		return nil, 0, err
	}
	rows, err := s.rows([]string{segID})
	if err != nil {
		return nil, 0, err
	}
	reached, _, err := s.stageSets(s.Now())
	if err != nil {
		return nil, 0, err
	}
	m := roaring.And(rows[0].members, reached[stage])
	return s.Index.IDs(m, offset, limit), int(m.GetCardinality()), nil
}
