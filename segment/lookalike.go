package segment

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/logit"
)

// LookalikeOptions tunes a lookalike expansion.
type LookalikeOptions struct {
	// Exclude lists what the model must not read, as dependency keys
	// ("trait:country", "tag:vip"). Expanding "customers in Germany" by the
	// country trait would only find Germans again; the caller passes the
	// seed segment's own dependencies (Deps of its plan) by default.
	Exclude []string
	// Hidden, when set, names the traits the model must never read,
	// whatever Exclude says: those above the caller's clearance, which
	// would otherwise select (and appear among the top features, a value
	// of a categorical trait in the feature's name).
	Hidden func(trait string) bool
	// HoldOut is the share of the seed kept out of training to measure
	// precision and recall (default 0.2).
	HoldOut float64
	// Negatives is how many non-seed profiles are sampled for training per
	// seed member (default 5; at least 5,000 and at most 100,000 in all).
	Negatives int
	// Seed makes the hold-out and the sample reproducible.
	Seed uint64
	// MaxValues: categorical traits and lists with more distinct values are
	// left out (default 200); the 20 most held values of the others
	// become features.
	MaxValues int
}

// LookalikePoint is the quality of the ranking at one size: of the top
// Size candidates (every profile outside the training seed), how many
// are held-out seed members.
type LookalikePoint struct {
	Size int `json:"size"`
	Hits int `json:"hits"`
	// Precision is hits / size: the share of the top Size that are known
	// members of the seed group, a lower bound on how many are like them.
	Precision float64 `json:"precision"`
	// Recall is hits / held-out members: how much of a hidden group of the
	// seed's kind the top Size finds.
	Recall float64 `json:"recall"`
	// Lift is precision over the held-out members' share of candidates
	// (what random picks would find).
	Lift float64 `json:"lift"`
}

// Lookalike is a fitted expansion.
type Lookalike struct {
	SeedSize    int                   `json:"seed_size"`
	TrainSeed   int                   `json:"train_seed"`
	HeldOut     int                   `json:"held_out"`
	Candidates  int                   `json:"candidates"`
	Features    int                   `json:"features"`
	AUC         float64               `json:"auc"` // held-out seed vs the other candidates
	Curve       []LookalikePoint      `json:"curve"`
	TopFeatures []logit.FeatureWeight `json:"top_features"`
	Excluded    []string              `json:"excluded"`

	scores []float64 // log-odds by profile number
	seed   *roaring.Bitmap
	ix     *Index
}

// feature is one model input read from the index columns.
type feature struct {
	name string
	col  *traitCol       // numeric: the column
	mean float64         // numeric: imputed for profiles without a value
	bm   *roaring.Bitmap // binary: the profiles holding it
}

func (f *feature) value(n uint32) float64 {
	if f.bm != nil {
		if f.bm.Contains(n) {
			return 1
		}
		return 0
	}
	if f.col.isNum.Contains(n) {
		return f.col.nums[n]
	}
	return f.mean
}

// features lists the model inputs: every numeric trait, the 20 most held
// values of each categorical trait and list, and every tag, except what
// exclude names.
func (ix *Index) features(exclude map[string]bool, hidden func(string) bool, maxValues int) []*feature {
	var out []*feature
	names := make([]string, 0, len(ix.traits))
	for name := range ix.traits {
		names = append(names, name)
	}
	slices.Sort(names)
	top := func(prefix string, vals []any, bms []*roaring.Bitmap) {
		idx := make([]int, len(vals))
		for i := range idx {
			idx[i] = i
		}
		card := func(i int) uint64 { return roaring.And(bms[i], ix.live).GetCardinality() }
		cards := make([]uint64, len(vals))
		for i := range idx {
			cards[i] = card(i)
		}
		slices.SortFunc(idx, func(a, b int) int {
			if c := cmp.Compare(cards[b], cards[a]); c != 0 {
				return c
			}
			return strings.Compare(valueLabel(vals[a]), valueLabel(vals[b]))
		})
		for _, i := range idx[:min(20, len(idx))] {
			if cards[i] > 0 {
				out = append(out, &feature{name: prefix + "=" + valueLabel(vals[i]), bm: bms[i]})
			}
		}
	}
	for _, name := range names {
		if exclude["trait:"+name] || hidden != nil && hidden(name) {
			continue
		}
		c := ix.traits[name]
		attr := "traits." + name
		if len(c.dict) > 0 && !c.highCard && len(c.dict) <= maxValues {
			top(attr, c.dict, c.cat)
		}
		if len(c.elems) > 0 && len(c.elems) <= maxValues {
			vals := make([]any, 0, len(c.elems))
			bms := make([]*roaring.Bitmap, 0, len(c.elems))
			for e, bm := range c.elems {
				vals = append(vals, e)
				bms = append(bms, bm)
			}
			top(attr, vals, bms)
		}
		if nums := roaring.And(c.isNum, ix.live); nums.GetCardinality() > 1 {
			m := c.moments(nums, 0)
			if m.variance() > 0 {
				out = append(out, &feature{name: attr, col: c, mean: m.mean()})
			}
		}
	}
	tags := make([]string, 0, len(ix.tags))
	for name := range ix.tags {
		if !exclude["tag:"+name] {
			tags = append(tags, name)
		}
	}
	slices.Sort(tags)
	for _, name := range tags {
		out = append(out, &feature{name: "tags=" + name, bm: ix.tags[name]})
	}
	return out
}

