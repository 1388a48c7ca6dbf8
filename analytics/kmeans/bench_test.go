package kmeans_test

import (
	blobgen "github.com/portrait-cdp/portrait/analytics/internal/blobs"
	"testing"

	"github.com/portrait-cdp/portrait/analytics/kmeans"
)

// benchBlobs matches the harness data: 8 centres in [-spread,spread]^10 with
// unit noise; spread 3 converges in a few iterations, 1.5 overlaps heavily
// and takes tens.
func benchBlobs(spread float64) []float64 {
	return blobgen.Gaussian(100000, 10, 8, spread, 42)
}

func benchFit(b *testing.B, workers int, spread float64) {
	x := benchBlobs(spread)
	for b.Loop() {
		if _, err := kmeans.Fit(x, 100000, 10, kmeans.Options{K: 8, Restarts: 1, Seed: 1, Workers: workers}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFitSeparatedOneWorker(b *testing.B)    { benchFit(b, 1, 3) }
func BenchmarkFitSeparatedTwoWorkers(b *testing.B)   { benchFit(b, 2, 3) }
func BenchmarkFitOverlappingOneWorker(b *testing.B)  { benchFit(b, 1, 1.5) }
func BenchmarkFitOverlappingTwoWorkers(b *testing.B) { benchFit(b, 2, 1.5) }
