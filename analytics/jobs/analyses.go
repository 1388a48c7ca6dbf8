package jobs

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/clv"
	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
	"github.com/portrait-cdp/portrait/analytics/kmeans"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// clv fits BG/NBD and Gamma-Gamma on every customer's purchases up to now
// and writes p_alive, expected purchases in the next 90 days, expected spend
// and the discounted 12-month value. Each run also checks itself: the same
// models fitted on the history up to a cut-off predict the period after it,
// and the run record keeps the comparison with what happened (holdout).
func (r *Runner) clv(ctx context.Context, run *Run, load loader) error {
	p := Params(run.Params)
	months, err := p.float("months", 12)
	if err != nil {
		return err
	}
	discount, err := p.float("annual_discount", 0.1)
	if err != nil {
		return err
	}
	holdoutDays, err := p.float("holdout_days", 0)
	if err != nil {
		return err
	}
	if holdoutDays < 0 {
		return portrait.Errorf(portrait.EINVALID, "holdout_days must be positive (0 or absent: the last third of the purchase history)")
	}
	if months < 1 || months > 1200 {
		return portrait.Errorf(portrait.EINVALID, "months must be 1..1200")
	}
	c, err := load(ctx)
	if err != nil {
		return err
	}
	var ps []clv.Purchase
	first := time.Time{}
	for _, pid := range c.ids {
		for _, p := range c.purchases[pid] {
			ps = append(ps, clv.Purchase{Customer: pid, Time: p.at, Amount: p.amount})
			if first.IsZero() || p.at.Before(first) {
				first = p.at
			}
		}
	}
	now := r.Now().UTC()
	cs, err := clv.Summarize(ps, clv.SummaryOptions{CalibrationEnd: now, PeriodDays: 7})
	if err != nil {
		return err
	}
	bg, err := clv.FitBGNBD(cs, clv.FitOptions{})
	if err != nil {
		return err
	}
	run.Metrics = map[string]any{"customers": len(cs), "r": bg.R, "alpha": bg.Alpha, "a": bg.A, "b": bg.B, "loglik": bg.LogLik, "period_days": 7}
	var allOrders bool
	run.Holdout, allOrders = holdoutCheck(ps, first, now, holdoutDays)
	spendIn := cs
	run.Metrics["spend_inputs"] = "repeat orders"
	if allOrders {
		spendIn = clv.AllOrders(cs)
		run.Metrics["spend_inputs"] = "all orders"
	}
	gg, ggErr := clv.FitGammaGamma(spendIn, clv.FitOptions{})
	if ggErr == nil && gg.Q <= 1 {
		ggErr = portrait.Errorf(portrait.EINVALID, "the spend model has no finite mean (q = %.3f ≤ 1)", gg.Q)
	}
	if ggErr == nil {
		run.Metrics["p"], run.Metrics["q"], run.Metrics["gamma"] = gg.P, gg.Q, gg.Gamma
	} else {
		// Without a spend model, purchases and P(alive) are still worth
		// writing.
		run.Metrics["gamma_gamma"] = portrait.ErrorMessage(ggErr)
	}
	traits := map[string]map[string]any{}
	total := 0.0
	for i, cu := range cs {
		t := map[string]any{
			"p_alive":                round(bg.PAlive(cu.X, cu.Tx, cu.T), 4),
			"expected_purchases_90d": round(bg.ConditionalExpected(90.0/7, cu.X, cu.Tx, cu.T), 4),
		}
		if ggErr == nil {
			spend := gg.ExpectedSpend(spendIn[i].X, spendIn[i].Monetary)
			v, err := clv.ValueAt(bg, spend, cu, clv.ValueOptions{Months: int(months), PeriodDays: 7, AnnualDiscount: discount})
			if err != nil {
				return err
			}
			t["expected_spend"] = round(spend, 2)
			t["clv_12m"] = round(v, 2)
			total += v
		}
		traits[cu.ID] = t
	}
	run.Metrics["total_clv"] = round(total, 2)
	if ggErr == nil {
		run.Metrics["clv_quantiles"] = clvPercentiles(traits)
	}
	return r.writeBack(ctx, run, c, traits)
}