// Lookalike fits a logistic regression (analytics/logit) separating the
// seed from a sample of the other profiles, over features read from the
// index, and scores every profile. Part of the seed is held out of
// training: where those members rank among all candidates gives the
// precision, recall and lift at each size.
func (ix *Index) Lookalike(seed *roaring.Bitmap, opt LookalikeOptions) (*Lookalike, error) {
	if opt.HoldOut <= 0 || opt.HoldOut >= 1 {
		opt.HoldOut = 0.2
	}
	if opt.Negatives <= 0 {
		opt.Negatives = 5
	}
	if opt.MaxValues <= 0 {
		opt.MaxValues = 200
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	seed = roaring.And(seed, ix.live)
	ns := int(seed.GetCardinality())
	if ns < 10 {
		return nil, portrait.Errorf(portrait.EINVALID, "a lookalike needs a seed of at least 10 profiles, not %d", ns)
	}
	others := roaring.AndNot(ix.live, seed)
	if others.IsEmpty() {
		return nil, portrait.Errorf(portrait.EINVALID, "every profile is in the seed: nothing to expand to")
	}
	exclude := map[string]bool{}
	for _, k := range opt.Exclude {
		exclude[k] = true
	}
	feats := ix.features(exclude, opt.Hidden, opt.MaxValues)
	if len(feats) == 0 {
		return nil, portrait.Errorf(portrait.EINVALID, "no profile feature is left to learn from once %v are excluded", opt.Exclude)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x10a4a11e))
	seedNums := seed.ToArray()
	rng.Shuffle(len(seedNums), func(i, j int) { seedNums[i], seedNums[j] = seedNums[j], seedNums[i] })
	hold := max(1, int(math.Round(float64(ns)*opt.HoldOut)))
	heldOut := roaring.BitmapOf(seedNums[:hold]...)
	train := seedNums[hold:]
	if len(train) > 50_000 {
		train = train[:50_000] // enough to fit; the rest is neither trained on nor a candidate
	}
	trainBM := roaring.BitmapOf(train...)
	// negatives: a uniform sample of the other profiles
	k := min(int(others.GetCardinality()), min(max(opt.Negatives*len(train), 5000), 100_000))
	neg := sample(others, k, rng)
	rows := append(append([]uint32{}, train...), neg...)
	d := len(feats)
	x := make([]float64, len(rows)*d)
	y := make([]float64, len(rows))
	for i, n := range rows {
		for f, ft := range feats {
			x[i*d+f] = ft.value(n)
		}
		if i < len(train) {
			y[i] = 1
		}
	}
	model, err := logit.Fit(x, len(rows), d, y, logit.Options{Standardize: true})
	if err != nil {
		return nil, err
	}
	// score every profile column by column: a bitmap adds its weight to
	// its members, a numeric column its weighted value
	scores := make([]float64, len(ix.ids))
	base := model.Intercept
	for f, ft := range feats {
		if ft.bm == nil {
			base += model.Weights[f] * ft.mean
		}
	}
	for i := range scores {
		scores[i] = base
	}
	for f, ft := range feats {
		w := model.Weights[f]
		if ft.bm != nil {
			eachBatch(ft.bm, func(ns []uint32) {
				for _, n := range ns {
					scores[n] += w
				}
			})
			continue
		}
		eachBatch(ft.col.isNum, func(ns []uint32) {
			for _, n := range ns {
				scores[n] += w * (ft.col.nums[n] - ft.mean)
			}
		})
	}
	out := &Lookalike{SeedSize: ns, TrainSeed: len(train), HeldOut: hold, Features: d, Excluded: append([]string{}, opt.Exclude...),
		scores: scores, seed: seed, ix: ix}
	// candidates: everyone but the training seed; the held-out members
	// hide among them
	cand := roaring.AndNot(ix.live, trainBM)
	cand.AndNot(roaring.AndNot(seed, roaring.Or(trainBM, heldOut))) // seed members beyond the training cap are not candidates
	order := rankBy(cand, scores)
	out.Candidates = len(order)
	pos := make([]float64, len(order))
	hits := 0
	cum := make([]int, len(order)+1)
	for i, n := range order {
		if heldOut.Contains(n) {
			hits++
			pos[i] = 1
		}
		cum[i+1] = hits
	}
	sc := make([]float64, len(order))
	for i, n := range order {
		sc[i] = scores[n]
	}
	if auc, err := logit.AUC(sc, pos); err == nil {
		out.AUC = auc
	}
	baseRate := float64(hold) / float64(len(order))
	sizes := []int{hold, ns}
	for _, f := range []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5} {
		sizes = append(sizes, int(f*float64(len(order))))
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	for _, s := range sizes {
		if s < 1 || s > len(order) {
			continue
		}
		h := cum[s]
		p := float64(h) / float64(s)
		out.Curve = append(out.Curve, LookalikePoint{Size: s, Hits: h, Precision: p, Recall: float64(h) / float64(hold), Lift: p / baseRate})
	}
	names := make([]string, d)
	for f, ft := range feats {
		names[f] = ft.name
	}
	idx := make([]int, d)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(model.StdWeights[b]), math.Abs(model.StdWeights[a])) })
	for _, f := range idx[:min(10, d)] {
		out.TopFeatures = append(out.TopFeatures, logit.FeatureWeight{Feature: names[f], Weight: model.Weights[f], StdWeight: model.StdWeights[f]})
	}
	return out, nil
}

