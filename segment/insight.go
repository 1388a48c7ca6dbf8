package segment

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portrait-cdp/portrait"
)

// InsightOptions tunes an audience comparison. Zero values take the
// defaults below.
type InsightOptions struct {
	// MinExpected is the smallest expected count, in each of the four cells
	// of a value's 2×2 table (target/rest × holds/does not), for the value
	// to be tested: below it the normal approximation of the z test is not
	// trustworthy and a handful of profiles would be over-read. Default 5.
	MinExpected float64
	// MinGroup is the smallest number of profiles, on each side, holding a
	// number for a numeric trait to be tested. Default 30.
	MinGroup int
	// FDR is the false discovery rate the Benjamini–Hochberg procedure
	// controls over every test of one comparison. Default 0.05.
	FDR float64
	// MaxValues skips categorical traits with more distinct values than
	// this (names, emails, ids): a share per near-unique value says
	// nothing and multiplies the tests. Default 200.
	MaxValues int
}

func (o *InsightOptions) defaults() {
	if o.MinExpected <= 0 {
		o.MinExpected = 5
	}
	if o.MinGroup <= 0 {
		o.MinGroup = 30
	}
	if !(o.FDR > 0 && o.FDR < 1) {
		o.FDR = 0.05
	}
	if o.MaxValues <= 0 {
		o.MaxValues = 200
	}
}

// AttributeInsight compares the share of profiles holding one value (a
// categorical trait value, a list element, a tag) in the target and in
// the base.
//
// Shares are over each group's size, profiles without the trait included.
// TGI is share_target / share_base × 100 (the base includes the target
// when the target is part of it, as in the usual TGI). The test compares
// the target with the rest of the base (base minus target): for base=all
// it is the test of independence of membership and value.
type AttributeInsight struct {
	Attribute   string  `json:"attribute"` // traits.<name> or tags
	Value       string  `json:"value"`
	CountTarget int     `json:"count_target"`
	CountBase   int     `json:"count_base"`
	ShareTarget float64 `json:"share_target"`
	ShareBase   float64 `json:"share_base"`
	TGI         float64 `json:"tgi"`
	// Z is the two-proportion z statistic of target vs rest (pooled
	// variance); PValue its two-sided p; QValue the Benjamini–Hochberg
	// adjusted p. All nil when the value was not tested (Tested false:
	// too few profiles, see InsightOptions.MinExpected).
	Z           *float64 `json:"z"`
	PValue      *float64 `json:"p_value"`
	QValue      *float64 `json:"q_value"`
	Tested      bool     `json:"tested"`
	Significant bool     `json:"significant"`
}

// NumericInsight compares a numeric trait: means with Welch's t test and
// medians with Mood's median test, target against the rest of the base.
type NumericInsight struct {
	Attribute    string   `json:"attribute"`
	CountTarget  int      `json:"count_target"`
	CountBase    int      `json:"count_base"`
	MeanTarget   *float64 `json:"mean_target"`
	MeanBase     *float64 `json:"mean_base"`
	MedianTarget *float64 `json:"median_target"`
	MedianBase   *float64 `json:"median_base"`
	// Ratio is mean_target / mean_base × 100, the numeric TGI.
	Ratio        *float64 `json:"ratio"`
	T            *float64 `json:"t"`
	PValueMean   *float64 `json:"p_value_mean"`
	QValueMean   *float64 `json:"q_value_mean"`
	PValueMedian *float64 `json:"p_value_median"`
	QValueMedian *float64 `json:"q_value_median"`
	Tested       bool     `json:"tested"`
	Significant  bool     `json:"significant"`
}

// Insight is an audience comparison. Attributes and Numeric are ranked:
// significant first, then by the strength of the evidence (|z| or |t|),
// so the top rows are the attributes that most distinguish the target.
type Insight struct {
	TargetSize int                `json:"target_size"`
	BaseSize   int                `json:"base_size"`
	RestSize   int                `json:"rest_size"`
	Attributes []AttributeInsight `json:"attributes"`
	Numeric    []NumericInsight   `json:"numeric"`
	// Tests is how many tests the correction covered; Correction names it.
	Tests      int     `json:"tests"`
	Correction string  `json:"correction"`
	FDR        float64 `json:"fdr"`
	// Skipped lists attributes left out, with the reason.
	Skipped []string `json:"skipped,omitempty"`
}

