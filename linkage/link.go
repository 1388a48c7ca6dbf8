package linkage

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/portrait-cdp/portrait"
)

// Config tunes a linkage run. The zero value is a sensible general
// configuration: fields inferred from the records' keys, posterior match
// probability 0.9 for a match and 0.5 for review.
type Config struct {
	// Fields to compare, with their kinds. Empty: every key present in the
	// records, with the kind inferred from its name (see InferKind).
	Fields []Field
	// MatchThreshold is the posterior match probability at or above which a
	// pair is a match. Default 0.9.
	MatchThreshold float64
	// ReviewThreshold is the probability at or above which a pair that is
	// not a match goes to clerical review. Default 0.5.
	ReviewThreshold float64
	// MaxBlockSize skips blocking keys shared by more records than this.
	// Default 100.
	MaxBlockSize int
	// Window is the sorted-neighbourhood window. Default 4.
	Window int
	// MaxIterations bounds EM in each training session. Default 200.
	MaxIterations int
	// Seed makes the random-pair sample behind the u-probabilities
	// reproducible. Runs with the same input and seed give the same result.
	Seed uint64
	// Model, when set and fitted on the same fields, scores the pairs
	// instead of a new EM fit. Linking again a population whose duplicates
	// were already merged needs this: EM on data without duplicates fits a
	// "match" class to whatever agrees most among distinct people.
	Model *Model
}

func (c *Config) defaults() {
	if c.MatchThreshold == 0 {
		c.MatchThreshold = 0.9
	}
	if c.ReviewThreshold == 0 {
		c.ReviewThreshold = 0.5
	}
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = 100
	}
	if c.Window == 0 {
		c.Window = 4
	}
	if c.MaxIterations == 0 {
		c.MaxIterations = 200
	}
}

// Decision of a scored pair.
type Decision string

const (
	Match  Decision = "match"
	Review Decision = "review"
)

// Pair is a scored candidate pair. A and B are indexes into the input slice,
// A < B.
type Pair struct {
	A           int      `json:"a"`
	B           int      `json:"b"`
	Weight      float64  `json:"weight"`
	Probability float64  `json:"probability"`
	Decision    Decision `json:"decision"`
	// Levels is the comparison vector, one agreement level per field of
	// Result.Model.Fields (0 = strongest agreement, -1 = missing).
	Levels []int8 `json:"levels"`
}

// Result of Link.
type Result struct {
	// Pairs at or above the review threshold, matches and reviews, ordered by
	// (A, B).
	Pairs []Pair
	// Entities are the connected components of the match pairs: each is a
	// sorted list of record indexes with at least two members. Records
	// matched to nothing are not listed.
	Entities [][]int
	// Candidates is the number of pairs blocking produced and compared.
	Candidates int
	Model      *Model
	// Credible is false when the fitted model described look-alikes rather
	// than duplicates (see Model.credible); Warning then says why. Such a
	// run scores pairs with a conservative fallback model and decides none
	// as a match: every pair above the review threshold goes to review.
	Credible bool
	Warning  string
}

// Matches returns the pairs decided as matches.
func (r *Result) Matches() []Pair {
	var out []Pair
	for _, p := range r.Pairs {
		if p.Decision == Match {
			out = append(out, p)
		}
	}
	return out
}

// EntityPairs returns every pair of records in the same entity, i.e. the
// transitive closure of the matches, as [2]int with the smaller index first.
// This is what merging matches through an identity graph produces.
func (r *Result) EntityPairs() [][2]int {
	var out [][2]int
	for _, e := range r.Entities {
		for x := range e {
			for y := x + 1; y < len(e); y++ {
				out = append(out, [2]int{e[x], e[y]})
			}
		}
	}
	return out
}

// Link scores the candidate pairs of records and groups matches into
// entities. It fails only on an unusable configuration.
func Link(records []Record, cfg Config) (Result, error) {
	return LinkContext(context.Background(), records, cfg)
}