// clvPercentiles writes each buyer's clv_percentile — the share of buyers
// with a lower clv_12m, 0..100 — so that tags such as high_value can name a
// top share of the population rather than an amount that depends on the
// currency and the catalogue. It returns the quartiles and the 90th and
// 99th percentiles of the values for the run record.
func clvPercentiles(traits map[string]map[string]any) map[string]float64 {
	type kv struct {
		id string
		v  float64
	}
	var all []kv
	for id, t := range traits {
		if v, ok := t["clv_12m"].(float64); ok {
			all = append(all, kv{id, v})
		}
	}
	if len(all) == 0 {
		return nil
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v || (all[i].v == all[j].v && all[i].id < all[j].id) })
	below := 0 // customers with a strictly lower value
	for i := range all {
		if i > 0 && all[i].v > all[i-1].v {
			below = i
		}
		traits[all[i].id]["clv_percentile"] = math.Floor(100 * float64(below) / float64(len(all)))
	}
	q := func(f float64) float64 { return all[min(int(f*float64(len(all))), len(all)-1)].v }
	return map[string]float64{"p25": q(0.25), "p50": q(0.5), "p75": q(0.75), "p90": q(0.9), "p99": q(0.99), "max": all[len(all)-1].v}
}

// HoldoutCheck is a CLV run's test of its own method: calibrated on the
// history up to a cut-off, the models predict the period after it, and the
// prediction is compared with what happened. Skipped says why there is no
// check (too little history, no repeat purchase before the cut-off).
type HoldoutCheck struct {
	Rule    string `json:"cutoff_rule"`
	Skipped string `json:"skipped,omitempty"`
	*clv.Holdout
}

// holdoutCheck runs the check with the cut-off holdoutDays before now, or
// when zero at two thirds of the span from the first purchase to now. It
// also decides what the spend model learns from: repeat orders only (the
// published convention, right when first orders differ from later ones)
// or every order (which lets a one-order customer's spend count); the
// inputs that forecast holdout revenue per customer better win.
func holdoutCheck(ps []clv.Purchase, first, now time.Time, holdoutDays float64) (*HoldoutCheck, bool) {
	span := now.Sub(first).Hours() / 24
	h := &HoldoutCheck{Rule: "the last third of the purchase history"}
	if holdoutDays > 0 {
		h.Rule = fmt.Sprintf("the last %g days", holdoutDays)
	} else {
		holdoutDays = math.Floor(span / 3)
	}
	if holdoutDays < 28 || span-holdoutDays < 28 {
		h.Skipped = fmt.Sprintf("%.0f days of purchase history: a holdout check needs at least 28 days on each side of the cut-off", span)
		return h, false
	}
	cut := now.Add(-time.Duration(holdoutDays*24) * time.Hour)
	opt := clv.HoldoutOptions{CalibrationEnd: cut, HoldoutEnd: now, PeriodDays: 7}
	res, err := clv.CheckHoldout(ps, opt)
	if err != nil {
		h.Skipped = portrait.ErrorMessage(err)
		return h, false
	}
	h.Holdout = res
	opt.SpendAllOrders = true
	if all, err := clv.CheckHoldout(ps, opt); err == nil && all.Spend != nil && (res.Spend == nil || all.Spend.MAE < res.Spend.MAE) {
		h.Holdout = all
		return h, true
	}
	return h, false
}

// fpgrowth mines the order baskets and writes each customer's next-best
// products: the items the rules their history triggers suggest.
func (r *Runner) fpgrowth(ctx context.Context, run *Run, load loader) error {
	p := Params(run.Params)
	sup, err := p.float("min_support", 0.01)
	if err != nil {
		return err
	}
	conf, err := p.float("min_confidence", 0.2)
	if err != nil {
		return err
	}
	k, err := p.float("recommendations", 3)
	if err != nil {
		return err
	}
	c, err := load(ctx)
	if err != nil {
		return err
	}
	var baskets [][]string
	for _, pid := range c.ids {
		for _, pu := range c.purchases[pid] {
			if len(pu.items) > 0 {
				baskets = append(baskets, pu.items)
			}
		}
	}
	if len(baskets) == 0 {
		return portrait.Errorf(portrait.EINVALID, "no %q event lists products (properties.products[].name)", r.Purchase)
	}
	res, err := fpgrowth.Mine(baskets, fpgrowth.Options{MinSupport: sup, MinConfidence: conf, MinLen: 2})
	if err != nil {
		return err
	}
	run.Metrics = map[string]any{"baskets": len(baskets), "itemsets": len(res.Itemsets), "rules": len(res.Rules)}
	top := res.Rules
	sort.SliceStable(top, func(i, j int) bool { return top[i].Lift > top[j].Lift })
	if len(top) > 10 {
		top = top[:10]
	}
	run.Metrics["top_rules"] = top
	traits := map[string]map[string]any{}
	bought := map[string]bool{}
	for _, pid := range c.ids {
		bought[pid] = true
		var hist []string
		for _, pu := range c.purchases[pid] {
			hist = append(hist, pu.items...)
		}
		recs, why := fpgrowth.RecommendReason(res.Rules, hist, int(k))
		traits[pid] = recommendations(recs, why)
	}
	// Customers who have not bought yet are told so rather than left blank.
	for pid := range c.anchor {
		if !bought[pid] {
			traits[pid] = recommendations(nil, fpgrowth.Reason{Code: ReasonNoPurchases, Params: map[string]any{}, Text: "no purchases yet"})
		}
	}
	return r.writeBack(ctx, run, c, traits)
}

