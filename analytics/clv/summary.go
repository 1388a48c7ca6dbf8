// Package clv estimates customer lifetime value with the BG/NBD model of
// repeat buying (Fader, Hardie & Lee 2005), the Gamma-Gamma model of spend
// (Fader, Hardie & Lee 2005, "RFM and CLV") and a discounted sum of the two.
//
// Times are in "periods" chosen by the caller when summarising transactions
// (weeks, as in the paper, by default). The models are fitted by maximum
// likelihood with gonum's BFGS in log-parameter space, which keeps every
// parameter positive without constraints.
package clv

import (
	"math"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Purchase is one transaction of a customer.
type Purchase struct {
	Customer string
	Time     time.Time
	Amount   float64
}

// Customer is the sufficient statistic of a customer's purchase history for
// BG/NBD and Gamma-Gamma: X repeat purchases, the last at Tx periods after the
// first, observed for T periods since the first; Monetary is the mean value
// of the repeat purchases (0 without any) and First the spend of the first
// purchase day.
type Customer struct {
	ID       string  `json:"id"`
	X        float64 `json:"frequency"`
	Tx       float64 `json:"recency"`
	T        float64 `json:"T"`
	Monetary float64 `json:"monetary_value"`
	First    float64 `json:"first_spend"`
}

// AllOrders returns the spend inputs that count the first purchase too: X+1
// purchase days whose mean is the mean over all of them. The published
// convention (FHL; lifetimes) leaves the first purchase out of the spend
// model, which gives every one-order customer the population mean whatever
// they spent; fitted on all orders, Gamma-Gamma shrinks a single order
// towards the mean instead. Recency and T are kept.
func AllOrders(cs []Customer) []Customer {
	out := make([]Customer, len(cs))
	for i, c := range cs {
		c.Monetary = (c.First + c.X*c.Monetary) / (c.X + 1)
		c.X++
		out[i] = c
	}
	return out
}

// SummaryOptions set the calibration window and time unit of a summary.
type SummaryOptions struct {
	// CalibrationEnd is the last day observed (inclusive). Purchases after it
	// are ignored; zero means the day of the last purchase.
	CalibrationEnd time.Time
	// PeriodDays is the length of one period in days (7 when zero).
	PeriodDays float64
}

// Summarize turns transactions into per-customer summaries the way the
// reference implementation (lifetimes' summary_data_from_transaction_data) does:
// purchases are bucketed by calendar day (UTC), the first day is the birth of
// the customer and is not a repeat purchase, every later day with a purchase
// counts once, and the monetary value is the mean daily spend over the repeat
// days. Customers are returned sorted by ID.
func Summarize(ps []Purchase, opt SummaryOptions) ([]Customer, error) {
	if len(ps) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no purchases to summarise")
	}
	period := opt.PeriodDays
	if period == 0 {
		period = 7
	}
	if !(period > 0) || math.IsInf(period, 0) {
		return nil, portrait.Errorf(portrait.EINVALID, "period length must be a positive number of days, got %v", opt.PeriodDays)
	}
	end := dayOf(opt.CalibrationEnd)
	if opt.CalibrationEnd.IsZero() {
		end = math.MinInt64
		for _, p := range ps {
			end = max(end, dayOf(p.Time))
		}
	}
	type day struct {
		d   int64
		amt float64
	}
	byCust := map[string][]day{}
	for _, p := range ps {
		d := dayOf(p.Time)
		if d > end {
			continue
		}
		if math.IsNaN(p.Amount) || math.IsInf(p.Amount, 0) {
			return nil, portrait.Errorf(portrait.EINVALID, "customer %q has a purchase with amount %v", p.Customer, p.Amount)
		}
		byCust[p.Customer] = append(byCust[p.Customer], day{d, p.Amount})
	}
	if len(byCust) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no purchases on or before the calibration end %s", opt.CalibrationEnd.Format(time.DateOnly))
	}
	out := make([]Customer, 0, len(byCust))
	for id, ds := range byCust {
		sort.Slice(ds, func(i, j int) bool { return ds[i].d < ds[j].d })
		first := ds[0].d
		var x int
		var repeat, firstAmt float64
		last := first
		for i := 0; i < len(ds); {
			j, sum := i, 0.0
			for ; j < len(ds) && ds[j].d == ds[i].d; j++ {
				sum += ds[j].amt
			}
			if ds[i].d != first {
				x++
				repeat += sum
				last = ds[i].d
			} else {
				firstAmt = sum
			}
			i = j
		}
		c := Customer{ID: id, X: float64(x), Tx: float64(last-first) / period, T: float64(end-first) / period, First: firstAmt}
		if x > 0 {
			c.Monetary = repeat / float64(x)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].ID, out[j].ID) })
	return out, nil
}

func dayOf(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// lessID orders numeric ids numerically and everything else lexically, so
// that CDNOW customers come out as 1, 2, ..., 10 rather than 1, 10, 100.
func lessID(a, b string) bool {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
