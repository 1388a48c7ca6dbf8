package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/bizmap"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/segment"
)

// benchMapSegments are the map's ten rows: tags, ranges, regions and their
// combinations, of sizes from a few per cent to a third of everyone.
var benchMapSegments = []string{
	`traits.province == "广东省"`, `"vip" in tags`, `traits.age in 25..40`, `traits.revenue >= 10000`,
	`traits.gender == "female" && traits.age < 30`, `"churn_risk" in tags`, `traits.city == "杭州市"`,
	`"high_value" in tags && traits.province == "浙江省"`, `"new_customer" in tags`, `traits.revenue < 2000`,
}

var benchChannels = []string{"web", "app", "wechat", "store", "phone"}

// benchMapRecord is what the baseline reads of a profile: the figures the
// map shows, in a plain struct (NaN: unknown), scanned whole for every row.
type benchMapRecord struct {
	reached, current   uint8
	revenue, clv       float64
	churn, expected    float64
	nps, csat, daysTo  [3]float64
	channel            [3]uint8
	needMask, painMask uint16
}

// genMapTraits adds journey, needs and prediction traits to a generated
// bench profile, as the enrichers and analyses would leave them.
func genMapTraits(i int, p *portrait.Profile, cfg needs.Config) benchMapRecord {
	r := rand.New(rand.NewPCG(uint64(i), 99))
	rec := benchMapRecord{revenue: p.Traits["revenue"].Value.(float64), clv: math.NaN(), churn: math.NaN(), expected: math.NaN()}
	set := func(k string, v any) { p.Traits[k] = portrait.Trait{Value: v, Source: journey.Source} }
	stages := []string{journey.Consult, journey.Purchase, journey.AfterSales}
	reach := [3]bool{}
	reach[0] = r.Float64() < 0.7
	reach[1] = r.Float64() < map[bool]float64{true: 0.6, false: 0.3}[reach[0]]
	reach[2] = r.Float64() < map[bool]float64{true: 0.35, false: 0.02}[reach[1]]
	var reached []any
	for k, s := range stages {
		rec.nps[k], rec.csat[k], rec.daysTo[k] = math.NaN(), math.NaN(), math.NaN()
		if !reach[k] {
			continue
		}
		reached = append(reached, s)
		rec.reached |= 1 << k
		rec.current = uint8(k + 1)
		ch := r.IntN(len(benchChannels))
		rec.channel[k] = uint8(ch + 1)
		set(journey.ChannelOf(s), benchChannels[ch])
		if r.Float64() < 0.3 {
			rec.nps[k] = float64(r.IntN(11))
			set(journey.NPSAt(s), rec.nps[k])
		}
		if r.Float64() < 0.3 {
			rec.csat[k] = float64(1 + r.IntN(5))
			set(journey.CSATAt(s), rec.csat[k])
		}
	}
	for k := 0; k < 2; k++ {
		if reach[k] && reach[k+1] {
			rec.daysTo[k] = float64(r.IntN(90))
			set(journey.DaysTo(stages[k], stages[k+1]), rec.daysTo[k])
		}
	}
	if len(reached) > 0 {
		set(journey.TraitReached, reached)
		set(journey.TraitStage, stages[rec.current-1])
	}
	if r.Float64() < 0.6 {
		rec.clv = float64(r.IntN(50000)) / 10
		set(bizmap.TraitCLV, rec.clv)
	}
	if r.Float64() < 0.7 {
		rec.churn, rec.expected = float64(r.IntN(1000))/1000, float64(r.IntN(400))/100
		set(bizmap.TraitChurn, rec.churn)
		set(bizmap.TraitExpected, rec.expected)
	}
	var ns []any
	for k, n := range cfg.Needs {
		if r.Float64() < 0.15 {
			ns = append(ns, n.Key)
			rec.needMask |= 1 << k
		}
	}
	if len(ns) > 0 {
		set(needs.TraitNeeds, ns)
	}
	if reach[2] {
		var ps []any
		for k, t := range cfg.Topics {
			if r.Float64() < 0.2 {
				ps = append(ps, t.Key)
				rec.painMask |= 1 << k
			}
		}
		if len(ps) > 0 {
			set(needs.TraitPainPoints, ps)
		}
	}
	return rec
}