// Top returns the ids of the n best-scored profiles outside the whole
// seed, best first: the expansion to save.
func (l *Lookalike) Top(n int) []string {
	l.ix.mu.RLock()
	defer l.ix.mu.RUnlock()
	order := rankBy(roaring.AndNot(l.ix.live, l.seed), l.scores)
	out := make([]string, 0, min(n, len(order)))
	for _, num := range order[:min(n, len(order))] {
		out = append(out, l.ix.ids[num])
	}
	return out
}

// Score is a profile's log-odds of belonging with the seed (NaN: unknown).
func (l *Lookalike) Score(id string) float64 {
	l.ix.mu.RLock()
	defer l.ix.mu.RUnlock()
	n, ok := l.ix.nums[id]
	if !ok || int(n) >= len(l.scores) {
		return math.NaN()
	}
	return l.scores[n]
}

// rankBy orders the members of bm by score, highest first (ties by number).
func rankBy(bm *roaring.Bitmap, scores []float64) []uint32 {
	order := bm.ToArray()
	slices.SortStableFunc(order, func(a, b uint32) int { return cmp.Compare(scores[b], scores[a]) })
	return order
}

// sample draws k members of bm uniformly without replacement.
func sample(bm *roaring.Bitmap, k int, rng *rand.Rand) []uint32 {
	all := bm.ToArray()
	for i := 0; i < k; i++ {
		j := i + rng.IntN(len(all)-i)
		all[i], all[j] = all[j], all[i]
	}
	return all[:k]
}

// Lookalike expands a saved segment. Unless opt.Exclude is set, what the
// segment's own definition reads is excluded: a model that learns the
// defining condition back finds nothing new.
func (s *Service) Lookalike(id string, opt LookalikeOptions) (*Lookalike, error) {
	s.mu.RLock()
	l, ok := s.segs[id]
	var seed *roaring.Bitmap
	var deps []string
	if ok {
		seed, deps = l.members.Clone(), Deps(l.plan)
	}
	s.mu.RUnlock()
	if !ok {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
	}
	if opt.Exclude == nil {
		opt.Exclude = deps
	}
	return s.Index.Lookalike(seed, opt)
}
