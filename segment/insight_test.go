package segment_test

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"gonum.org/v1/gonum/mathext"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// R: p.adjust(c(0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205,
// 0.212, 0.216), "BH"), given shuffled to check the order is kept.
func TestBenjaminiHochbergMatchesR(t *testing.T) {
	ps := []float64{0.216, 0.001, 0.074, 0.039, 0.212, 0.008, 0.042, 0.06, 0.205, 0.041}
	want := []float64{0.216, 0.01, 0.1057143, 0.084, 0.216, 0.04, 0.084, 0.1, 0.216, 0.084}
	got := segment.BenjaminiHochberg(ps)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("q[%d] = %.7f, want %.7f (p %.3f)", i, got[i], want[i], ps[i])
		}
	}
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(1e-300, math.Max(math.Abs(a), math.Abs(b))) || math.Abs(a-b) < 1e-12
}

// plainTwoSided is the two-sided p of a standard normal statistic by the
// complementary error function, not gonum's distribution.
func plainTwoSided(z float64) float64 { return math.Erfc(math.Abs(z) / math.Sqrt2) }

// plainMedian sorts a copy.
func plainMedian(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// The insight of one country's customers against all customers, checked
// value by value against an independent computation over the plain
// customer records: counts, shares, TGI, the z statistic (as the signed
// square root of the 2×2 chi-square) and its p (by erfc); for numeric
// traits the means, medians, Welch's t with its p (by the regularised
// incomplete beta) and Mood's median test.
func TestDatasetInsightOnlineRetailMatchesPlainComputation(t *testing.T) {
	ix, cs := retailIndex(t)
	const country = "Germany"
	inTarget := map[string]bool{}
	var ids []string
	for _, c := range cs {
		if c.country == country {
			inTarget[c.id] = true
			ids = append(ids, c.id)
		}
	}
	target := ix.Numbers(ids)
	ins, err := ix.Insight(target, nil, segment.InsightOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nt, nb := len(ids), len(cs)
	if ins.TargetSize != nt || ins.BaseSize != nb || ins.RestSize != nb-nt {
		t.Fatalf("sizes %d/%d/%d, want %d/%d/%d", ins.TargetSize, ins.BaseSize, ins.RestSize, nt, nb, nb-nt)
	}
	t.Logf("%s: %d of %d customers; %d tests, %d attribute rows, %d numeric", country, nt, nb, ins.Tests, len(ins.Attributes), len(ins.Numeric))

	// plain counts per (attribute, value)
	type key struct{ attr, val string }
	count := func(c *retailCustomer) []key {
		ks := []key{{"traits.country", c.country}, {"traits.first_month", c.month}, {"traits.cancelled", strconv.FormatBool(c.cancelled)}}
		for code := range c.items {
			ks = append(ks, key{"tags", "item:" + code})
		}
		return ks
	}
	ct, cb := map[key]int{}, map[key]int{}
	for _, c := range cs {
		for _, k := range count(c) {
			cb[k]++
			if inTarget[c.id] {
				ct[k]++
			}
		}
	}
	if len(ins.Attributes) != len(cb) {
		t.Errorf("%d attribute rows, the plain computation has %d values", len(ins.Attributes), len(cb))
	}
	tested, significant := 0, 0
	for _, a := range ins.Attributes {
		k := key{a.Attribute, a.Value}
		x1, xb := ct[k], cb[k]
		x2, n2 := xb-x1, nb-nt
		if a.CountTarget != x1 || a.CountBase != xb {
			t.Errorf("%v: counts %d/%d, plain %d/%d", k, a.CountTarget, a.CountBase, x1, xb)
			continue
		}
		st, sb := float64(x1)/float64(nt), float64(xb)/float64(nb)
		if !near(a.ShareTarget, st, 1e-12) || !near(a.ShareBase, sb, 1e-12) || !near(a.TGI, st/sb*100, 1e-12) {
			t.Errorf("%v: shares %v/%v TGI %v, plain %v/%v TGI %v", k, a.ShareTarget, a.ShareBase, a.TGI, st, sb, st/sb*100)
		}
		// 2×2 table: rows target/rest, columns holds/not
		a11, a12, a21, a22 := float64(x1), float64(nt-x1), float64(x2), float64(n2-x2)
		n := a11 + a12 + a21 + a22
		r1, r2, c1, c2 := a11+a12, a21+a22, a11+a21, a12+a22
		minExp := math.Min(math.Min(r1*c1, r1*c2), math.Min(r2*c1, r2*c2)) / n
		if a.Tested != (minExp >= 5) {
			t.Errorf("%v: tested %v, smallest expected count %.2f", k, a.Tested, minExp)
			continue
		}
		if !a.Tested {
			if a.PValue != nil || a.Significant {
				t.Errorf("%v: untested value has a p value or is significant", k)
			}
			continue
		}
		tested++
		chi := n * (a11*a22 - a12*a21) * (a11*a22 - a12*a21) / (r1 * r2 * c1 * c2)
		z := math.Copysign(math.Sqrt(chi), a11/r1-a21/r2)
		if !near(*a.Z, z, 1e-9) {
			t.Errorf("%v: z %v, plain %v", k, *a.Z, z)
		}
		if p := plainTwoSided(z); !near(*a.PValue, p, 1e-7) {
			t.Errorf("%v: p %v, plain %v", k, *a.PValue, p)
		}
		if a.Significant {
			significant++
		}
	}
	if tested < 20 {
		t.Errorf("only %d values tested", tested)
	}
	// The country's own row: every target member holds it. Its 2×2 table
	// expects about 2 target members by chance, under the minimum of 5, so
	// it is shown but not tested. The most distinguishing tested rows are
	// postage (foreign customers pay it) and the United Kingdom, which no
	// target member holds.
	var uk *segment.AttributeInsight
	for i, a := range ins.Attributes {
		if a.Attribute == "traits.country" && a.Value == country && (a.ShareTarget != 1 || !near(a.TGI, float64(nb)/float64(nt)*100, 1e-12) || a.Tested) {
			t.Errorf("%s row %+v: want share 1, TGI %.1f, untested", country, a, float64(nb)/float64(nt)*100)
		}
		if a.Attribute == "traits.country" && a.Value == "United Kingdom" {
			uk = &ins.Attributes[i]
		}
	}
	if top := ins.Attributes[0]; top.Attribute != "tags" || top.Value != "item:POST" || !top.Significant || top.TGI < 1000 {
		t.Errorf("top attribute %+v, want tags=item:POST, TGI over 1000, significant", top)
	}
	if uk == nil || uk.TGI != 0 || !uk.Significant {
		t.Errorf("United Kingdom row %+v, want TGI 0, significant", uk)
	}
	if significant < 5 {
		t.Errorf("only %d significant values for %s", significant, country)
	}
	names := map[string]bool{}
	for _, r := range ins.Numeric {
		name := r.Attribute[len("traits."):]
		names[name] = true
		var tv, rv, bv []float64
		for _, c := range cs {
			v, ok := c.numbers()[name]
			if !ok {
				continue
			}
			bv = append(bv, v)
			if inTarget[c.id] {
				tv = append(tv, v)
			} else {
				rv = append(rv, v)
			}
		}
		if r.CountTarget != len(tv) || r.CountBase != len(bv) {
			t.Errorf("%s: counts %d/%d, plain %d/%d", name, r.CountTarget, r.CountBase, len(tv), len(bv))
			continue
		}
		mean := func(x []float64) float64 {
			s := 0.0
			for _, v := range x {
				s += v
			}
			return s / float64(len(x))
		}
		variance := func(x []float64) float64 {
			m, s := mean(x), 0.0
			for _, v := range x {
				s += (v - m) * (v - m)
			}
			return s / float64(len(x)-1)
		}
		if !near(*r.MeanTarget, mean(tv), 1e-9) || !near(*r.MeanBase, mean(bv), 1e-9) {
			t.Errorf("%s: means %v/%v, plain %v/%v", name, *r.MeanTarget, *r.MeanBase, mean(tv), mean(bv))
		}
		if *r.MedianTarget != plainMedian(tv) || *r.MedianBase != plainMedian(bv) {
			t.Errorf("%s: medians %v/%v, plain %v/%v", name, *r.MedianTarget, *r.MedianBase, plainMedian(tv), plainMedian(bv))
		}
		// Welch
		se2 := variance(tv)/float64(len(tv)) + variance(rv)/float64(len(rv))
		tw := (mean(tv) - mean(rv)) / math.Sqrt(se2)
		a, b := variance(tv)/float64(len(tv)), variance(rv)/float64(len(rv))
		df := se2 * se2 / (a*a/float64(len(tv)-1) + b*b/float64(len(rv)-1))
		pw := mathext.RegIncBeta(df/2, 0.5, df/(df+tw*tw))
		if r.T == nil || !near(*r.T, tw, 1e-9) || !near(*r.PValueMean, pw, 1e-6) {
			t.Errorf("%s: t %v p %v, plain t %v p %v", name, r.T, r.PValueMean, tw, pw)
		}
		// Mood's median test
		m := plainMedian(append(append([]float64(nil), tv...), rv...))
		above := func(x []float64) float64 {
			k := 0.0
			for _, v := range x {
				if v > m {
					k++
				}
			}
			return k
		}
		a11, a12, a21, a22 := above(tv), float64(len(tv))-above(tv), above(rv), float64(len(rv))-above(rv)
		nn := a11 + a12 + a21 + a22
		chi := nn * (a11*a22 - a12*a21) * (a11*a22 - a12*a21) / ((a11 + a12) * (a21 + a22) * (a11 + a21) * (a12 + a22))
		if pm := math.Erfc(math.Sqrt(chi / 2)); r.PValueMedian == nil || !near(*r.PValueMedian, pm, 1e-6) {
			t.Errorf("%s: median p %v, plain %v", name, r.PValueMedian, pm)
		}
		t.Logf("%s: mean %.2f vs %.2f (t %.2f, p %.3g), median %.2f vs %.2f (p %.3g)", name, *r.MeanTarget, *r.MeanBase, *r.T, *r.PValueMean, *r.MedianTarget, *r.MedianBase, *r.PValueMedian)
	}
	if len(names) != 4 {
		t.Errorf("numeric traits %v, want invoices, lines, revenue, avg_price", names)
	}
	for _, a := range ins.Attributes[:min(8, len(ins.Attributes))] {
		t.Logf("%s = %s: %.3f vs %.3f, TGI %.0f, q %.3g", a.Attribute, a.Value, a.ShareTarget, a.ShareBase, a.TGI, deref(a.QValue))
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// Random segments differ from the population by chance alone: at a 5 %
// false discovery rate, nearly all comparisons find nothing, and the raw p
// values fall under 0.05 about 5 % of the time.
func TestDatasetInsightNullFindsNothing(t *testing.T) {
	ix, cs := retailIndex(t)
	const rounds = 20
	anySig, under, tests := 0, 0, 0
	for seed := range uint64(rounds) {
		rng := rand.New(rand.NewPCG(seed, 99))
		var ids []string
		for _, c := range cs {
			if rng.Float64() < 0.1 {
				ids = append(ids, c.id)
			}
		}
		ins, err := ix.Insight(ix.Numbers(ids), nil, segment.InsightOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sig := false
		for _, a := range ins.Attributes {
			if a.PValue != nil {
				tests++
				if *a.PValue < 0.05 {
					under++
				}
			}
			sig = sig || a.Significant
		}
		for _, r := range ins.Numeric {
			sig = sig || r.Significant
		}
		if sig {
			anySig++
		}
	}
	rate := float64(under) / float64(tests)
	t.Logf("%d random segments: %d with any significant finding; raw p < 0.05 in %.3f of %d tests", rounds, anySig, rate, tests)
	// Under the null, BH at 5 % finds anything in at most ~5 % of
	// comparisons: 3 of 20 is already unlikely (p ≈ 0.08 for a fair 5 %).
	if anySig > 3 {
		t.Errorf("%d of %d random segments have significant findings", anySig, rounds)
	}
	if rate > 0.08 || rate < 0.02 {
		t.Errorf("raw p < 0.05 in %.3f of tests, want about 0.05", rate)
	}
}

// Against another segment, the test compares the target with the base's
// profiles outside it; a tiny target is shown but not tested.
func TestInsightSegmentBaseAndMinimumSize(t *testing.T) {
	ix := segment.NewIndex()
	for i := range 400 {
		city := "上海市"
		if i%4 == 0 {
			city = "北京市"
		}
		p := &portrait.Profile{ID: "p" + strconv.Itoa(i), Traits: map[string]portrait.Trait{"city": {Value: city}, "age": {Value: float64(20 + i%40)}}}
		if i < 100 {
			p.Tags = []portrait.ProfileTag{{Name: "vip"}}
		}
		ix.Upsert(p, nil)
	}
	ids := func(from, to int) *roaring.Bitmap {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, "p"+strconv.Itoa(i))
		}
		return ix.Numbers(out)
	}
	// target p0..p99 (all vip), base p50..p299: rest is p100..p299
	ins, err := ix.Insight(ids(0, 100), ids(50, 300), segment.InsightOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.TargetSize != 100 || ins.BaseSize != 250 || ins.RestSize != 200 {
		t.Fatalf("sizes %d/%d/%d, want 100/250/200", ins.TargetSize, ins.BaseSize, ins.RestSize)
	}
	for _, a := range ins.Attributes {
		if a.Attribute == "tags" && a.Value == "vip" {
			if a.CountBase != 50 || a.ShareBase != 0.2 || a.TGI != 500 || !a.Significant {
				t.Errorf("vip: %+v; want base count 50, share 0.2, TGI 500, significant", a)
			}
		}
	}
	small, err := ix.Insight(ids(0, 5), nil, segment.InsightOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range small.Attributes {
		if a.Tested || a.Significant {
			t.Errorf("a 5-profile target tested %s=%s", a.Attribute, a.Value)
		}
	}
	for _, r := range small.Numeric {
		if r.Tested || r.MeanTarget == nil {
			t.Errorf("a 5-profile target: %+v; want the mean shown, untested", r)
		}
	}
}
