// Package kmeans clusters points with k-means: k-means++ seeding, several
// restarts, Lloyd iterations accelerated with Hamerly's bounds, automatic
// choice of k by silhouette with the elbow curve, and plain-words cluster
// descriptions.
//
// Data are flat row-major []float64 (n rows of d features). Everything is
// deterministic for a given seed and worker count; the worker count only
// changes the order of floating-point sums, hence results in the last bits.
package kmeans

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/internal/colstat"
)

// Options for Fit.
type Options struct {
	K        int // number of clusters (required by Fit)
	Restarts int // k-means++ restarts, best WCSS kept (10 when zero)
	MaxIter  int // Lloyd iterations per restart (300 when zero)
	// Tol stops a restart when the summed squared centre movement falls below
	// Tol × the mean feature variance, scikit-learn's convention (1e-4 when
	// zero; negative means iterate until no label changes).
	Tol         float64
	Seed        uint64
	Standardize bool // cluster z-scores instead of raw values
	Workers     int  // goroutines for large n; zero uses GOMAXPROCS
}

func (o *Options) defaults() {
	if o.Restarts <= 0 {
		o.Restarts = 10
	}
	if o.MaxIter <= 0 {
		o.MaxIter = 300
	}
	if o.Tol == 0 {
		o.Tol = 1e-4
	}
	if o.Tol < 0 {
		o.Tol = 0
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// Model is a fitted clustering.
type Model struct {
	K          int       `json:"k"`
	D          int       `json:"d"`
	Centers    []float64 `json:"centers"` // K × D, in the input's units
	Labels     []int     `json:"labels"`
	Sizes      []int     `json:"sizes"`
	WCSS       float64   `json:"wcss"` // within-cluster sum of squares in the clustered space
	Iterations int       `json:"iterations"`
	// Standardized tells whether clustering ran on z-scores (Mean, Scale);
	// WCSS is then in z-score units.
	Standardized bool      `json:"standardized"`
	Mean         []float64 `json:"mean,omitempty"`
	Scale        []float64 `json:"scale,omitempty"`
}

// Center returns centre j in input units.
func (m *Model) Center(j int) []float64 { return m.Centers[j*m.D : (j+1)*m.D] }

// Predict returns the cluster of a point given in input units.
func (m *Model) Predict(x []float64) int {
	best, bd := 0, math.Inf(1)
	for j := 0; j < m.K; j++ {
		c := m.Center(j)
		var s float64
		for f, v := range x {
			dv := v - c[f]
			if m.Standardized {
				dv /= m.Scale[f]
			}
			s += dv * dv
		}
		if s < bd {
			best, bd = j, s
		}
	}
	return best
}

func checkData(data []float64, n, d int) error {
	if n <= 0 || d <= 0 {
		return portrait.Errorf(portrait.EINVALID, "need at least one point and one feature, got %d × %d", n, d)
	}
	if len(data) != n*d {
		return portrait.Errorf(portrait.EINVALID, "data holds %d values, not %d × %d", len(data), n, d)
	}
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e := portrait.Errorf(portrait.EINVALID, "row %d, feature %d is %v; k-means needs finite values everywhere", i/d+1, i%d+1, v)
			e.Details = []portrait.ErrorDetail{{Row: i/d + 1, Reason: "not a finite number"}}
			return e
		}
	}
	return nil
}

// standardize returns z-scores, the means and the scales. A constant feature
// gets scale 1, so it becomes all zeros and simply does not separate clusters.
func standardize(data []float64, n, d int) (z, mean, scale []float64) {
	mean, scale = colstat.MeanSD(data, n, d)
	z = make([]float64, len(data))
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			z[i*d+f] = (data[i*d+f] - mean[f]) / scale[f]
		}
	}
	return z, mean, scale
}

// Fit clusters n points of d features into opt.K clusters.
func Fit(data []float64, n, d int, opt Options) (*Model, error) {
	opt.defaults()
	if err := checkData(data, n, d); err != nil {
		return nil, err
	}
	if opt.K < 1 {
		return nil, portrait.Errorf(portrait.EINVALID, "k must be at least 1, got %d", opt.K)
	}
	if opt.K > n {
		return nil, portrait.Errorf(portrait.EINVALID, "k = %d exceeds the number of points (%d)", opt.K, n)
	}
	x := data
	var mean, scale []float64
	if opt.Standardize {
		x, mean, scale = standardize(data, n, d)
	}
	m, err := fit(x, n, d, opt)
	if err != nil {
		return nil, err
	}
	if opt.Standardize {
		m.Standardized, m.Mean, m.Scale = true, mean, scale
		for j := 0; j < m.K; j++ {
			for f := 0; f < d; f++ {
				m.Centers[j*d+f] = m.Centers[j*d+f]*scale[f] + mean[f]
			}
		}
	}
	return m, nil
}