// benchSegments are the rows, evaluated on the index: the map reads saved
// segments through this interface (segment.Service in the server), and
// saving a million members' enter events is not what is measured here.
type benchSegments struct {
	defs map[string]*segment.Status
	bms  map[string]*roaring.Bitmap
	ids  []string
}

func (b *benchSegments) Get(id string) (*segment.Status, error) {
	if s, ok := b.defs[id]; ok {
		return s, nil
	}
	return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
}
func (b *benchSegments) MemberSet(id string) (*roaring.Bitmap, error) {
	if bm, ok := b.bms[id]; ok {
		return bm.Clone(), nil
	}
	return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", id)
}
func (b *benchSegments) List() []*segment.Status {
	out := make([]*segment.Status, 0, len(b.ids))
	for _, id := range b.ids {
		out = append(out, b.defs[id])
	}
	return out
}

// baselineMap computes the same cells by scanning every profile's record
// for every row: no bitmaps, no columns. It returns the customers per cell
// (for the cross-check) and its own figures' sum, so nothing is optimised
// away.
func baselineMap(recs []benchMapRecord, member [][]bool) ([][3]int, float64) {
	out := make([][3]int, len(member))
	check := 0.0
	for s, in := range member {
		var n, conv, cur, npsN, pro, det, csatN [3]int
		var rev, clv, churn, exp, csat [3]float64
		var clvN, churnN [3]int
		var days [3][]float64
		needs := [3][16]int{}
		pains := [3][16]int{}
		chans := [3][8]int{}
		for i := range recs {
			if !in[i] {
				continue
			}
			r := &recs[i]
			for k := 0; k < 3; k++ {
				if r.reached&(1<<k) == 0 {
					continue
				}
				n[k]++
				rev[k] += r.revenue
				if !math.IsNaN(r.clv) {
					clv[k] += r.clv
					clvN[k]++
				}
				if !math.IsNaN(r.churn) {
					churn[k] += r.churn
					exp[k] += r.expected
					churnN[k]++
				}
				if v := r.nps[k]; !math.IsNaN(v) {
					npsN[k]++
					if v >= 9 {
						pro[k]++
					} else if v <= 6 {
						det[k]++
					}
				}
				if v := r.csat[k]; !math.IsNaN(v) {
					csat[k] += v
					csatN[k]++
				}
				if k < 2 && r.reached&(1<<(k+1)) != 0 {
					conv[k]++
				}
				if v := r.daysTo[k]; !math.IsNaN(v) {
					days[k] = append(days[k], v)
				}
				if int(r.current) == k+1 {
					cur[k]++
				}
				for b := 0; b < 16; b++ {
					if r.needMask&(1<<b) != 0 {
						needs[k][b]++
					}
					if r.painMask&(1<<b) != 0 {
						pains[k][b]++
					}
				}
				chans[k][r.channel[k]]++
			}
		}
		for k := 0; k < 3; k++ {
			out[s][k] = n[k]
			if len(days[k]) > 0 {
				sort.Float64s(days[k])
				check += days[k][len(days[k])/2]
			}
			check += rev[k] + clv[k] + churn[k] + exp[k] + csat[k] + float64(conv[k]+cur[k]+pro[k]-det[k]+needs[k][0]+pains[k][0]+chans[k][1])
		}
	}
	return out, check
}