// ReasonNoPurchases is the next_best_products_reason_code of a customer
// with no purchase at all (the others are fpgrowth's Reason codes).
const ReasonNoPurchases = "no_purchases"

// recommendations is the next_best_products trait: each product with the
// rule behind it, or an empty list and the reason there is none, in
// English (next_best_products_reason, kept for the API's readers) and as
// a code with its parameters, which the console says in its language.
func recommendations(recs []fpgrowth.Recommendation, why fpgrowth.Reason) map[string]any {
	items := make([]map[string]any, len(recs))
	for i, rc := range recs {
		items[i] = map[string]any{"product": rc.Item, "antecedent": rc.Because.Antecedent,
			"confidence": round(rc.Confidence, 4), "lift": round(rc.Lift, 4), "support": round(rc.Because.Support, 4)}
	}
	t := map[string]any{"next_best_products": items}
	// An empty reason clears an older run's: the trait is set either way.
	t["next_best_products_reason"] = why.Text
	t["next_best_products_reason_code"] = why.Code
	params := why.Params
	if params == nil {
		params = map[string]any{}
	}
	t["next_best_products_reason_params"] = params
	return t
}

// features are per-customer behaviour numbers as of a date.
var featureNames = []string{"orders", "revenue", "avg_order_value", "days_since_last_order", "tenure_days"}

func features(ps []purchase, asOf time.Time) ([]float64, bool) {
	var n int
	var rev float64
	var first, last time.Time
	for _, p := range ps {
		if p.at.After(asOf) {
			continue
		}
		n++
		rev += p.amount
		if first.IsZero() || p.at.Before(first) {
			first = p.at
		}
		if p.at.After(last) {
			last = p.at
		}
	}
	if n == 0 {
		return nil, false
	}
	return []float64{float64(n), rev, rev / float64(n), asOf.Sub(last).Hours() / 24, asOf.Sub(first).Hours() / 24}, true
}

// kmeans clusters customers on their behaviour (z-scores, automatic k by
// silhouette) and writes the cluster and its plain-words description.
func (r *Runner) kmeans(ctx context.Context, run *Run, load loader) error {
	p := Params(run.Params)
	kmax, err := p.float("k_max", 8)
	if err != nil {
		return err
	}
	kfix, err := p.float("k", 0)
	if err != nil {
		return err
	}
	c, err := load(ctx)
	if err != nil {
		return err
	}
	now := r.Now().UTC()
	var data []float64
	var rows []string
	for _, pid := range c.ids {
		if f, ok := features(c.purchases[pid], now); ok {
			data = append(data, f...)
			rows = append(rows, pid)
		}
	}
	n, d := len(rows), len(featureNames)
	opt := kmeans.Options{Standardize: true, Seed: 1}
	var m *kmeans.Model
	run.Metrics = map[string]any{"customers": n, "features": featureNames}
	if kfix > 0 {
		opt.K = int(kfix)
		if m, err = kmeans.Fit(data, n, d, opt); err != nil {
			return err
		}
	} else {
		ar, err := kmeans.Auto(data, n, d, kmeans.AutoOptions{Options: opt, KMin: 2, KMax: int(kmax)})
		if err != nil {
			return err
		}
		m = ar.Model
		run.Metrics["curve"], run.Metrics["elbow_k"] = ar.Curve, ar.ElbowK
	}
	desc, err := kmeans.Describe(data, n, d, m, featureNames)
	if err != nil {
		return err
	}
	run.Metrics["k"], run.Metrics["wcss"], run.Metrics["sizes"], run.Metrics["clusters"] = m.K, m.WCSS, m.Sizes, desc
	traits := map[string]map[string]any{}
	// cluster_terms says cluster_description as terms (feature, level, z),
	// so that the console says it in the reader's language.
	terms := make([][]any, len(desc))
	for j, dsc := range desc {
		terms[j] = make([]any, len(dsc.Terms))
		for i, tm := range dsc.Terms {
			terms[j][i] = map[string]any{"feature": tm.Feature, "level": tm.Level, "z": tm.Z}
		}
	}
	for i, pid := range rows {
		l := m.Labels[i]
		traits[pid] = map[string]any{"cluster": l, "cluster_description": desc[l].Text, "cluster_terms": terms[l]}
	}
	return r.writeBack(ctx, run, c, traits)
}