// fit runs the restarts on already-scaled data and keeps the lowest WCSS.
func fit(x []float64, n, d int, opt Options) (*Model, error) {
	// The tolerance is relative to the data's spread, as in scikit-learn, so
	// that it means the same whatever the units.
	_, sd := colstat.MeanSD(x, n, d)
	var meanVar float64
	for _, s := range sd {
		meanVar += s * s
	}
	tol := opt.Tol * meanVar / float64(d)

	workers := opt.Workers
	if n < 4096 {
		workers = 1 // goroutine hand-offs cost more than small passes
	}
	r := newRunner(x, n, d, opt.K, workers)
	var best *Model
	for s := 0; s < opt.Restarts; s++ {
		rng := rand.New(rand.NewPCG(opt.Seed, uint64(s)+0x9e3779b97f4a7c15))
		if err := r.seed(rng); err != nil {
			return nil, err
		}
		iters := r.lloyd(opt.MaxIter, tol)
		wcss := r.inertia()
		if best == nil || wcss < best.WCSS {
			best = &Model{K: opt.K, D: d, WCSS: wcss, Iterations: iters,
				Centers: append([]float64(nil), r.c...), Labels: make([]int, n), Sizes: make([]int, opt.K)}
			for i, a := range r.a {
				best.Labels[i] = int(a)
				best.Sizes[a]++
			}
		}
	}
	return best, nil
}

// runner holds the buffers of one k-means problem, reused across restarts.
type runner struct {
	x       []float64
	n, d, k int
	workers int
	c       []float64 // centres k×d
	cNew    []float64
	sums    []float64 // per-cluster coordinate sums k×d
	counts  []int
	a       []int32   // assignment
	u, l    []float64 // Hamerly upper bound to own centre, lower bound to the others
	p       []float64 // centre movement per iteration
	s       []float64 // half distance to the nearest other centre
	dist    []float64 // k-means++ squared distances
	cdist   []float64 // k-means++ trial distances, trials × n
	part    []partial
}

// partial is one worker's share of a pass: label changes as deltas of sums and
// counts, merged after the pass so that workers never contend.
type partial struct {
	sums    []float64
	counts  []int
	changed int
	val     float64
	trial   []float64 // k-means++ candidate potentials
	dd      []float64 // distances from one point to every centre
}

func newRunner(x []float64, n, d, k, workers int) *runner {
	r := &runner{x: x, n: n, d: d, k: k, workers: max(1, min(workers, n)),
		c: make([]float64, k*d), cNew: make([]float64, k*d), sums: make([]float64, k*d), counts: make([]int, k),
		a: make([]int32, n), u: make([]float64, n), l: make([]float64, n),
		p: make([]float64, k), s: make([]float64, k), dist: make([]float64, n)}
	r.part = make([]partial, r.workers)
	for w := range r.part {
		r.part[w] = partial{sums: make([]float64, k*d), counts: make([]int, k), trial: make([]float64, 2+int(math.Log(float64(k)))), dd: make([]float64, k)}
	}
	return r
}

// parallel runs f over contiguous chunks of the n points, one per worker.
func (r *runner) parallel(f func(w, lo, hi int)) {
	if r.workers == 1 {
		f(0, 0, r.n)
		return
	}
	var wg sync.WaitGroup
	chunk := (r.n + r.workers - 1) / r.workers
	for w := 0; w < r.workers; w++ {
		lo, hi := w*chunk, min(r.n, (w+1)*chunk)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w, lo, hi)
		}()
	}
	wg.Wait()
}

