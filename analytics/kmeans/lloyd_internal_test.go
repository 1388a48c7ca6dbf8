package kmeans

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Hamerly's bounds must not change the result: from the same seeding, plain
// Lloyd (every distance, every iteration) reaches the same labels and centres.
func TestHamerlyEqualsPlainLloyd(t *testing.T) {
	for _, c := range []struct{ n, d, k, workers int }{{3000, 3, 6, 1}, {9000, 8, 12, 2}, {500, 2, 40, 1}} {
		rng := rand.New(rand.NewPCG(uint64(c.n), 3))
		x := make([]float64, c.n*c.d)
		for i := range x {
			// Overlapping clusters make many points change sides.
			x[i] = rng.NormFloat64() + float64((i/c.d)%5)
		}
		r := newRunner(x, c.n, c.d, c.k, c.workers)
		if err := r.seed(rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatal(err)
		}
		init := append([]float64(nil), r.c...)
		iters := r.lloyd(1000, 0)
		labels, centres := plainLloyd(x, c.n, c.d, c.k, init, iters)
		for i := range labels {
			if labels[i] != int(r.a[i]) {
				t.Fatalf("%+v: point %d label %d, plain Lloyd %d", c, i, r.a[i], labels[i])
			}
		}
		for i := range centres {
			if math.Abs(centres[i]-r.c[i]) > 1e-9 {
				t.Fatalf("%+v: centre coordinate %d %v, plain Lloyd %v", c, i, r.c[i], centres[i])
			}
		}
	}
}

func plainLloyd(x []float64, n, d, k int, c []float64, iters int) ([]int, []float64) {
	c = append([]float64(nil), c...)
	labels := make([]int, n)
	assign := func() {
		for i := 0; i < n; i++ {
			best, bd := 0, math.Inf(1)
			for j := 0; j < k; j++ {
				if v := sqDist(x[i*d:(i+1)*d], c[j*d:(j+1)*d]); v < bd {
					best, bd = j, v
				}
			}
			labels[i] = best
		}
	}
	assign()
	for it := 0; it < iters; it++ {
		sums := make([]float64, k*d)
		counts := make([]int, k)
		for i, a := range labels {
			counts[a]++
			for f := 0; f < d; f++ {
				sums[a*d+f] += x[i*d+f]
			}
		}
		for j := 0; j < k; j++ {
			if counts[j] == 0 {
				panic("empty cluster in the oracle; choose other test data")
			}
			for f := 0; f < d; f++ {
				c[j*d+f] = sums[j*d+f] / float64(counts[j])
			}
		}
		assign()
	}
	return labels, c
}

// A centre that attracts no point is given the point farthest from its
// centre, and iteration continues to a valid clustering.
func TestEmptyClusterRefilled(t *testing.T) {
	x := []float64{0, 1, 2, 10, 11, 12, 30}
	r := newRunner(x, len(x), 1, 3, 1)
	copy(r.c, []float64{1, 11, 1000}) // the third centre is far from every point
	for i := range x {
		r.a[i], r.dist[i] = 0, math.Inf(1)
		for j := 0; j < 3; j++ {
			if v := sqDist(x[i:i+1], r.c[j:j+1]); v < r.dist[i] {
				r.a[i], r.dist[i] = int32(j), v
			}
		}
	}
	r.lloyd(100, 0)
	for j, c := range r.counts {
		if c == 0 {
			t.Fatalf("cluster %d empty after refilling; counts %v", j, r.counts)
		}
	}
	// The isolated point 30 must end alone: {0,1,2}, {10,11,12}, {30}.
	if r.a[6] == r.a[5] || r.a[0] != r.a[2] || r.a[3] != r.a[5] {
		t.Errorf("labels %v, want {0,1,2} {10,11,12} {30}", r.a)
	}
	if w := r.inertia(); math.Abs(w-4) > 1e-12 {
		t.Errorf("WCSS %v, want 4", w)
	}
}
