// Package rfm scores customers by recency, frequency and monetary value over
// a date range, assigns the named RFM segments used by marketing teams, and
// produces the aggregates the console charts.
package rfm

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Purchase is one order (or order line) of a customer.
type Purchase struct {
	Customer string
	Order    string // optional: lines of one order count once for frequency
	Time     time.Time
	Amount   float64
}

// Options choose the window and the scoring.
type Options struct {
	// From and To bound the purchases considered (From inclusive, To
	// exclusive); zero values mean unbounded.
	From, To time.Time
	// AsOf is the date recency is measured to; zero means To, or the day
	// after the last purchase when To is zero.
	AsOf time.Time
	// Bins is the number of score levels (5, quintiles, when zero).
	Bins int
}

// Customer holds one customer's RFM values and scores.
type Customer struct {
	ID          string  `json:"id"`
	RecencyDays float64 `json:"recency_days"` // days from the last purchase to AsOf
	Frequency   int     `json:"frequency"`    // distinct orders (or purchase days without order ids)
	Monetary    float64 `json:"monetary"`     // total spend in the window
	R           int     `json:"r"`
	F           int     `json:"f"`
	M           int     `json:"m"`
	Cell        string  `json:"cell"` // e.g. "545"
	Segment     string  `json:"segment"`
}

// Result is an RFM analysis.
type Result struct {
	From      time.Time   `json:"from"`
	To        time.Time   `json:"to"`
	AsOf      time.Time   `json:"as_of"`
	Customers []Customer  `json:"customers"`
	Segments  []Segment   `json:"segments"` // chart: customers and revenue per segment
	Grid      [][]GridBox `json:"grid"`     // chart: R (rows, 1..bins) × F (columns)
	// Excluded counts purchases outside the window or with a non-positive
	// amount (returns and cancellations), which are left out.
	Excluded int `json:"excluded"`
}

// Segment is one bar of the segment chart.
type Segment struct {
	Name      string  `json:"name"`
	Customers int     `json:"customers"`
	Share     float64 `json:"share"`
	Revenue   float64 `json:"revenue"`
}

// GridBox is one cell of the R × F heat map.
type GridBox struct {
	R            int     `json:"r"`
	F            int     `json:"f"`
	Customers    int     `json:"customers"`
	MeanMonetary float64 `json:"mean_monetary"`
}

// Analyze computes RFM values and scores. Scores are quantile ranks: with
// bins b, a customer's score is 1 + ⌊b·(number of customers with a strictly
// worse value)/n⌋, so equal values always share a score and no score depends
// on input order. Recency is reversed: the most recent buyers score highest.
func Analyze(ps []Purchase, opt Options) (*Result, error) {
	bins := opt.Bins
	if bins == 0 {
		bins = 5
	}
	if bins < 2 || bins > 10 {
		return nil, portrait.Errorf(portrait.EINVALID, "score levels must be 2..10, got %d", bins)
	}
	if !opt.From.IsZero() && !opt.To.IsZero() && !opt.From.Before(opt.To) {
		return nil, portrait.Errorf(portrait.EINVALID, "empty date range: from %s is not before to %s", opt.From.Format(time.DateOnly), opt.To.Format(time.DateOnly))
	}
	type acc struct {
		last   time.Time
		orders map[string]bool
		money  float64
	}
	by := map[string]*acc{}
	res := &Result{From: opt.From, To: opt.To}
	var latest time.Time
	for _, p := range ps {
		if math.IsNaN(p.Amount) || math.IsInf(p.Amount, 0) {
			return nil, portrait.Errorf(portrait.EINVALID, "customer %q has a purchase with amount %v", p.Customer, p.Amount)
		}
		if p.Customer == "" || p.Amount <= 0 || (!opt.From.IsZero() && p.Time.Before(opt.From)) || (!opt.To.IsZero() && !p.Time.Before(opt.To)) {
			res.Excluded++
			continue
		}
		a := by[p.Customer]
		if a == nil {
			a = &acc{orders: map[string]bool{}}
			by[p.Customer] = a
		}
		if p.Time.After(a.last) {
			a.last = p.Time
		}
		if p.Time.After(latest) {
			latest = p.Time
		}
		key := p.Order
		if key == "" {
			key = p.Time.UTC().Format(time.DateOnly)
		}
		a.orders[key] = true
		a.money += p.Amount
	}
	if len(by) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no purchases with a positive amount in the date range")
	}
	asOf := opt.AsOf
	if asOf.IsZero() {
		asOf = opt.To
	}
	if asOf.IsZero() {
		y, m, d := latest.UTC().Date()
		asOf = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	}
	res.AsOf = asOf
	cs := make([]Customer, 0, len(by))
	for id, a := range by {
		cs = append(cs, Customer{ID: id, RecencyDays: asOf.Sub(a.last).Hours() / 24, Frequency: len(a.orders), Monetary: a.money})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	r := make([]float64, len(cs))
	f := make([]float64, len(cs))
	m := make([]float64, len(cs))
	for i, c := range cs {
		r[i], f[i], m[i] = -c.RecencyDays, float64(c.Frequency), c.Monetary
	}
	rs, fs, ms := scores(r, bins), scores(f, bins), scores(m, bins)
	for i := range cs {
		c := &cs[i]
		c.R, c.F, c.M = rs[i], fs[i], ms[i]
		c.Cell = fmt.Sprintf("%d%d%d", c.R, c.F, c.M)
		c.Segment = SegmentName(c.R, c.F, bins)
	}
	res.Customers = cs
	res.Segments, res.Grid = charts(cs, bins)
	return res, nil
}

