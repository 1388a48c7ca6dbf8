package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// The insight benchmark's population: 30 categorical traits of 8 values
// (skewed, as real traits are), 10 numeric traits and 10 tags: 50
// attributes. The target is the profiles carrying tag t0 (about 10 %),
// whose categorical values lean towards v0 and numbers run higher, so the
// comparison has real differences to find as well as null ones.
const (
	insightCats = 30
	insightNums = 10
	insightTags = 10
)

func genInsightProfile(i int) *portrait.Profile {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	p := &portrait.Profile{ID: "p" + strconv.Itoa(i), Traits: make(map[string]portrait.Trait, insightCats+insightNums)}
	inTarget := r.Float64() < 0.1
	if inTarget {
		p.Tags = append(p.Tags, portrait.ProfileTag{Name: "t0"})
	}
	for t := 1; t < insightTags; t++ {
		if r.Float64() < 0.05*float64(t) {
			p.Tags = append(p.Tags, portrait.ProfileTag{Name: "t" + strconv.Itoa(t)})
		}
	}
	for c := range insightCats {
		v := int(r.ExpFloat64() * 2)
		if inTarget && c%3 == 0 && r.Float64() < 0.2 {
			v = 0
		}
		p.Traits["c"+strconv.Itoa(c)] = portrait.Trait{Value: "v" + strconv.Itoa(min(v, 7))}
	}
	for k := range insightNums {
		x := r.NormFloat64()*10 + 50
		if inTarget && k%2 == 0 {
			x += 1
		}
		p.Traits["n"+strconv.Itoa(k)] = portrait.Trait{Value: x}
	}
	return p
}

// benchInsightMs is the median time, in ms over rounds runs, of comparing
// target with every profile of ix: the insight_ms of portrait bench
// insight, and what portrait bench map reports for its own population.
func benchInsightMs(ix *segment.Index, target *roaring.Bitmap, rounds int) (float64, *segment.Insight, error) {
	var out *segment.Insight
	var err error
	ms := median(rounds, func() {
		if out, err = ix.Insight(target, nil, segment.InsightOptions{}); err != nil {
			return
		}
	})
	return ms, out, err
}

// runBenchInsight times an insight comparison over generated profiles,
// alternating with a baseline measured in the same run (a breakdown of
// one categorical trait over every profile, the cheapest whole-population
// pass the index offers), so the ratio holds on a noisy machine.
func runBenchInsight(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench insight", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("profiles", 1_000_000, "number of generated profiles")
	rounds := fs.Int("rounds", 5, "alternating rounds; the median is reported")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *n < 100 || *n > 20_000_000 || *rounds < 1 || *rounds > 100 {
		fmt.Fprintln(stderr, "--profiles must be between 100 and 20000000, --rounds between 1 and 100")
		return errUsage
	}
	start := time.Now()
	ix := segment.NewIndex()
	for i := range *n {
		ix.Upsert(genInsightProfile(i), nil)
	}
	buildMs := segMs(time.Since(start))
	runtime.GC()
	target := ix.Scope(nil, "t0")
	by, _ := segment.ParseDim("trait:c0")
	var insight, base []float64
	var last *segment.Insight
	for range *rounds {
		ms, out, err := benchInsightMs(ix, target, 1)
		if err != nil {
			return err
		}
		insight, last = append(insight, ms), out
		base = append(base, median(1, func() {
			if _, err := ix.Breakdown(by, nil, "", 10); err != nil {
				panic(err)
			}
		}))
	}
	insightMs, baseMs := medianOf(insight), medianOf(base)
	sig := 0
	for _, a := range last.Attributes {
		if a.Significant {
			sig++
		}
	}
	for _, r := range last.Numeric {
		if r.Significant {
			sig++
		}
	}
	attrs := insightCats + insightNums + insightTags
	out := map[string]any{"profiles": *n, "attributes": attrs, "target": last.TargetSize, "tests": last.Tests, "significant": sig,
		"insight_ms": round3(insightMs), "breakdown_ms": round3(baseMs), "ratio": round3(insightMs / baseMs), "build_ms": round3(buildMs), "rounds": *rounds}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "profiles: %d, attributes: %d (%d categorical, %d numeric, %d tags), target: %d, tests: %d, significant: %d\n\n",
		*n, attrs, insightCats, insightNums, insightTags, last.TargetSize, last.Tests, sig)
	fmt.Fprintf(stdout, "%-28s %10s %10s\n", "measure", "ms", "ratio")
	fmt.Fprintf(stdout, "%-28s %10.1f %10s\n", "breakdown of one trait", baseMs, "1.0x")
	fmt.Fprintf(stdout, "%-28s %10.1f %9.1fx\n", "insight, 50 attributes", insightMs, insightMs/baseMs)
	return nil
}

// medianOf is the median of alternating rounds measured by the caller.
func medianOf(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