// Insight compares target with base (nil: every live profile). Categorical
// traits, list elements and tags are compared by share from bitmap
// intersection counts; numeric traits by mean and median from the dense
// value columns.
func (ix *Index) Insight(target, base *roaring.Bitmap, opt InsightOptions) (*Insight, error) {
	opt.defaults()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if target == nil {
		return nil, portrait.Errorf(portrait.EINVALID, "an insight needs a target segment")
	}
	tg := roaring.And(target, ix.live)
	bs := ix.live.Clone()
	if base != nil {
		bs.And(base)
	}
	rest := roaring.AndNot(bs, tg)
	nt, nb, nr := int(tg.GetCardinality()), int(bs.GetCardinality()), int(rest.GetCardinality())
	out := &Insight{TargetSize: nt, BaseSize: nb, RestSize: nr, Attributes: []AttributeInsight{}, Numeric: []NumericInsight{},
		Correction: "Benjamini–Hochberg", FDR: opt.FDR}
	if nt == 0 || nb == 0 {
		return out, nil
	}
	value := func(attr, val string, bm *roaring.Bitmap) {
		ct := int(bm.AndCardinality(tg))
		cb := int(bm.AndCardinality(bs))
		if ct == 0 && cb == 0 {
			return
		}
		cr := int(bm.AndCardinality(rest))
		a := AttributeInsight{Attribute: attr, Value: val, CountTarget: ct, CountBase: cb,
			ShareTarget: float64(ct) / float64(nt), ShareBase: float64(cb) / float64(nb)}
		if a.ShareBase > 0 {
			a.TGI = a.ShareTarget / a.ShareBase * 100
		}
		if z, ok := twoProportionZ(ct, nt, cr, nr, opt.MinExpected); ok {
			p := 2 * distuv.UnitNormal.Survival(math.Abs(z))
			a.Z, a.PValue, a.Tested = &z, &p, true
		}
		out.Attributes = append(out.Attributes, a)
	}
	names := make([]string, 0, len(ix.traits))
	for name := range ix.traits {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := ix.traits[name]
		attr := "traits." + name
		if len(c.dict) > 0 {
			if c.highCard || len(c.dict) > opt.MaxValues {
				out.Skipped = append(out.Skipped, attr+": more than "+itoa(opt.MaxValues)+" distinct values")
			} else {
				for i, v := range c.dict {
					value(attr, valueLabel(v), c.cat[i])
				}
			}
		}
		if len(c.elems) > 0 {
			if len(c.elems) > opt.MaxValues {
				out.Skipped = append(out.Skipped, attr+": lists with more than "+itoa(opt.MaxValues)+" distinct elements")
			} else {
				elems := make([]any, 0, len(c.elems))
				for e := range c.elems {
					elems = append(elems, e)
				}
				slices.SortFunc(elems, func(a, b any) int { return strings.Compare(valueLabel(a), valueLabel(b)) })
				for _, e := range elems {
					value(attr, valueLabel(e), c.elems[e])
				}
			}
		}
		if !c.isNum.IsEmpty() {
			out.Numeric = append(out.Numeric, c.numericInsight(attr, tg, bs, rest, opt.MinGroup))
		}
	}
	tags := make([]string, 0, len(ix.tags))
	for name := range ix.tags {
		tags = append(tags, name)
	}
	slices.Sort(tags)
	for _, name := range tags {
		value("tags", name, ix.tags[name])
	}
	out.Tests = adjust(out, opt.FDR)
	rank(out)
	return out, nil
}

