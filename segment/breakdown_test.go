package segment_test

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

type oracleRow struct {
	count int
	sum   float64
	nsum  int
}

// TestBreakdownAgreesWithBruteForce: on random profiles (values of changing
// types, updates and removals after indexing) a breakdown within a random
// segment gives, group by group, the counts and metric sums a plain loop
// over the raw profiles gives, through the bitmap and the scanning paths.
func TestBreakdownAgreesWithBruteForce(t *testing.T) {
	defer segment.SetThresholds(16, 24)()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 120).Draw(t, "profiles")
		ix, profs := genIndex(t, n)
		by := rapid.SampledFrom([]string{"trait:province", "trait:name", "trait:interests", "trait:age", "trait:vip", "tag", "identified", "bucket:age", "bucket:age:7.5", "region:city", "trait:nobody"}).Draw(t, "by")
		dim, err := segment.ParseDim(by)
		if err != nil {
			t.Fatal(err)
		}
		metric := rapid.SampledFrom([]string{"", "age"}).Draw(t, "metric")
		// a segment to break down within, or everyone
		var within map[string]bool
		var plan segment.Node
		if rapid.Bool().Draw(t, "inSegment") {
			plan, err = segment.CompileExpr(genExpr(t, 2))
			if err != nil {
				t.Fatal(err)
			}
			within = map[string]bool{}
		}
		var bd *segment.Breakdown
		if plan != nil {
			bm := ix.Evaluate(plan, now)
			for _, id := range ix.IDs(bm, 0, n+1) {
				within[id] = true
			}
			bd, err = ix.Breakdown(dim, bm, metric, 1000)
		} else {
			bd, err = ix.Breakdown(dim, nil, metric, 1000)
		}
		if err != nil {
			t.Fatal(err)
		}

		want := map[string]*oracleRow{}
		total, missing := 0, 0
		add := func(k string, p *portrait.Profile) {
			r := want[k]
			if r == nil {
				r = &oracleRow{}
				want[k] = r
			}
			r.count++
			if metric != "" {
				if f, ok := p.Traits[metric].Value.(float64); ok {
					r.sum += f
					r.nsum++
				}
			}
		}
		for id, g := range profs {
			if within != nil && !within[id] {
				continue
			}
			total++
			p := g.p
			switch dim.Kind {
			case segment.DimTag:
				if len(p.Tags) == 0 {
					missing++
				}
				for _, tg := range p.Tags {
					add(tg.Name, p)
				}
			case segment.DimIdentified:
				if len(p.Identifiers) > 0 {
					add("identified", p)
				} else {
					add("anonymous", p)
				}
			case segment.DimBucket:
				f, ok := p.Traits[dim.Trait].Value.(float64)
				if !ok {
					missing++
					continue
				}
				add("", p)
				_ = f
			default:
				v := p.Traits[dim.Trait].Value
				switch x := v.(type) {
				case nil:
					missing++
				case string:
					add(x, p)
				case bool:
					add(strconv.FormatBool(x), p)
				case float64:
					add(strconv.FormatFloat(x, 'g', -1, 64), p)
				case []any:
					for _, e := range x {
						add(e.(string), p)
					}
				}
			}
		}
		if bd.Total != total || bd.Missing.Count != missing {
			t.Fatalf("%s: total %d missing %d, want %d and %d", by, bd.Total, bd.Missing.Count, total, missing)
		}
		if bd.Other != nil {
			t.Fatalf("%s: other %+v with top 1000", by, bd.Other)
		}
		if dim.Kind == segment.DimBucket {
			// every number in exactly one bucket, buckets in order and disjoint
			sum, last := 0, math.Inf(-1)
			for _, g := range bd.Groups {
				if g.From == nil || g.To == nil || *g.From < last || *g.To <= *g.From {
					t.Fatalf("%s: bucket %+v after %v", by, g, last)
				}
				last = *g.To
				sum += g.Count
			}
			w := 0
			if r := want[""]; r != nil {
				w = r.count
			}
			if sum != w {
				t.Fatalf("%s: buckets hold %d numbers, want %d", by, sum, w)
			}
			return
		}
		got := map[string]segment.Group{}
		for _, g := range bd.Groups {
			got[g.Key] = g
		}
		if dim.Kind == segment.DimIdentified {
			// both groups are always answered, possibly empty
			for _, k := range []string{"identified", "anonymous"} {
				if _, ok := want[k]; !ok && got[k].Count == 0 {
					delete(got, k)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d groups %v, want %d", by, len(got), bd.Groups, len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok || g.Count != w.count {
				t.Fatalf("%s: group %q count %d, want %d", by, k, g.Count, w.count)
			}
			if metric != "" {
				if g.Sum == nil || math.Abs(*g.Sum-w.sum) > 1e-9 {
					t.Fatalf("%s: group %q sum %v, want %v", by, k, g.Sum, w.sum)
				}
				if (w.nsum == 0) != (g.Mean == nil) || (g.Mean != nil && math.Abs(*g.Mean-w.sum/float64(w.nsum)) > 1e-9) {
					t.Fatalf("%s: group %q mean %v, want %v/%d", by, k, g.Mean, w.sum, w.nsum)
				}
			} else if g.Sum != nil {
				t.Fatalf("%s: a sum without a metric", by)
			}
		}
		if !sort.SliceIsSorted(bd.Groups, func(i, j int) bool { return bd.Groups[i].Count > bd.Groups[j].Count }) {
			t.Fatalf("%s: groups not by count: %v", by, bd.Groups)
		}
	})
}