// LinkContext is Link with cancellation, checked between phases and while
// comparing.
func LinkContext(ctx context.Context, records []Record, cfg Config) (Result, error) {
	cfg.defaults()
	if cfg.ReviewThreshold > cfg.MatchThreshold || cfg.MatchThreshold > 1 || cfg.ReviewThreshold < 0 {
		return Result{}, portrait.Errorf(portrait.EINVALID, "linkage: thresholds must satisfy 0 ≤ review (%g) ≤ match (%g) ≤ 1", cfg.ReviewThreshold, cfg.MatchThreshold)
	}
	fields := cfg.Fields
	if len(fields) == 0 {
		fields = inferFromRecords(records)
	}
	var used []Field
	for _, f := range fields {
		if f.Kind != KindIgnore {
			if comparatorFor(f.Kind) == nil {
				return Result{}, portrait.Errorf(portrait.EINVALID, "linkage: field %q has unknown kind %d", f.Name, f.Kind)
			}
			used = append(used, f)
		}
	}
	if len(used) == 0 {
		return Result{}, portrait.Errorf(portrait.EINVALID, "linkage: no fields to compare")
	}
	if len(records) > 1<<31-1 {
		return Result{}, portrait.Errorf(portrait.EINVALID, "linkage: too many records")
	}

	// Prepare every value once.
	vals := make([][]value, len(records))
	for i, r := range records {
		row := make([]value, len(used))
		for f, fd := range used {
			row[f] = prepare(fd.Kind, r[fd.Name])
		}
		vals[i] = row
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	bl := &blocker{fields: used, vals: vals, maxSize: cfg.MaxBlockSize, window: cfg.Window}
	cand := bl.candidates()
	keys := make([]uint64, 0, len(cand))
	for k := range cand {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	cmp := newComparer(used, vals)
	nf := len(used)
	levels := make([]int8, len(keys)*nf)
	if err := parallel(ctx, len(keys), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			cmp.compare(int(keys[k]>>32), int(keys[k]&0xffffffff), levels[k*nf:(k+1)*nf])
		}
	}); err != nil {
		return Result{}, err
	}

	// Distinct patterns for EM; patOf maps each pair to its pattern.
	idx := make(map[string]int32)
	var pats []pattern
	patOf := make([]int32, len(keys))
	buf := make([]byte, nf)
	for k := range keys {
		v := levels[k*nf : (k+1)*nf]
		for f, l := range v {
			buf[f] = byte(l)
		}
		if j, ok := idx[string(buf)]; ok { // no allocation for the lookup
			pats[j].count++
			patOf[k] = j
			continue
		}
		j := int32(len(pats))
		idx[string(buf)] = j
		patOf[k] = j
		pats = append(pats, pattern{levels: slices.Clone(v), count: 1})
	}
	res := Result{Candidates: len(keys), Credible: true}
	var model *Model
	if cfg.Model != nil && sameFields(cfg.Model, used, cmp.nlevels) {
		model = cfg.Model
	} else {
		uInit, obs, dep := randomPairU(cmp, len(records), cfg.Seed)
		model = trainModel(cmp, len(records), uInit, obs, cfg.MaxIterations)
		model.Dependence = dep
		if why := model.credible(pats, len(records)); why != "" {
			res.Credible, res.Warning = false, why+"; pairs are ranked by a conservative model and sent to review, none is merged automatically"
			model = fallbackModel(used, cmp.nlevels, uInit, len(records))
			model.Dependence = dep
		}
	}
	res.Model = model

	weights := make([]float64, len(pats))
	for j, p := range pats {
		weights[j] = model.Weight(p.levels)
	}
	logPrior := math.Log(model.Prior / (1 - model.Prior))
	tf := newTFAdjuster(used, vals)
	uf := newUnionFind(len(records))
	for k, key := range keys {
		j := patOf[k]
		a, b := int(key>>32), int(key&0xffffffff)
		w := weights[j] + tf.adjust(used, vals, a, b, pats[j].levels)
		p := 1 / (1 + math.Exp(-(w*math.Ln2 + logPrior)))
		if p < cfg.ReviewThreshold {
			continue
		}
		d := Review
		if p >= cfg.MatchThreshold && res.Credible {
			d = Match
			uf.union(a, b)
		}
		res.Pairs = append(res.Pairs, Pair{A: a, B: b, Weight: w, Probability: p, Decision: d, Levels: slices.Clone(pats[j].levels)})
	}
	res.Entities = uf.groups()
	return res, nil
}