// twoProportionZ is the pooled two-proportion z statistic of x1/n1 against
// x2/n2; false when a cell of the 2×2 table expects fewer than minExp.
func twoProportionZ(x1, n1, x2, n2 int, minExp float64) (float64, bool) {
	if n1 == 0 || n2 == 0 {
		return 0, false
	}
	n := float64(n1 + n2)
	p := float64(x1+x2) / n
	for _, e := range []float64{float64(n1) * p, float64(n1) * (1 - p), float64(n2) * p, float64(n2) * (1 - p)} {
		if e < minExp {
			return 0, false
		}
	}
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	return (float64(x1)/float64(n1) - float64(x2)/float64(n2)) / se, true
}

// numericInsight gathers the trait's numbers in target, base and rest in
// one pass each, then tests target against rest.
func (c *traitCol) numericInsight(attr string, tg, bs, rest *roaring.Bitmap, minGroup int) NumericInsight {
	gather := func(scope *roaring.Bitmap) []float64 {
		vals := make([]float64, 0, c.isNum.AndCardinality(scope))
		nums := c.nums
		eachBatch(roaring.And(c.isNum, scope), func(ns []uint32) {
			for _, n := range ns {
				vals = append(vals, nums[n])
			}
		})
		return vals
	}
	tv, rv := gather(tg), gather(rest)
	var bv []float64
	if tg.AndCardinality(bs) == tg.GetCardinality() {
		bv = append(append(make([]float64, 0, len(tv)+len(rv)), tv...), rv...) // base = target ∪ rest
	} else {
		bv = gather(bs)
	}
	r := NumericInsight{Attribute: attr, CountTarget: len(tv), CountBase: len(bv)}
	mt, vt := meanVar(tv)
	mb, _ := meanVar(bv)
	mr, vr := meanVar(rv)
	if len(tv) > 0 {
		r.MeanTarget = &mt
		m := median(tv)
		r.MedianTarget = &m
	}
	if len(bv) > 0 {
		r.MeanBase = &mb
		m := median(bv)
		r.MedianBase = &m
		if mb != 0 && len(tv) > 0 {
			ratio := mt / mb * 100
			r.Ratio = &ratio
		}
	}
	if len(tv) < minGroup || len(rv) < minGroup {
		return r
	}
	if t, df, ok := welch(mt, vt, len(tv), mr, vr, len(rv)); ok {
		p := 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
		r.T, r.PValueMean, r.Tested = &t, &p, true
	}
	if p, ok := moodMedian(tv, rv); ok {
		r.PValueMedian, r.Tested = &p, true
	}
	return r
}

// meanVar is the mean and the unbiased variance (two-pass, for accuracy
// over large sums).
func meanVar(x []float64) (mean, variance float64) {
	if len(x) == 0 {
		return 0, 0
	}
	var s float64
	for _, v := range x {
		s += v
	}
	mean = s / float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss, comp float64
	for _, v := range x {
		d := v - mean
		ss += d * d
		comp += d
	}
	return mean, (ss - comp*comp/float64(len(x))) / float64(len(x)-1)
}

// welch is Welch's t statistic and its Welch–Satterthwaite degrees of
// freedom; false when both variances are zero (nothing to test).
func welch(m1, v1 float64, n1 int, m2, v2 float64, n2 int) (t, df float64, ok bool) {
	a, b := v1/float64(n1), v2/float64(n2)
	if a+b == 0 {
		return 0, 0, false
	}
	t = (m1 - m2) / math.Sqrt(a+b)
	df = (a + b) * (a + b) / (a*a/float64(n1-1) + b*b/float64(n2-1))
	return t, df, true
}

// moodMedian is Mood's median test: the 2×2 table of values above the
// pooled median, or not, in each group, tested by chi-square with one
// degree of freedom. It costs a selection, not a sort, which a rank test
// (Mann–Whitney) over a million values would need.
func moodMedian(x, y []float64) (float64, bool) {
	pooled := append(append(make([]float64, 0, len(x)+len(y)), x...), y...)
	m := median(pooled)
	above := func(v []float64) int {
		k := 0
		for _, f := range v {
			if f > m {
				k++
			}
		}
		return k
	}
	a, b := above(x), above(y)
	n1, n2 := float64(len(x)), float64(len(y))
	n := n1 + n2
	p := float64(a+b) / n
	if p == 0 || p == 1 {
		return 0, false // every value at the median: no information
	}
	chi := 0.0
	for _, c := range [][2]float64{{float64(a), n1 * p}, {n1 - float64(a), n1 * (1 - p)}, {float64(b), n2 * p}, {n2 - float64(b), n2 * (1 - p)}} {
		d := c[0] - c[1]
		chi += d * d / c[1]
	}
	return distuv.ChiSquared{K: 1}.Survival(chi), true
}