// scores ranks values (higher is better) into 1..bins.
func scores(v []float64, bins int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	out := make([]int, len(v))
	n := len(v)
	for i := 0; i < n; {
		j := i
		for j < n && v[idx[j]] == v[idx[i]] {
			j++
		}
		s := 1 + i*bins/n // i values are strictly smaller
		for k := i; k < j; k++ {
			out[idx[k]] = s
		}
		i = j
	}
	return out
}

// SegmentName maps recency and frequency scores to the customary RFM segment
// names (the widely used R×F grid on a 1–5 scale; other scales are mapped
// onto it proportionally).
func SegmentName(r, f, bins int) string {
	if bins != 5 {
		r = 1 + (r-1)*4/(bins-1)
		f = 1 + (f-1)*4/(bins-1)
	}
	switch {
	case r >= 5 && f >= 4:
		return "Champions"
	case r >= 3 && f >= 4:
		return "Loyal Customers"
	case r >= 4 && f >= 2:
		return "Potential Loyalists"
	case r == 5 && f == 1:
		return "New Customers"
	case r == 4 && f == 1:
		return "Promising"
	case r == 3 && f == 3:
		return "Need Attention"
	case r == 3 && f <= 2:
		return "About to Sleep"
	case r <= 2 && f == 5:
		return "Can't Lose Them"
	case r <= 2 && f >= 3:
		return "At Risk"
	default:
		return "Hibernating"
	}
}

// SegmentOrder lists the segment names from best to worst, for charts.
var SegmentOrder = []string{"Champions", "Loyal Customers", "Potential Loyalists", "New Customers", "Promising",
	"Need Attention", "About to Sleep", "Can't Lose Them", "At Risk", "Hibernating"}

func charts(cs []Customer, bins int) ([]Segment, [][]GridBox) {
	seg := map[string]*Segment{}
	grid := make([][]GridBox, bins)
	for r := range grid {
		grid[r] = make([]GridBox, bins)
		for f := range grid[r] {
			grid[r][f] = GridBox{R: r + 1, F: f + 1}
		}
	}
	for _, c := range cs {
		s := seg[c.Segment]
		if s == nil {
			s = &Segment{Name: c.Segment}
			seg[c.Segment] = s
		}
		s.Customers++
		s.Revenue += c.Monetary
		g := &grid[c.R-1][c.F-1]
		g.Customers++
		g.MeanMonetary += c.Monetary
	}
	for r := range grid {
		for f := range grid[r] {
			if g := &grid[r][f]; g.Customers > 0 {
				g.MeanMonetary /= float64(g.Customers)
			}
		}
	}
	var out []Segment
	for _, name := range SegmentOrder {
		if s := seg[name]; s != nil {
			s.Share = float64(s.Customers) / float64(len(cs))
			out = append(out, *s)
		}
	}
	return out, grid
}