// inferFromRecords declares every key seen in the records, in sorted order
// so that runs are reproducible, with kinds inferred from the names.
func inferFromRecords(records []Record) []Field {
	seen := map[string]bool{}
	var names []string
	for _, r := range records {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	return InferFields(names)
}

// comparer fills comparison vectors. Name fields are also compared crosswise
// (this record's given name against the other's surname and so on) and the
// best level is kept, because swapped name parts are a common entry error
// and must not count as disagreement on two fields at once.
type comparer struct {
	fields  []Field
	vals    [][]value
	comps   []comparator
	nlevels []int
	names   []int
}

func newComparer(fields []Field, vals [][]value) *comparer {
	c := &comparer{fields: fields, vals: vals}
	for f, fd := range fields {
		cp := comparatorFor(fd.Kind)
		c.comps = append(c.comps, cp)
		c.nlevels = append(c.nlevels, cp.levels())
		if fd.Kind == KindName {
			c.names = append(c.names, f)
		}
	}
	return c
}

func (c *comparer) compare(a, b int, out []int8) {
	va, vb := c.vals[a], c.vals[b]
	for f := range c.fields {
		x, y := &va[f], &vb[f]
		if x.s == "" || y.s == "" {
			out[f] = -1
			continue
		}
		l := c.comps[f].compare(x, y)
		if l > 0 && c.fields[f].Kind == KindName {
			for _, g := range c.names {
				if g == f {
					continue
				}
				if vb[g].s != "" {
					l = min(l, c.comps[f].compare(x, &vb[g]))
				}
				if va[g].s != "" {
					l = min(l, c.comps[f].compare(&va[g], y))
				}
			}
		}
		out[f] = int8(l)
	}
}

// randomPairU estimates the u-probabilities from random record pairs, nearly
// all of which are non-matches, and the share of pairs in which each field
// is filled on both sides.
//
// The same sample measures how much exact agreements on two fields go
// together among different people (a city and its province, a postcode and
// its suburb): dep[f][g], in bits, is log2 of the lift of their joint
// agreement, kept when it is large and well measured. The model's
// independence assumption would count such evidence twice.
func randomPairU(c *comparer, n int, seed uint64) ([][]float64, []float64, [][]float64) {
	nf := len(c.fields)
	counts := make([][]float64, nf)
	for f := range nf {
		counts[f] = make([]float64, c.nlevels[f])
		for l := range counts[f] {
			counts[f][l] = 1 // Laplace smoothing
		}
		for l, p := range uPrior(c.fields[f].Kind, c.nlevels[f]) {
			counts[f][l] += uPriorWeight * p
		}
	}
	obs := make([]float64, nf)
	samples := 0
	// both[f][g]: pairs with f and g observed; agree[f][g]: with f at level
	// 0 among those; joint[f][g]: with both at level 0.
	both, agree, joint := square(nf), square(nf), square(nf)
	if n >= 2 {
		// Draw the pairs in order (reproducible), compare them in parallel:
		// this sample costs as much as comparing the candidates.
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		samples = min(randomPairs, n*(n-1)/2)
		drawn := make([][2]int32, samples)
		for i := range drawn {
			a := rng.IntN(n)
			b := rng.IntN(n - 1)
			if b >= a {
				b++
			}
			drawn[i] = [2]int32{int32(a), int32(b)}
		}
		var mu sync.Mutex
		parallel(context.Background(), samples, func(lo, hi int) {
			lc, lo2, lb, la, lj := square(nf), make([]float64, nf), square(nf), square(nf), square(nf)
			for f := range nf {
				lc[f] = make([]float64, c.nlevels[f])
			}
			buf := make([]int8, nf)
			for _, pr := range drawn[lo:hi] {
				c.compare(int(pr[0]), int(pr[1]), buf)
				for f, l := range buf {
					if l < 0 {
						continue
					}
					lc[f][l]++
					lo2[f]++
					for g, k := range buf {
						if g == f || k < 0 {
							continue
						}
						lb[f][g]++
						if l == 0 {
							la[f][g]++
							if k == 0 {
								lj[f][g]++
							}
						}
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for f := range nf {
				obs[f] += lo2[f]
				for l, v := range lc[f] {
					counts[f][l] += v
				}
				for g := range nf {
					both[f][g] += lb[f][g]
					agree[f][g] += la[f][g]
					joint[f][g] += lj[f][g]
				}
			}
		})
	}
	// A joint agreement must be common among different people to be
	// measured: the sample also holds true duplicates (about one pair per
	// record over n²/2 pairs), which agree on everything and would make
	// any two identifying fields look dependent.
	minJoint := 20.0
	if n > 1 {
		minJoint = math.Max(minJoint, 10*float64(samples)*2/float64(n-1))
	}
	dep := square(nf)
	for f := range nf {
		for g := range nf {
			if f == g || joint[f][g] < minJoint || both[f][g] == 0 {
				continue
			}
			pf, pg := agree[f][g]/both[f][g], agree[g][f]/both[f][g]
			if lift := (joint[f][g] / both[f][g]) / (pf * pg); lift > 2 {
				dep[f][g] = math.Log2(lift)
			}
		}
	}
	u := make([][]float64, nf)
	for f := range nf {
		u[f] = make([]float64, c.nlevels[f])
		normalizeInto(u[f], counts[f])
		if samples > 0 {
			obs[f] /= float64(samples)
		}
	}
	return u, obs, dep
}

// uPriorWeight is how many random pairs' worth of prior belief the
// u-probabilities start from (see uPrior).
const uPriorWeight = 50

// uPrior is what the agreement levels of a field look like between two
// different people before any pair is seen: they mostly disagree. A field
// that few records fill (a birth date or an address only some sources
// send) is seen on both sides in a handful of random pairs, often only in
// the duplicate pair itself; smoothing its u toward uniform alone would
// call agreeing on a birth date common (u ≈ 0.4) and make an address
// written two ways evidence against the match. Fields filled everywhere
// are measured on thousands of pairs, which outweigh this prior.
// Categories (gender, province) do agree by chance: no prior.
func uPrior(k Kind, levels int) []float64 {
	var p []float64
	switch k {
	case KindName, KindText:
		p = []float64{0.001, 0.002, 0.01}
	case KindAddress:
		p = []float64{0.001, 0.002, 0.02}
	case KindDate:
		p = []float64{0.0005, 0.005, 0.05}
	case KindCode, KindID:
		p = []float64{0.001, 0.002}
	default:
		return nil
	}
	if len(p) != levels-1 {
		return nil
	}
	rest := 1.0
	for _, x := range p {
		rest -= x
	}
	return append(p, rest)
}

// randomPairs is the size of the random-pair sample behind u.
const randomPairs = 100_000

func square(n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, n)
	}
	return out
}

// parallel runs fn over [0, n) in chunks on all CPUs and stops early when ctx
// is cancelled.
func parallel(ctx context.Context, n int, fn func(lo, hi int)) error {
	workers := runtime.GOMAXPROCS(0)
	const chunk = 4096
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				fn(lo, min(lo+chunk, n))
			}
		}()
	}
	var err error
	for lo := 0; lo < n; lo += chunk {
		if err = ctx.Err(); err != nil {
			break
		}
		next <- lo
	}
	close(next)
	wg.Wait()
	return err
}