func TestBreakdownTopAndOther(t *testing.T) {
	ix := segment.NewIndex()
	// city i held by i+1 profiles: 55 profiles over 10 cities, 5 without
	k := 0
	for i := 0; i < 10; i++ {
		for j := 0; j <= i; j++ {
			ix.Upsert(&portrait.Profile{ID: fmt.Sprint("p", k), Traits: map[string]portrait.Trait{
				"city": {Value: fmt.Sprint("city", i)}, "revenue": {Value: float64(10 * i)}}}, nil)
			k++
		}
	}
	for i := 0; i < 5; i++ {
		ix.Upsert(&portrait.Profile{ID: fmt.Sprint("x", i), Traits: map[string]portrait.Trait{"revenue": {Value: 1.0}}}, nil)
	}
	dim, _ := segment.ParseDim("trait:city")
	bd, err := ix.Breakdown(dim, nil, "revenue", 3)
	if err != nil {
		t.Fatal(err)
	}
	if bd.Total != 60 || len(bd.Groups) != 3 || bd.Groups[0].Key != "city9" || bd.Groups[0].Count != 10 || bd.Groups[2].Key != "city7" {
		t.Fatalf("top 3: %+v", bd)
	}
	if *bd.Groups[0].Sum != 900 || *bd.Groups[0].Mean != 90 {
		t.Fatalf("city9 sum/mean: %v %v", *bd.Groups[0].Sum, *bd.Groups[0].Mean)
	}
	// cities 0..6 hold 1+2+...+7 = 28 profiles, revenue sum 10*(0*1+1*2+...+6*7)
	if bd.Other == nil || bd.Other.Count != 28 || *bd.Other.Sum != 10*(0+2+6+12+20+30+42) || bd.Missing.Count != 5 {
		t.Fatalf("other %+v missing %+v", bd.Other, bd.Missing)
	}
	if math.Abs(bd.Groups[0].Share-10.0/60) > 1e-12 {
		t.Fatalf("share %v", bd.Groups[0].Share)
	}
}

func TestBreakdownNiceBuckets(t *testing.T) {
	ix := segment.NewIndex()
	for i := 0; i <= 100; i++ {
		ix.Upsert(&portrait.Profile{ID: fmt.Sprint("p", i), Traits: map[string]portrait.Trait{"age": {Value: float64(i)}}}, nil)
	}
	dim, _ := segment.ParseDim("bucket:age")
	bd, err := ix.Breakdown(dim, nil, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	// range 0..100 in ~10 buckets: width 10, [0,10) ... [100,110)
	if len(bd.Groups) != 11 || *bd.Groups[0].From != 0 || *bd.Groups[0].To != 10 || bd.Groups[0].Count != 10 || bd.Groups[10].Count != 1 || bd.Groups[3].Label != "[30, 40)" {
		t.Fatalf("buckets: %+v", bd.Groups)
	}
	dim, _ = segment.ParseDim("bucket:age:0.001")
	if _, err := ix.Breakdown(dim, nil, "", 10); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("100,000 buckets: %v", err)
	}
	// the null case: a trait nobody holds answers no groups, everyone missing
	dim, _ = segment.ParseDim("bucket:height")
	bd, err = ix.Breakdown(dim, nil, "", 10)
	if err != nil || len(bd.Groups) != 0 || bd.Missing.Count != 101 {
		t.Fatalf("nobody: %+v %v", bd, err)
	}
}

func TestParseDim(t *testing.T) {
	for _, c := range []struct {
		by   string
		kind string
		ok   bool
	}{
		{"trait:city", segment.DimTrait, true}, {"tag", segment.DimTag, true}, {"tag:behaviour", segment.DimTag, true},
		{"bucket:age", segment.DimBucket, true}, {"bucket:age:5", segment.DimBucket, true}, {"region", segment.DimTrait, true},
		{"region:city", segment.DimTrait, true}, {"identified", segment.DimIdentified, true}, {"lifecycle", segment.DimTrait, true},
		{"", "", false}, {"trait:", "", false}, {"bucket:age:-1", "", false}, {"bucket:age:x", "", false}, {"bucket:", "", false},
		{"region:street", "", false}, {"colour", "", false}, {"identified:x", "", false},
	} {
		d, err := segment.ParseDim(c.by)
		if c.ok != (err == nil) || (c.ok && d.Kind != c.kind) {
			t.Errorf("%q: %+v %v", c.by, d, err)
		}
		if err != nil && portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%q: code %s", c.by, portrait.ErrorCode(err))
		}
	}
}
