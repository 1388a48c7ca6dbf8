// Package colstat computes per-column statistics of row-major data, shared
// by the methods that standardise features.
package colstat

import "math"

// MeanSD returns each column's mean and population standard deviation; a
// constant column gets SD 1, so that standardising it gives zeros instead of
// dividing by zero.
func MeanSD(data []float64, n, d int) (mean, sd []float64) {
	mean, sd = make([]float64, d), make([]float64, d)
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			mean[f] += data[i*d+f]
		}
	}
	for f := range mean {
		mean[f] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for f := 0; f < d; f++ {
			v := data[i*d+f] - mean[f]
			sd[f] += v * v
		}
	}
	for f := range sd {
		sd[f] = math.Sqrt(sd[f] / float64(n))
		if !(sd[f] > 1e-12*math.Max(1, math.Abs(mean[f]))) {
			sd[f] = 1
		}
	}
	return mean, sd
}