type unionFind struct{ parent []int }

func newUnionFind(n int) *unionFind {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return &unionFind{parent: p}
}

func (u *unionFind) find(x int) int {
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

func (u *unionFind) union(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if ra < rb {
		u.parent[rb] = ra
	} else {
		u.parent[ra] = rb
	}
}

func (u *unionFind) groups() [][]int {
	by := map[int][]int{}
	for i := range u.parent {
		r := u.find(i)
		by[r] = append(by[r], i)
	}
	var out [][]int
	for _, g := range by {
		if len(g) > 1 {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// String summarises a result for logs.
func (r *Result) String() string {
	m := 0
	for _, p := range r.Pairs {
		if p.Decision == Match {
			m++
		}
	}
	s := fmt.Sprintf("%d candidates, %d matches, %d reviews, %d entities", r.Candidates, m, len(r.Pairs)-m, len(r.Entities))
	if !r.Credible && r.Model != nil {
		s += ", model not credible"
	}
	return s
}

// sameFields reports whether m was fitted on these fields and levels.
func sameFields(m *Model, fields []Field, nlevels []int) bool {
	if len(m.Fields) != len(fields) || len(m.M) != len(fields) || len(m.U) != len(fields) {
		return false
	}
	for i, f := range fields {
		if m.Fields[i] != f || i >= len(nlevels) || len(m.M[i]) != nlevels[i] || len(m.U[i]) != nlevels[i] {
			return false
		}
	}
	return m.Version == modelVersion && m.Prior > 0 && m.Prior < 1
}
