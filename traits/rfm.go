package traits

import (
	"context"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Boundaries are the population quintile boundaries RFM scores compare
// against. They need every customer, so a job computes them (daily, or on
// request) and Finish scores each profile against the latest ones.
type Boundaries struct {
	AsOf      time.Time `json:"as_of"`
	Customers int       `json:"customers"`
	// R holds days since the last purchase, in decreasing order: fewer
	// days than R[k] earns a point.
	R [4]float64 `json:"r"`
	// F and M hold purchase counts and revenue, increasing: more than
	// F[k] (M[k]) earns a point.
	F [4]float64 `json:"f"`
	M [4]float64 `json:"m"`
}

// RFMInput is one customer's recency, frequency and monetary value.
type RFMInput struct {
	Days    float64 // whole days since the last purchase
	Count   float64
	Revenue float64
}

// quintileBounds returns the last value of each of the first four
// quintiles of sorted values.
func quintileBounds(s []float64) [4]float64 {
	var b [4]float64
	n := len(s)
	for k := 1; k <= 4; k++ {
		b[k-1] = s[max(k*n/5-1, 0)]
	}
	return b
}

// NewBoundaries computes boundaries over customers (those with at least one
// purchase); nil when there are none.
func NewBoundaries(in []RFMInput, asOf time.Time) *Boundaries {
	if len(in) == 0 {
		return nil
	}
	d, f, m := make([]float64, len(in)), make([]float64, len(in)), make([]float64, len(in))
	for i, x := range in {
		d[i], f[i], m[i] = x.Days, x.Count, x.Revenue
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(d)))
	sort.Float64s(f)
	sort.Float64s(m)
	return &Boundaries{AsOf: asOf.UTC(), Customers: len(in), R: quintileBounds(d), F: quintileBounds(f), M: quintileBounds(m)}
}

// Score returns the R, F and M scores, 1-5 (5 best). Ties share a score:
// a value equal to a boundary stays in the lower quintile.
func (b *Boundaries) Score(days, count, revenue float64) (r, f, m int) {
	r, f, m = 1, 1, 1
	for k := range 4 {
		if days < b.R[k] {
			r++
		}
		if count > b.F[k] {
			f++
		}
		if revenue > b.M[k] {
			m++
		}
	}
	return r, f, m
}

// RFM segments (the customary R×F grid).
const (
	SegChampions         = "champions"
	SegLoyal             = "loyal"
	SegPotentialLoyalist = "potential_loyalist"
	SegNewCustomer       = "new_customer"
	SegPromising         = "promising"
	SegNeedAttention     = "need_attention"
	SegAboutToSleep      = "about_to_sleep"
	SegCantLose          = "cant_lose"
	SegAtRisk            = "at_risk"
	SegHibernating       = "hibernating"
)

// Segments lists the RFM segments from best to worst.
var Segments = []string{SegChampions, SegLoyal, SegPotentialLoyalist, SegNewCustomer, SegPromising,
	SegNeedAttention, SegAboutToSleep, SegCantLose, SegAtRisk, SegHibernating}

// SegmentName maps recency and frequency scores (1-5) to the classic cells.
func SegmentName(r, f int) string {
	switch {
	case r >= 5 && f >= 4:
		return SegChampions
	case r >= 3 && f >= 4:
		return SegLoyal
	case r >= 4 && f >= 2:
		return SegPotentialLoyalist
	case r == 5 && f == 1:
		return SegNewCustomer
	case r == 4 && f == 1:
		return SegPromising
	case r == 3 && f == 3:
		return SegNeedAttention
	case r == 3 && f <= 2:
		return SegAboutToSleep
	case r <= 2 && f == 5:
		return SegCantLose
	case r <= 2 && f >= 3:
		return SegAtRisk
	}
	return SegHibernating
}

// RFMInputOf reads a profile's RFM input from its computed traits.
func RFMInputOf(p *portrait.Profile, now time.Time) (RFMInput, bool) {
	n, _ := toFloat(p.Traits["purchase_count"].Value)
	rev, _ := toFloat(p.Traits["revenue"].Value)
	last, ok := p.Traits["last_purchase_at"]
	if n <= 0 || !ok || last.Source != SourceComputed {
		return RFMInput{}, false
	}
	return RFMInput{Days: daysSince(now, micros(last.Time)), Count: n, Revenue: rev}, true
}

// ComputeBoundaries runs the population job: it reads every profile through
// each and returns the boundaries as of now.
func ComputeBoundaries(ctx context.Context, each func(ctx context.Context, fn func(*portrait.Profile) error) error, now time.Time) (*Boundaries, error) {
	var in []RFMInput
	err := each(ctx, func(p *portrait.Profile) error {
		if x, ok := RFMInputOf(p, now); ok {
			in = append(in, x)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return NewBoundaries(in, now), nil
}
