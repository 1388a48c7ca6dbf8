package clv

import (
	"math"

	"github.com/portrait-cdp/portrait"
)

// ValueOptions describe a lifetime-value horizon.
type ValueOptions struct {
	Months int // horizon in months (12 when zero)
	// PeriodDays is the length of the model's time unit in days (7 when
	// zero); it converts months into model periods.
	PeriodDays float64
	// AnnualDiscount is the yearly discount rate (e.g. 0.10); cash expected in
	// month i is divided by (1+d)^i with d the equivalent monthly rate.
	AnnualDiscount float64
}

const daysPerMonth = 365.25 / 12

// Value is the discounted expected value of a customer's purchases over the
// horizon: for each month, the expected purchases in that month (the increment
// of the conditional expectation) times the expected spend, discounted to
// today. This is lifetimes' customer_lifetime_value with a monthly grid.
func Value(bg *BGNBD, gg *GammaGamma, c Customer, opt ValueOptions) (float64, error) {
	return ValueAt(bg, gg.ExpectedSpend(c.X, c.Monetary), c, opt)
}

// ValueAt is Value with the expected spend per purchase given, for a spend
// model fitted on other inputs (AllOrders).
func ValueAt(bg *BGNBD, spend float64, c Customer, opt ValueOptions) (float64, error) {
	months := opt.Months
	if months == 0 {
		months = 12
	}
	period := opt.PeriodDays
	if period == 0 {
		period = 7
	}
	if months < 0 || months > 1200 || !(period > 0) || !(opt.AnnualDiscount > -1) || !finite(opt.AnnualDiscount) {
		return 0, portrait.Errorf(portrait.EINVALID, "horizon must be 1..1200 months, period positive and discount above -100%%")
	}
	monthly := math.Pow(1+opt.AnnualDiscount, 1.0/12) - 1
	var v, prev float64
	for i := 1; i <= months; i++ {
		cum := bg.ConditionalExpected(float64(i)*daysPerMonth/period, c.X, c.Tx, c.T)
		v += spend * (cum - prev) / math.Pow(1+monthly, float64(i))
		prev = cum
	}
	return v, nil
}

// Score is what the lifetime-value run writes back onto a profile.
type Score struct {
	ID                string  `json:"id"`
	PAlive            float64 `json:"p_alive"`
	ExpectedPurchases float64 `json:"expected_purchases_90d"`
	ExpectedSpend     float64 `json:"expected_spend"`
	CLV               float64 `json:"clv_12m"`
}

// ScoreAll computes P(alive), expected purchases over the next 90 days,
// expected spend per purchase and the discounted 12-month (or opt.Months)
// value for every customer.
func ScoreAll(bg *BGNBD, gg *GammaGamma, cs []Customer, opt ValueOptions) ([]Score, error) {
	period := opt.PeriodDays
	if period == 0 {
		period = 7
	}
	out := make([]Score, len(cs))
	for i, c := range cs {
		v, err := Value(bg, gg, c, opt)
		if err != nil {
			return nil, err
		}
		out[i] = Score{
			ID:                c.ID,
			PAlive:            bg.PAlive(c.X, c.Tx, c.T),
			ExpectedPurchases: bg.ConditionalExpected(90/period, c.X, c.Tx, c.T),
			ExpectedSpend:     gg.ExpectedSpend(c.X, c.Monetary),
			CLV:               v,
		}
	}
	return out, nil
}