// churn learns who buys again: features as of a cutoff one horizon ago,
// labelled by whether the customer bought within the horizon after it. The
// model then scores everyone as of now; churn_probability is the chance of
// not buying in the next horizon.
func (r *Runner) churn(ctx context.Context, run *Run, load loader) error {
	horizon, err := Params(run.Params).float("horizon_days", 90)
	if err != nil {
		return err
	}
	if horizon <= 0 {
		return portrait.Errorf(portrait.EINVALID, "horizon_days must be positive")
	}
	c, err := load(ctx)
	if err != nil {
		return err
	}
	now := r.Now().UTC()
	cut := now.Add(-time.Duration(horizon*24) * time.Hour)
	var x, y []float64
	for _, pid := range c.ids {
		f, ok := features(c.purchases[pid], cut)
		if !ok {
			continue
		}
		bought := 0.0
		for _, p := range c.purchases[pid] {
			if p.at.After(cut) && !p.at.After(now) {
				bought = 1
				break
			}
		}
		x = append(x, f...)
		y = append(y, bought)
	}
	n, d := len(y), len(featureNames)
	if n < 20 {
		return portrait.Errorf(portrait.EINVALID, "only %d customers bought before %s: too few to learn from", n, cut.Format(time.DateOnly))
	}
	rep, err := logit.TrainEvaluate(x, n, d, y, featureNames, logit.EvalOptions{Options: logit.Options{Standardize: true}, Seed: 1})
	if err != nil {
		return err
	}
	run.Metrics = map[string]any{"customers": n, "cutoff": cut.Format(time.DateOnly), "auc": rep.AUC, "accuracy": rep.Accuracy,
		"log_loss": rep.LogLoss, "base_rate": rep.BaseRate, "n_train": rep.NTrain, "n_test": rep.NTest, "weights": rep.Weights, "calibration": rep.Calibration}
	run.Evaluation = evaluation(rep, horizon)
	if !run.Evaluation.Informative {
		// Scores no better than chance would only mislead the tags and
		// segments built on them: the run reports, and writes nothing.
		return nil
	}
	traits := map[string]map[string]any{}
	for _, pid := range c.ids {
		f, ok := features(c.purchases[pid], now)
		if !ok {
			continue
		}
		pBuy := rep.Model.Predict(f)
		if math.IsNaN(pBuy) {
			continue
		}
		traits[pid] = map[string]any{"purchase_probability_90d": round(pBuy, 4), "churn_probability": round(1-pBuy, 4)}
	}
	return r.writeBack(ctx, run, c, traits)
}

// Evaluation is a churn run's check on customers held out of training (a
// stratified fifth): how well the model ranks them (AUC with its 95%
// interval) and whether its probabilities mean what they say (reliability
// bins, Brier score against predicting the base rate for everyone).
type Evaluation struct {
	Predicts         string      `json:"predicts"`
	HeldOut          int         `json:"held_out_customers"`
	Trained          int         `json:"training_customers"`
	BaseRate         float64     `json:"base_rate"`
	AUC              float64     `json:"auc"`
	AUCInterval      [2]float64  `json:"auc_ci95"`
	Accuracy         float64     `json:"accuracy"`
	LogLoss          float64     `json:"log_loss"`
	Brier            float64     `json:"brier"`
	BrierBaseRate    float64     `json:"brier_base_rate"`
	CalibrationError float64     `json:"calibration_error"`
	Calibration      []logit.Bin `json:"calibration"`
	Informative      bool        `json:"informative"`
	Verdict          string      `json:"verdict"`
}

func evaluation(rep *logit.Report, horizon float64) *Evaluation {
	e := &Evaluation{Predicts: fmt.Sprintf("a purchase within %g days of the cut-off (churn = none)", horizon),
		HeldOut: rep.NTest, Trained: rep.NTrain, BaseRate: rep.BaseRate, AUC: rep.AUC, AUCInterval: [2]float64{rep.AUCLow, rep.AUCHigh},
		Accuracy: rep.Accuracy, LogLoss: rep.LogLoss, Brier: rep.Brier, BrierBaseRate: rep.BaseRate * (1 - rep.BaseRate),
		CalibrationError: rep.CalError, Calibration: rep.Calibration}
	e.Informative, e.Verdict = rep.Informative, rep.Verdict
	return e
}
