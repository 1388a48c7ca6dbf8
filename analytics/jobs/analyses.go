package jobs

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/clv"
	"github.com/portrait-cdp/portrait/analytics/fpgrowth"
	"github.com/portrait-cdp/portrait/analytics/kmeans"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// clv fits BG/NBD (and Gamma-Gamma when there are repeat buyers) on every
// customer's purchases up to now and writes p_alive, expected purchases in
// the next 90 days, expected spend and the discounted 12-month value.
func (r *Runner) clv(ctx context.Context, run *Run) error {
	months, err := Params(run.Params).float("months", 12)
	if err != nil {
		return err
	}
	discount, err := Params(run.Params).float("annual_discount", 0.1)
	if err != nil {
		return err
	}
	c, err := r.load(ctx)
	if err != nil {
		return err
	}
	var ps []clv.Purchase
	for _, pid := range c.ids {
		for _, p := range c.purchases[pid] {
			ps = append(ps, clv.Purchase{Customer: pid, Time: p.at, Amount: p.amount})
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
	gg, ggErr := clv.FitGammaGamma(cs, clv.FitOptions{})
	if ggErr == nil {
		run.Metrics["p"], run.Metrics["q"], run.Metrics["gamma"] = gg.P, gg.Q, gg.Gamma
	} else {
		// Without enough repeat spend there is no spend model: purchases
		// and P(alive) are still worth writing.
		run.Metrics["gamma_gamma"] = portrait.ErrorMessage(ggErr)
	}
	traits := map[string]map[string]any{}
	total := 0.0
	for _, cu := range cs {
		t := map[string]any{
			"p_alive":                round(bg.PAlive(cu.X, cu.Tx, cu.T), 4),
			"expected_purchases_90d": round(bg.ConditionalExpected(90.0/7, cu.X, cu.Tx, cu.T), 4),
		}
		if ggErr == nil {
			v, err := clv.Value(bg, gg, cu, clv.ValueOptions{Months: int(months), PeriodDays: 7, AnnualDiscount: discount})
			if err != nil {
				return err
			}
			t["expected_spend"] = round(gg.ExpectedSpend(cu.X, cu.Monetary), 2)
			t["clv_12m"] = round(v, 2)
			total += v
		}
		traits[cu.ID] = t
	}
	run.Metrics["total_clv"] = round(total, 2)
	return r.writeBack(ctx, run, c, traits)
}

// fpgrowth mines the order baskets and writes each customer's next-best
// products: the items the rules their history triggers suggest.
func (r *Runner) fpgrowth(ctx context.Context, run *Run) error {
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
	c, err := r.load(ctx)
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
	for _, pid := range c.ids {
		var hist []string
		for _, pu := range c.purchases[pid] {
			hist = append(hist, pu.items...)
		}
		recs := fpgrowth.Recommend(res.Rules, hist, int(k))
		items := make([]string, len(recs))
		for i, rc := range recs {
			items[i] = rc.Item
		}
		traits[pid] = map[string]any{"next_best_products": items}
	}
	return r.writeBack(ctx, run, c, traits)
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
func (r *Runner) kmeans(ctx context.Context, run *Run) error {
	p := Params(run.Params)
	kmax, err := p.float("k_max", 8)
	if err != nil {
		return err
	}
	kfix, err := p.float("k", 0)
	if err != nil {
		return err
	}
	c, err := r.load(ctx)
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
	for i, pid := range rows {
		l := m.Labels[i]
		traits[pid] = map[string]any{"cluster": l, "cluster_description": desc[l].Text}
	}
	return r.writeBack(ctx, run, c, traits)
}

// churn learns who buys again: features as of a cutoff one horizon ago,
// labelled by whether the customer bought within the horizon after it. The
// model then scores everyone as of now; churn_probability is the chance of
// not buying in the next horizon.
func (r *Runner) churn(ctx context.Context, run *Run) error {
	horizon, err := Params(run.Params).float("horizon_days", 90)
	if err != nil {
		return err
	}
	if horizon <= 0 {
		return portrait.Errorf(portrait.EINVALID, "horizon_days must be positive")
	}
	c, err := r.load(ctx)
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
