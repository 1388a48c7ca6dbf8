package clv

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/portrait-cdp/portrait"
)

// HoldoutOptions describe a calibration/holdout check of BG/NBD.
type HoldoutOptions struct {
	// CalibrationEnd is the last day of the calibration period (inclusive);
	// the model is fitted on purchases up to it.
	CalibrationEnd time.Time
	// HoldoutEnd is the last day of the holdout period (inclusive); zero
	// means the day of the last purchase.
	HoldoutEnd time.Time
	// PeriodDays is the model's time unit in days (7 when zero).
	PeriodDays float64
	// Censor groups customers with Censor or more calibration repeat
	// purchases into one bin ("7+" when zero, as FHL's Figure 4).
	Censor int
	// CurvePoints bounds the number of points of the cumulative curve (100
	// when zero); the step is a whole number of periods.
	CurvePoints int
	Fit         FitOptions
	// SpendAllOrders fits the spend model on every purchase (AllOrders)
	// rather than on repeat purchases only, as the published convention does.
	SpendAllOrders bool
}

// Holdout compares what a model fitted on the calibration period predicts
// for the holdout period with what the customers then did, as Fader, Hardie
// and Lee (2005) check BG/NBD on CDNOW: in aggregate (total repeat
// purchases, and the cumulative curve over both periods), per customer (MAE,
// RMSE, correlation) and by number of calibration repeat purchases.
type Holdout struct {
	CalibrationEnd  string  `json:"calibration_end"`
	HoldoutEnd      string  `json:"holdout_end"`
	PeriodDays      float64 `json:"period_days"`
	HoldoutPeriods  float64 `json:"holdout_periods"`
	Customers       int     `json:"customers"` // born by the calibration end
	Model           *BGNBD  `json:"calibration_model"`
	Actual          float64 `json:"actual_repeat_purchases"`
	Predicted       float64 `json:"predicted_repeat_purchases"`
	AggregateErrPct float64 `json:"aggregate_error_pct"` // (predicted − actual) / actual × 100
	MAE             float64 `json:"mae"`
	RMSE            float64 `json:"rmse"`
	Correlation     float64 `json:"correlation"`
	// NaiveMAE is the per-customer error of carrying each customer's
	// calibration rate x/T forward: the model should beat it.
	NaiveMAE    float64      `json:"naive_mae"`
	ByFrequency []FreqBin    `json:"by_frequency"`
	Cumulative  []CurvePoint `json:"cumulative"`
	// Spend compares holdout revenue with expected purchases × expected
	// spend (Gamma-Gamma fitted on the calibration period), the two halves
	// of lifetime value; nil when no spend model could be fitted, and
	// SpendSkipped says why.
	Spend        *SpendCheck `json:"spend,omitempty"`
	SpendSkipped string      `json:"spend_skipped,omitempty"`
}

// SpendCheck is the revenue side of a holdout check.
type SpendCheck struct {
	Inputs    string      `json:"inputs"` // "all orders" or "repeat orders"
	Model     *GammaGamma `json:"calibration_model"`
	Actual    float64     `json:"actual_revenue"`
	Predicted float64     `json:"predicted_revenue"`
	ErrPct    float64     `json:"error_pct"`
	MAE       float64     `json:"mae"` // per customer, in currency
}

// FreqBin is the mean holdout repeat purchases of the customers with X
// calibration repeat purchases (the last bin holds X or more).
type FreqBin struct {
	X         string  `json:"x"`
	Customers int     `json:"customers"`
	Actual    float64 `json:"actual"`
	Predicted float64 `json:"predicted"`
}

// CurvePoint is the cumulative number of repeat purchases of the cohort by
// the end of period Period (counted from the first customer's birth day).
type CurvePoint struct {
	Period    float64 `json:"period"`
	Actual    float64 `json:"actual"`
	Predicted float64 `json:"predicted"`
	Holdout   bool    `json:"holdout,omitempty"`
}