// median of x, which it reorders (a copy is the caller's to make).
func median(x []float64) float64 {
	n := len(x)
	if n == 0 {
		return math.NaN()
	}
	hi := selectK(x, n/2)
	if n%2 == 1 {
		return hi
	}
	// the largest of the lower half, which selectK left below n/2
	lo := x[0]
	for _, v := range x[1 : n/2] {
		lo = max(lo, v)
	}
	return (lo + hi) / 2
}

// selectK reorders x so that x[k] is its k-th smallest value, smaller or
// equal values before it (Hoare's selection with a median-of-three pivot),
// and returns it.
func selectK(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// median of three to the middle
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}

// adjust applies the Benjamini–Hochberg step-up procedure to every p
// value of the comparison (shares, means and medians together, since a
// reader scans them all), sets the q values and significance, and returns
// how many tests it covered.
func adjust(in *Insight, fdr float64) int {
	type ref struct {
		p float64
		q **float64
	}
	var refs []ref
	for i := range in.Attributes {
		a := &in.Attributes[i]
		if a.PValue != nil {
			refs = append(refs, ref{*a.PValue, &a.QValue})
		}
	}
	for i := range in.Numeric {
		r := &in.Numeric[i]
		if r.PValueMean != nil {
			refs = append(refs, ref{*r.PValueMean, &r.QValueMean})
		}
		if r.PValueMedian != nil {
			refs = append(refs, ref{*r.PValueMedian, &r.QValueMedian})
		}
	}
	m := len(refs)
	if m == 0 {
		return 0
	}
	qs := BenjaminiHochberg(func() []float64 {
		ps := make([]float64, m)
		for i, r := range refs {
			ps[i] = r.p
		}
		return ps
	}())
	for i, r := range refs {
		q := qs[i]
		*r.q = &q
	}
	for i := range in.Attributes {
		a := &in.Attributes[i]
		a.Significant = a.QValue != nil && *a.QValue <= fdr
	}
	for i := range in.Numeric {
		r := &in.Numeric[i]
		r.Significant = (r.QValueMean != nil && *r.QValueMean <= fdr) || (r.QValueMedian != nil && *r.QValueMedian <= fdr)
	}
	return m
}

// BenjaminiHochberg returns the adjusted p values (q values) of ps, in the
// same order: q_(i) = min over j ≥ i of p_(j)·m/j, capped at 1. A test is
// significant at false discovery rate α when its q ≤ α.
func BenjaminiHochberg(ps []float64) []float64 {
	m := len(ps)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ps[a], ps[b]) })
	qs := make([]float64, m)
	run := 1.0
	for r := m - 1; r >= 0; r-- {
		i := order[r]
		run = min(run, ps[i]*float64(m)/float64(r+1))
		qs[i] = run
	}
	return qs
}

func rank(in *Insight) {
	stat := func(z *float64) float64 {
		if z == nil {
			return -1
		}
		return math.Abs(*z)
	}
	slices.SortStableFunc(in.Attributes, func(a, b AttributeInsight) int {
		if a.Significant != b.Significant {
			if a.Significant {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(stat(b.Z), stat(a.Z)); c != 0 {
			return c
		}
		return cmp.Compare(b.CountTarget, a.CountTarget)
	})
	slices.SortStableFunc(in.Numeric, func(a, b NumericInsight) int {
		if a.Significant != b.Significant {
			if a.Significant {
				return -1
			}
			return 1
		}
		return cmp.Compare(stat(b.T), stat(a.T))
	})
}
