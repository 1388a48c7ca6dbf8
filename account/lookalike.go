package account

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// Lookalike accounts: the model of the people lookalike (segment/lookalike.go)
// over accounts. A logistic regression (analytics/logit, standardised)
// separates the seed accounts from the others, over features read from the
// accounts; part of the seed is held out of training, and where those rank
// among every other account gives the AUC and the precision at each size.
// The accounts returned are the best-scored outside the whole seed.
//
// Features: size (log employees, log revenue), engagement, role coverage,
// a contact at decision level and the committee's size, and one-hot values
// of industry (section and division of GB/T 4754), region (province),
// ownership, stage and listed, the 20 most held of each. Relationship
// traits (products held, contract value, customer since, owner) are not
// read: they describe being a customer already, and a model reading them
// would find customers, not companies like them. Neither is anything about
// opportunities.

// LookalikeOptions tunes an expansion.
type LookalikeOptions struct {
	// Seeds are account ids.
	Seeds []string
	// Limit is how many accounts to return (default 20, at most 1,000).
	Limit int
	// HoldOut is the share of the seed kept out of training (default 0.2).
	HoldOut float64
	// Seed makes the hold-out and the sample reproducible.
	Seed uint64
}

// LookalikePoint is the ranking's quality at one size: of the top Size
// accounts outside the training seed, how many are held-out seeds.
type LookalikePoint struct {
	Size      int     `json:"size"`
	Hits      int     `json:"hits"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	// Lift is precision over the held-out seeds' share of the candidates:
	// what random picks would find.
	Lift float64 `json:"lift"`
}

// LookalikeReason is one feature pushing an account up: its value and
// the log-odds it adds against an average account.
type LookalikeReason struct {
	Feature string  `json:"feature"`
	Value   string  `json:"value"`
	LogOdds float64 `json:"log_odds"`
	Text    string  `json:"text"`
}

// LookalikeAccount is one account found.
type LookalikeAccount struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Score is the model's probability that the account belongs with the
	// seeds: it ranks, it is not a calibrated rate (the negatives are
	// sampled).
	Score   float64           `json:"score"`
	Reasons []LookalikeReason `json:"reasons"`
}

// Lookalike is an expansion with its honest evaluation.
type Lookalike struct {
	SeedSize   int `json:"seed_size"`
	TrainSeed  int `json:"train_seed"`
	HeldOut    int `json:"held_out"`
	Candidates int `json:"candidates"`
	Features   int `json:"features"`
	// AUC: held-out seeds against the other candidates; 0.5 is chance.
	AUC float64 `json:"auc"`
	// PrecisionAtK is the precision at the held-out size (k = HeldOut),
	// BaseRate what random picks would reach.
	PrecisionAtK float64               `json:"precision_at_k"`
	BaseRate     float64               `json:"base_rate"`
	Curve        []LookalikePoint      `json:"curve"`
	TopFeatures  []logit.FeatureWeight `json:"top_features"`
	Accounts     []LookalikeAccount    `json:"accounts"`
}

// lookalikeFeature is one model input.
type lookalikeFeature struct {
	name  string // "log_employees", "province=上海市"
	label string // what a reason calls it
	num   func(a *Account) float64
	key   string // one-hot: the value's attribute
	value string
}

// lookalikeCategories are the one-hot attributes: name and how to read it.
var lookalikeCategories = []struct {
	name string
	get  func(a *Account) string
}{
	{"industry_section", func(a *Account) string {
		if a.d.indOK {
			return a.d.ind.Section
		}
		return ""
	}},
	{"industry_division", func(a *Account) string {
		if a.d.indOK && len(a.d.ind.Code) >= 2 {
			return a.d.ind.Code[:2]
		}
		return ""
	}},
	{"province", func(a *Account) string { return a.d.prov }},
	{"ownership", func(a *Account) string { return a.String("ownership") }},
	{"stage", func(a *Account) string { return a.String("stage") }},
	{"listed", func(a *Account) string {
		if t := a.Traits["listed"]; t != nil {
			if b, ok := t.Value.(bool); ok {
				return fmt.Sprint(b)
			}
		}
		return ""
	}},
}

// lookalikeNumeric are the numeric inputs.
func lookalikeNumeric(m *Model) []*lookalikeFeature {
	now := m.Now()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []*lookalikeFeature{
		{name: "log_employees", label: "employees", num: func(a *Account) float64 { return math.Log10(a.d.emp + 1) }},
		{name: "log_revenue", label: "revenue", num: func(a *Account) float64 { return math.Log10(a.d.rev + 1) }},
		{name: "engagement", label: "engagement", num: func(a *Account) float64 { return math.Log1p(a.Engagement.At(now)) }},
		{name: "role_coverage", label: "role coverage", num: func(a *Account) float64 { return a.d.cov }},
		{name: "decision_contact", label: "contact at 决策层", num: func(a *Account) float64 { return b(a.d.decision) }},
		{name: "log_people", label: "people", num: func(a *Account) float64 { return math.Log1p(float64(len(a.Members))) }},
	}
}

// Lookalike finds the accounts most like the seeds.
func (m *Model) Lookalike(opt LookalikeOptions) (*Lookalike, error) {
	if opt.HoldOut <= 0 || opt.HoldOut >= 1 {
		opt.HoldOut = 0.2
	}
	if opt.Limit <= 0 {
		opt.Limit = 20
	}
	if opt.Limit > 1000 {
		return nil, portrait.Errorf(portrait.EINVALID, "limit is at most 1000, not %d", opt.Limit)
	}
	card := m.Scorecard()
	m.refresh(card)
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := m.sorted()
	index := make(map[string]int, len(all))
	for i, a := range all {
		index[a.ID] = i
	}
	inSeed := make([]bool, len(all))
	var seeds []int
	var missing []string
	for _, id := range opt.Seeds {
		a := m.find(id)
		if a == nil {
			missing = append(missing, id)
			continue
		}
		if i := index[a.ID]; !inSeed[i] {
			inSeed[i] = true
			seeds = append(seeds, i)
		}
	}
	if len(missing) > 0 {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no account %s", strings.Join(missing[:min(5, len(missing))], ", "))
	}
	if len(seeds) < 10 {
		return nil, portrait.Errorf(portrait.EINVALID, "a lookalike needs at least 10 seed accounts, not %d", len(seeds))
	}
	if len(all)-len(seeds) < 10 {
		return nil, portrait.Errorf(portrait.EINVALID, "%d of %d accounts are seeds: too few left to expand to", len(seeds), len(all))
	}

	// Features: the numeric ones, then the 20 most held values of each
	// attribute (values held by one account only teach nothing).
	feats := lookalikeNumeric(m)
	for _, c := range lookalikeCategories {
		counts := map[string]int{}
		for _, a := range all {
			if v := c.get(a); v != "" {
				counts[v]++
			}
		}
		vals := make([]string, 0, len(counts))
		for v, n := range counts {
			if n > 1 {
				vals = append(vals, v)
			}
		}
		slices.SortFunc(vals, func(x, y string) int {
			if c := cmp.Compare(counts[y], counts[x]); c != 0 {
				return c
			}
			return strings.Compare(x, y)
		})
		for _, v := range vals[:min(20, len(vals))] {
			feats = append(feats, &lookalikeFeature{name: c.name + "=" + v, label: c.name, key: c.name, value: v})
		}
	}
	get := map[string]func(*Account) string{}
	for _, c := range lookalikeCategories {
		get[c.name] = c.get
	}
	d := len(feats)
	row := func(a *Account, out []float64) {
		for j, f := range feats {
			if f.num != nil {
				out[j] = f.num(a)
			} else if get[f.key](a) == f.value {
				out[j] = 1
			} else {
				out[j] = 0
			}
		}
	}
	x := make([]float64, len(all)*d)
	for i, a := range all {
		row(a, x[i*d:(i+1)*d])
	}
	// Unknown numbers (no employees given) take the mean.
	means := make([]float64, d)
	for j := range d {
		s, n := 0.0, 0
		for i := range all {
			if v := x[i*d+j]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				s += v
				n++
			}
		}
		if n > 0 {
			means[j] = s / float64(n)
		}
		for i := range all {
			if v := x[i*d+j]; math.IsNaN(v) || math.IsInf(v, 0) {
				x[i*d+j] = means[j]
			}
		}
	}

	rng := rand.New(rand.NewPCG(opt.Seed, 0xacc10a4a))
	shuffled := slices.Clone(seeds)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	hold := max(2, int(math.Round(float64(len(seeds))*opt.HoldOut)))
	heldOut := make([]bool, len(all))
	for _, i := range shuffled[:hold] {
		heldOut[i] = true
	}
	train := shuffled[hold:]
	var others []int
	for i := range all {
		if !inSeed[i] {
			others = append(others, i)
		}
	}
	k := min(len(others), max(5*len(train), 5000), 100_000)
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	rows := append(slices.Clone(train), others[:k]...)
	tx := make([]float64, 0, len(rows)*d)
	ty := make([]float64, len(rows))
	for r, i := range rows {
		tx = append(tx, x[i*d:(i+1)*d]...)
		if r < len(train) {
			ty[r] = 1
		}
	}
	model, err := logit.Fit(tx, len(rows), d, ty, logit.Options{Standardize: true})
	if err != nil {
		return nil, err
	}
	logOdds := make([]float64, len(all))
	for i := range all {
		logOdds[i] = model.Intercept
		for j := range d {
			logOdds[i] += model.Weights[j] * x[i*d+j]
		}
	}
	now := m.Now()
	out := &Lookalike{SeedSize: len(seeds), TrainSeed: len(train), HeldOut: hold, Features: d}

	// Evaluation: every account but the training seeds, best first; the
	// held-out seeds hide among them.
	var cand []int
	for i := range all {
		if !inSeed[i] || heldOut[i] {
			cand = append(cand, i)
		}
	}
	rank := func(l []int) {
		slices.SortStableFunc(l, func(a, b int) int { return cmp.Compare(logOdds[b], logOdds[a]) })
	}
	rank(cand)
	out.Candidates = len(cand)
	sc := make([]float64, len(cand))
	pos := make([]float64, len(cand))
	cum := make([]int, len(cand)+1)
	for r, i := range cand {
		sc[r] = logOdds[i]
		cum[r+1] = cum[r]
		if heldOut[i] {
			pos[r] = 1
			cum[r+1]++
		}
	}
	if auc, err := logit.AUC(sc, pos); err == nil {
		out.AUC = auc
	}
	out.BaseRate = float64(hold) / float64(len(cand))
	out.PrecisionAtK = float64(cum[hold]) / float64(hold)
	sizes := []int{hold, len(seeds)}
	for _, f := range []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5} {
		sizes = append(sizes, int(f*float64(len(cand))))
	}
	slices.Sort(sizes)
	for _, s := range slices.Compact(sizes) {
		if s < 1 || s > len(cand) {
			continue
		}
		p := float64(cum[s]) / float64(s)
		out.Curve = append(out.Curve, LookalikePoint{Size: s, Hits: cum[s], Precision: p, Recall: float64(cum[s]) / float64(hold), Lift: p / out.BaseRate})
	}
	idx := make([]int, d)
	for j := range idx {
		idx[j] = j
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(model.StdWeights[b]), math.Abs(model.StdWeights[a])) })
	for _, j := range idx[:min(10, d)] {
		out.TopFeatures = append(out.TopFeatures, logit.FeatureWeight{Feature: feats[j].name, Weight: model.Weights[j], StdWeight: model.StdWeights[j]})
	}

	// The accounts found: the best outside the whole seed.
	var found []int
	for i := range all {
		if !inSeed[i] {
			found = append(found, i)
		}
	}
	rank(found)
	for _, i := range found[:min(opt.Limit, len(found))] {
		a := all[i]
		la := LookalikeAccount{ID: a.ID, Name: a.Name(), Score: math.Round(1e4/(1+math.Exp(-logOdds[i]))) / 1e4}
		type contrib struct {
			j int
			c float64
		}
		var cs []contrib
		for j := range d {
			if c := model.Weights[j] * (x[i*d+j] - means[j]); c > 0.01 {
				cs = append(cs, contrib{j, c})
			}
		}
		slices.SortFunc(cs, func(p, q contrib) int { return cmp.Compare(q.c, p.c) })
		for _, c := range cs[:min(3, len(cs))] {
			f := feats[c.j]
			r := LookalikeReason{Feature: f.name, LogOdds: math.Round(c.c*1000) / 1000}
			if f.num != nil {
				r.Value = lookalikeValue(f.name, a, now)
				r.Text = fmt.Sprintf("%s %s, as the seeds", f.label, r.Value)
			} else {
				r.Value = f.value
				r.Text = fmt.Sprintf("%s %s, as the seeds", f.label, f.value)
			}
			la.Reasons = append(la.Reasons, r)
		}
		out.Accounts = append(out.Accounts, la)
	}
	return out, nil
}

// lookalikeValue shows a numeric feature's value as the account holds it.
func lookalikeValue(name string, a *Account, now time.Time) string {
	switch name {
	case "log_employees":
		return fmt.Sprintf("%.0f", a.d.emp)
	case "log_revenue":
		return fmt.Sprintf("%.0f", a.d.rev)
	case "engagement":
		return fmt.Sprintf("%.1f", a.Engagement.At(now))
	case "role_coverage":
		return fmt.Sprintf("%.0f%%", 100*a.d.cov)
	case "decision_contact":
		return fmt.Sprint(a.d.decision)
	case "log_people":
		return fmt.Sprint(len(a.Members))
	}
	return ""
}

// WonAccounts are the ids of the accounts with a won opportunity: the best
// current customers, the default seed of a lookalike.
func (m *Model) WonAccounts() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, a := range m.sorted() {
		if won, _, _ := a.Won(); won > 0 {
			out = append(out, a.ID)
		}
	}
	return out
}