// CheckHoldout fits BG/NBD on the purchases up to opt.CalibrationEnd and
// compares its predictions for (CalibrationEnd, HoldoutEnd] with the repeat
// purchases the same customers made then. Customers whose first purchase
// falls after the calibration end are not part of the check. Repeat
// purchases are counted as Summarize counts them: purchase days after the
// first.
func CheckHoldout(ps []Purchase, opt HoldoutOptions) (*Holdout, error) {
	period := opt.PeriodDays
	if period == 0 {
		period = 7
	}
	if !(period > 0) || math.IsInf(period, 0) {
		return nil, portrait.Errorf(portrait.EINVALID, "period length must be a positive number of days, got %v", opt.PeriodDays)
	}
	if opt.CalibrationEnd.IsZero() {
		return nil, portrait.Errorf(portrait.EINVALID, "a holdout check needs a calibration end")
	}
	censor := opt.Censor
	if censor <= 0 {
		censor = 7
	}
	points := opt.CurvePoints
	if points <= 0 {
		points = 100
	}
	calEnd := dayOf(opt.CalibrationEnd)
	hoEnd := dayOf(opt.HoldoutEnd)
	if opt.HoldoutEnd.IsZero() {
		hoEnd = math.MinInt64
		for _, p := range ps {
			hoEnd = max(hoEnd, dayOf(p.Time))
		}
	}
	if hoEnd <= calEnd {
		return nil, portrait.Errorf(portrait.EINVALID, "the holdout period must end after the calibration end %s", opt.CalibrationEnd.Format(time.DateOnly))
	}
	cal, err := Summarize(ps, SummaryOptions{CalibrationEnd: opt.CalibrationEnd, PeriodDays: period})
	if err != nil {
		return nil, err
	}
	bg, err := FitBGNBD(cal, opt.Fit)
	if err != nil {
		return nil, err
	}
	spendIn, inputs := cal, "repeat orders"
	if opt.SpendAllOrders {
		spendIn, inputs = AllOrders(cal), "all orders"
	}
	var spend *SpendCheck
	gg, ggErr := FitGammaGamma(spendIn, opt.Fit)
	if ggErr == nil && gg.Q > 1 {
		spend = &SpendCheck{Inputs: inputs, Model: gg}
	}
	revenue := map[string]float64{} // holdout revenue per customer

	// Purchase days per customer, over both periods.
	days := map[string]map[int64]bool{}
	for _, p := range ps {
		d := dayOf(p.Time)
		if d > hoEnd {
			continue
		}
		if d > calEnd {
			revenue[p.Customer] += p.Amount
		}
		m := days[p.Customer]
		if m == nil {
			m = map[int64]bool{}
			days[p.Customer] = m
		}
		m[d] = true
	}
	tStar := float64(hoEnd-calEnd) / period
	h := &Holdout{CalibrationEnd: dayTime(calEnd).Format(time.DateOnly), HoldoutEnd: dayTime(hoEnd).Format(time.DateOnly),
		PeriodDays: period, HoldoutPeriods: tStar, Customers: len(cal), Model: bg}
	bins := make([]FreqBin, censor+1)
	for i := range bins {
		bins[i].X = strconv.Itoa(i)
	}
	bins[censor].X += "+"
	var sa, sp, saa, spp, sap, naive float64
	births := map[int64]float64{} // customers per birth day, for the curve
	var repeatDays []int64
	origin := int64(math.MaxInt64)
	for i, c := range cal {
		var actual float64
		first := int64(math.MaxInt64)
		for d := range days[c.ID] {
			first = min(first, d)
		}
		for d := range days[c.ID] {
			if d != first {
				repeatDays = append(repeatDays, d)
				if d > calEnd {
					actual++
				}
			}
		}
		births[first]++
		origin = min(origin, first)
		pred := bg.ConditionalExpected(tStar, c.X, c.Tx, c.T)
		sa += actual
		sp += pred
		saa += actual * actual
		spp += pred * pred
		sap += actual * pred
		h.MAE += math.Abs(pred - actual)
		h.RMSE += (pred - actual) * (pred - actual)
		if c.T > 0 {
			naive += math.Abs(c.X/c.T*tStar - actual)
		} else {
			naive += actual
		}
		if spend != nil {
			pr := pred * spend.Model.ExpectedSpend(spendIn[i].X, spendIn[i].Monetary)
			spend.Actual += revenue[c.ID]
			spend.Predicted += pr
			spend.MAE += math.Abs(pr - revenue[c.ID])
		}
		b := &bins[min(int(c.X), censor)]
		b.Customers++
		b.Actual += actual
		b.Predicted += pred
	}
	n := float64(len(cal))
	h.Actual, h.Predicted = sa, sp
	if sa > 0 {
		h.AggregateErrPct = (sp - sa) / sa * 100
	}
	h.MAE /= n
	switch {
	case spend != nil:
		spend.MAE /= n
		if spend.Actual > 0 {
			spend.ErrPct = (spend.Predicted - spend.Actual) / spend.Actual * 100
		}
		h.Spend = spend
	case ggErr != nil:
		h.SpendSkipped = portrait.ErrorMessage(ggErr)
	default:
		h.SpendSkipped = "the spend model has no finite mean (q ≤ 1)"
	}
	h.RMSE = math.Sqrt(h.RMSE / n)
	h.NaiveMAE = naive / n
	if va, vp := saa-sa*sa/n, spp-sp*sp/n; va > 0 && vp > 0 {
		h.Correlation = (sap - sa*sp/n) / math.Sqrt(va*vp)
	}
	for i := range bins {
		if bins[i].Customers > 0 {
			bins[i].Actual /= float64(bins[i].Customers)
			bins[i].Predicted /= float64(bins[i].Customers)
		}
	}
	h.ByFrequency = bins

	// The cumulative curve: actual repeat purchases by the end of each
	// period against Σ E[X(t − birth)] over the cohort (FHL's Figure 3).
	// Customers are grouped by birth day so that the closed form is
	// evaluated once per (day, point) rather than per customer.
	sort.Slice(repeatDays, func(i, j int) bool { return repeatDays[i] < repeatDays[j] })
	bdays := make([]int64, 0, len(births))
	for d := range births {
		bdays = append(bdays, d)
	}
	sort.Slice(bdays, func(i, j int) bool { return bdays[i] < bdays[j] })
	total := int(math.Ceil(float64(hoEnd+1-origin) / period))
	step := max(1, (total+points-1)/points)
	next := 0
	for k := step; ; k += step {
		k = min(k, total)
		// Period k ends with day origin + k·period − 1 (the last point with
		// the holdout end); a customer's age is counted in days from birth
		// as Summarize counts T.
		endDay := min(origin+int64(math.Ceil(float64(k)*period))-1, hoEnd)
		for next < len(repeatDays) && repeatDays[next] <= endDay {
			next++
		}
		var pred float64
		for _, b := range bdays {
			if t := float64(endDay-b) / period; t > 0 {
				pred += births[b] * bg.ExpectedPurchases(t)
			}
		}
		h.Cumulative = append(h.Cumulative, CurvePoint{Period: float64(k), Actual: float64(next), Predicted: pred, Holdout: endDay > calEnd})
		if k == total {
			break
		}
	}
	return h, nil
}

func dayTime(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }
