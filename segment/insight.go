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

// numericInsight tests target against rest. Means and variances take one
// pass over the base and one over the target (the rest is their
// difference when the target is inside the base); medians and the counts
// above the pooled median read the trait's quantile buckets, so a
// selection runs over one bucket's values rather than all of them.
func (c *traitCol) numericInsight(attr string, tg, bs, rest *roaring.Bitmap, minGroup int) NumericInsight {
	tg, bs, rest = roaring.And(c.isNum, tg), roaring.And(c.isNum, bs), roaring.And(c.isNum, rest)
	inside := tg.AndCardinality(bs) == tg.GetCardinality()
	shift := 0.0 // moments about a typical value keep the sums of squares accurate
	if c.edges != nil {
		shift = c.edges[len(c.edges)/2]
	} else if !bs.IsEmpty() {
		shift = c.nums[bs.Minimum()]
	}
	mt, mb := c.moments(tg, shift), c.moments(bs, shift)
	var mr moments
	if inside {
		mr = moments{n: mb.n - mt.n, s: mb.s - mt.s, ss: mb.ss - mt.ss, shift: shift}
	} else {
		mr = c.moments(rest, shift)
	}
	r := NumericInsight{Attribute: attr, CountTarget: mt.n, CountBase: mb.n}
	if mt.n > 0 {
		m, med := mt.mean(), c.median(tg)
		r.MeanTarget, r.MedianTarget = &m, &med
	}
	if mb.n > 0 {
		m, med := mb.mean(), c.median(bs)
		r.MeanBase, r.MedianBase = &m, &med
		if m != 0 && mt.n > 0 {
			ratio := mt.mean() / m * 100
			r.Ratio = &ratio
		}
	}
	if mt.n < minGroup || mr.n < minGroup {
		return r
	}
	if t, df, ok := welch(mt.mean(), mt.variance(), mt.n, mr.mean(), mr.variance(), mr.n); ok {
		p := 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
		r.T, r.PValueMean, r.Tested = &t, &p, true
	}
	m := *r.MedianBase // the pooled median when the target is inside the base
	if !inside {
		m = c.median(roaring.Or(tg, rest))
	}
	if p, ok := moodMedian(c.countAbove(tg, m), mt.n, c.countAbove(rest, m), mr.n); ok {
		r.PValueMedian, r.Tested = &p, true
	}
	return r
}

// moments are the count, sum and sum of squares of values about shift.
type moments struct {
	n     int
	s, ss float64
	shift float64
}

func (m moments) mean() float64 { return m.shift + m.s/float64(m.n) }

// variance is the unbiased sample variance.
func (m moments) variance() float64 {
	if m.n < 2 {
		return 0
	}
	return max(0, (m.ss-m.s*m.s/float64(m.n))/float64(m.n-1))
}

func (c *traitCol) moments(scope *roaring.Bitmap, shift float64) moments {
	out := moments{shift: shift}
	nums := c.nums
	eachBatch(scope, func(ns []uint32) {
		s, ss := 0.0, 0.0
		for _, n := range ns {
			d := nums[n] - shift
			s += d
			ss += d * d
		}
		out.n += len(ns)
		out.s += s
		out.ss += ss
	})
	return out
}

// kth is the k-th smallest number (from 0) of scope, whose members all
// hold a number. With quantile buckets, the bucket holding rank k is found
// from counts and only its values are selected among.
func (c *traitCol) kth(scope *roaring.Bitmap, k int) float64 {
	gather := func(bm *roaring.Bitmap) []float64 {
		vals := make([]float64, 0, bm.GetCardinality())
		nums := c.nums
		eachBatch(bm, func(ns []uint32) {
			for _, n := range ns {
				vals = append(vals, nums[n])
			}
		})
		return vals
	}
	if c.edges == nil {
		return selectK(gather(scope), k)
	}
	before := 0
	for _, b := range c.buckets {
		cnt := int(b.AndCardinality(scope))
		if k < before+cnt {
			return selectK(gather(roaring.And(b, scope)), k-before)
		}
		before += cnt
	}
	return math.NaN() // k beyond the scope: median never asks
}

// median of the numbers of scope (every member holds one).
func (c *traitCol) median(scope *roaring.Bitmap) float64 {
	n := int(scope.GetCardinality())
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return c.kth(scope, n/2)
	}
	return (c.kth(scope, n/2-1) + c.kth(scope, n/2)) / 2
}

// countAbove counts the members of scope holding a number above m: whole
// buckets above m's bucket by count, m's own bucket by its values.
func (c *traitCol) countAbove(scope *roaring.Bitmap, m float64) int {
	above := 0
	nums := c.nums
	scan := func(bm *roaring.Bitmap) {
		eachBatch(bm, func(ns []uint32) {
			for _, n := range ns {
				if nums[n] > m {
					above++
				}
			}
		})
	}
	if c.edges == nil {
		scan(scope)
		return above
	}
	b := c.bucket(m)
	for i := b + 1; i < len(c.buckets); i++ {
		above += int(c.buckets[i].AndCardinality(scope))
	}
	scan(roaring.And(c.buckets[b], scope))
	return above
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

// moodMedian is Mood's median test from the counts above the pooled
// median in each group: the 2×2 table (above or not × group) tested by
// chi-square with one degree of freedom. It needs counts, not ranks, which
// a rank test (Mann–Whitney) over a million values would sort for.
func moodMedian(a, n1, b, n2 int) (float64, bool) {
	f1, f2 := float64(n1), float64(n2)
	p := float64(a+b) / (f1 + f2)
	if p == 0 || p == 1 {
		return 0, false // every value at the median: no information
	}
	chi := 0.0
	for _, c := range [][2]float64{{float64(a), f1 * p}, {f1 - float64(a), f1 * (1 - p)}, {float64(b), f2 * p}, {f2 - float64(b), f2 * (1 - p)}} {
		d := c[0] - c[1]
		chi += d * d / c[1]
	}
	return distuv.ChiSquared{K: 1}.Survival(chi), true
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