// sqDist is the squared Euclidean distance. Four accumulators let the CPU
// overlap the additions (Go does not vectorise this loop).
func sqDist(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0, d1, d2, d3 := a[i]-b[i], a[i+1]-b[i+1], a[i+2]-b[i+2], a[i+3]-b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// dist4 returns the squared distances from x to four points at once: four
// independent sums keep the floating-point units busy, which a loop over one
// point at a time cannot.
func dist4(x, a, b, c, e []float64) (float64, float64, float64, float64) {
	n := len(x)
	a, b, c, e = a[:n], b[:n], c[:n], e[:n]
	var s0, s1, s2, s3 float64
	for i, v := range x {
		d0, d1, d2, d3 := v-a[i], v-b[i], v-c[i], v-e[i]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	return s0, s1, s2, s3
}

// sqDistBelow is sqDist that may stop early once the partial sum reaches
// bound, returning a value ≥ bound: callers only want distances below a
// bound (partial distance search), and most candidates are ruled out after
// a few coordinates.
func sqDistBelow(a, b []float64, bound float64) float64 {
	b = b[:len(a)]
	var s float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0, d1, d2, d3 := a[i]-b[i], a[i+1]-b[i+1], a[i+2]-b[i+2], a[i+3]-b[i+3]
		s += (d0*d0 + d1*d1) + (d2*d2 + d3*d3)
		if s >= bound {
			return s
		}
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

// seed chooses initial centres with greedy k-means++ (Arthur & Vassilvitskii
// 2007, with scikit-learn's 2+ln k local trials per centre): each new centre
// is the best of a few candidates drawn with probability proportional to the
// squared distance to the nearest centre chosen so far.
func (r *runner) seed(rng *rand.Rand) error {
	n, d, k := r.n, r.d, r.k
	first := rng.IntN(n)
	copy(r.c[:d], r.x[first*d:(first+1)*d])
	pot := r.firstDist()
	trials := 2 + int(math.Log(float64(k)))
	cand := make([]int, trials)
	targets := make([]float64, trials)
	candPot := make([]float64, trials)
	cs := make([][]float64, trials)
	if len(r.cdist) < trials*n {
		r.cdist = make([]float64, trials*n)
	}
	for j := 1; j < k; j++ {
		if !(pot > 0) {
			return portrait.Errorf(portrait.EINVALID, "only %d distinct points, fewer than k = %d", j, k)
		}
		for t := range targets {
			targets[t] = rng.Float64() * pot
		}
		sampleMany(r.dist, targets, cand)
		// Potential after adding each candidate. Points are the outer loop
		// and candidates are measured four at a time, so each row is read once
		// and the four sums proceed in parallel in the CPU; workers split the
		// points. The would-be distances are kept so that adopting the winner
		// needs no second pass.
		for t, ci := range cand {
			cs[t] = r.x[ci*d : (ci+1)*d]
		}
		r.parallel(func(w, lo, hi int) {
			acc := r.part[w].trial
			for i := lo; i < hi; i++ {
				x := r.x[i*d : (i+1)*d]
				di := r.dist[i]
				t := 0
				for ; t+4 <= len(cs); t += 4 {
					var v [4]float64
					v[0], v[1], v[2], v[3] = dist4(x, cs[t], cs[t+1], cs[t+2], cs[t+3])
					for q, e := range v {
						// Plain comparison: math.Min handles NaN and ±0
						// with an assembly call in this innermost loop.
						if e > di {
							e = di
						}
						r.cdist[(t+q)*n+i] = e
						acc[t+q] += e
					}
				}
				for ; t < len(cs); t++ {
					e := sqDist(x, cs[t])
					if e > di {
						e = di
					}
					r.cdist[t*n+i] = e
					acc[t] += e
				}
			}
		})
		bt := 0
		for t := range cand {
			candPot[t] = 0
			for w := range r.part {
				candPot[t] += r.part[w].trial[t]
			}
			if candPot[t] < candPot[bt] {
				bt = t
			}
		}
		for w := range r.part {
			clear(r.part[w].trial)
		}
		ci := cand[bt]
		copy(r.c[j*d:(j+1)*d], r.x[ci*d:(ci+1)*d])
		nd := r.cdist[bt*n : (bt+1)*n]
		r.parallel(func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				if nd[i] < r.dist[i] {
					r.dist[i], r.a[i] = nd[i], int32(j)
				}
			}
		})
		pot = candPot[bt]
	}
	return nil
}

// firstDist sets each point's squared distance to the first centre.
func (r *runner) firstDist() float64 {
	d := r.d
	c := r.c[:d]
	r.parallel(func(w, lo, hi int) {
		var pot float64
		for i := lo; i < hi; i++ {
			r.dist[i], r.a[i] = sqDist(r.x[i*d:(i+1)*d], c), 0
			pot += r.dist[i]
		}
		r.part[w].val = pot
	})
	var pot float64
	for w := range r.part {
		pot += r.part[w].val
		r.part[w].val = 0
	}
	return pot
}

// sampleMany draws, for each target in [0, total), the index where the
// running sum of w passes it: an index with probability proportional to its
// weight. One pass serves all targets.
func sampleMany(w, targets []float64, out []int) {
	order := make([]int, len(targets))
	for t := range order {
		order[t] = t
	}
	sort.Slice(order, func(a, b int) bool { return targets[order[a]] < targets[order[b]] })
	var cum float64
	last, t := 0, 0
	for i, v := range w {
		if v <= 0 {
			continue
		}
		last = i
		cum += v
		for t < len(order) && targets[order[t]] < cum {
			out[order[t]] = i
			t++
		}
		if t == len(order) {
			return
		}
	}
	for ; t < len(order); t++ {
		out[order[t]] = last // rounding left a target at the very end
	}
}