func runBenchMap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("profiles", 1_000_000, "number of generated profiles")
	rounds := fs.Int("rounds", 5, "rounds of map and baseline, alternating")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *n < 1 || *n > 20_000_000 || *rounds < 1 {
		fmt.Fprintln(stderr, "--profiles must be between 1 and 20000000, --rounds at least 1")
		return errUsage
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ncfg := needs.DefaultConfig()
	start := time.Now()
	ix := segment.NewIndex()
	recs := make([]benchMapRecord, *n)
	for i := 0; i < *n; i++ {
		g := genBenchProfile(i, now)
		recs[i] = genMapTraits(i, g.p, ncfg)
		ix.Upsert(g.p, nil)
	}
	buildMs := segMs(time.Since(start))
	fmt.Fprintf(stderr, "index: %d profiles in %.0f ms\n", *n, buildMs)
	segs := &benchSegments{defs: map[string]*segment.Status{}, bms: map[string]*roaring.Bitmap{}}
	member := make([][]bool, len(benchMapSegments))
	for k, e := range benchMapSegments {
		plan, err := segment.CompileExpr(e)
		if err != nil {
			return err
		}
		id := "s" + strconv.Itoa(k)
		bm := ix.Evaluate(plan, now)
		segs.ids = append(segs.ids, id)
		segs.defs[id] = &segment.Status{Definition: &segment.Definition{ID: id, Name: e, Expression: e}, Size: int(bm.GetCardinality())}
		segs.bms[id] = bm
		// the profile numbers are the generation order: i was upserted i-th
		member[k] = make([]bool, *n)
		bm.Iterate(func(x uint32) bool { member[k][x] = true; return true })
	}
	svc, err := bizmap.New(ix, segs, journey.DefaultConfig(), ncfg, nil)
	if err != nil {
		return err
	}
	svc.Now = func() time.Time { return now }
	q := bizmap.Query{Segments: segs.ids, Stages: []string{journey.Consult, journey.Purchase, journey.AfterSales}, Lang: "en"}
	// CPU time beside wall time: on a shared machine the wall time of a
	// single-threaded computation is mostly waiting for a core.
	var mapT, baseT, mapCPU, baseCPU []float64
	var last *bizmap.Map
	var base [][3]int
	for range *rounds {
		runtime.GC()
		t, c := time.Now(), cpuTime()
		m, err := svc.Build(q)
		if err != nil {
			return err
		}
		mapT, mapCPU = append(mapT, segMs(time.Since(t))), append(mapCPU, segMs(cpuTime()-c))
		last = m
		runtime.GC()
		t, c = time.Now(), cpuTime()
		base, _ = baselineMap(recs, member)
		baseT, baseCPU = append(baseT, segMs(time.Since(t))), append(baseCPU, segMs(cpuTime()-c))
	}
	for s, row := range last.Rows {
		for k, c := range row.Cells {
			if c.Customers != base[s][k] {
				return fmt.Errorf("map and baseline disagree on %s/%s: %d vs %d", row.Name, c.Stage, c.Customers, base[s][k])
			}
		}
	}
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	mapMs, baseMs := med(mapT), med(baseT)
	out := map[string]any{"profiles": *n, "segments": len(benchMapSegments), "stages": 3, "rounds": *rounds,
		"map_ms": round3(mapMs), "baseline_ms": round3(baseMs), "ratio": round3(mapMs / baseMs), "build_ms": round3(buildMs),
		"map_ms_rounds": mapT, "baseline_ms_rounds": baseT,
		"map_cpu_ms": round3(med(mapCPU)), "baseline_cpu_ms": round3(med(baseCPU)),
		// insight is built on another branch (GET /v1/segments/{id}/insight); its timing is added there.
		"insight_ms": nil}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "customer business map: %d profiles, %d segments × 3 stages, median of %d alternating rounds\n\n", *n, len(benchMapSegments), *rounds)
	fmt.Fprintf(stdout, "%-34s %10s %10s %8s\n", "computation", "ms", "cpu ms", "ratio")
	fmt.Fprintf(stdout, "%-34s %10.1f %10.1f %8.2f\n", "map (bitmaps and columns)", mapMs, med(mapCPU), mapMs/baseMs)
	fmt.Fprintf(stdout, "%-34s %10.1f %10.1f %8.2f\n", "baseline (scan of plain records)", baseMs, med(baseCPU), 1.0)
	return nil
}
