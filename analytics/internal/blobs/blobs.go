// Package blobs generates the clustered test data the k-means benchmarks
// share, so that the Go benchmark and the harness measure the same points.
package blobs

import "math/rand/v2"

// Gaussian returns n points in d dimensions (row-major) drawn around k
// centres placed uniformly in [-spread, spread]^d, with unit noise. Spread 3
// separates the blobs; 1.5 makes them overlap heavily.
func Gaussian(n, d, k int, spread float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	c := make([]float64, k*d)
	for i := range c {
		c[i] = (rng.Float64()*2 - 1) * spread
	}
	x := make([]float64, n*d)
	for i := 0; i < n; i++ {
		j := rng.IntN(k)
		for f := 0; f < d; f++ {
			x[i*d+f] = c[j*d+f] + rng.NormFloat64()
		}
	}
	return x
}
