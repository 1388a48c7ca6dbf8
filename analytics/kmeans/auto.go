package kmeans

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/internal/colstat"
)

// AutoOptions choose k automatically.
type AutoOptions struct {
	Options
	KMin, KMax int // candidate range (2..10 when zero), KMax capped at n-1
	// SilhouetteSample bounds the points used for the silhouette, which costs
	// O(sample²·d); 2,000 when zero. Smaller data use every point.
	SilhouetteSample int
}

// KScore is one point of the elbow and silhouette curves.
type KScore struct {
	K          int     `json:"k"`
	WCSS       float64 `json:"wcss"`
	Silhouette float64 `json:"silhouette,omitempty"` // undefined (0) for k = 1
}

// AutoResult is the chosen model with the curves behind the choice.
type AutoResult struct {
	Model *Model   `json:"model"`
	Curve []KScore `json:"curve"` // k = 1..KMax
	// ElbowK is where the WCSS curve bends most (farthest from the chord
	// between its ends), reported for comparison with the silhouette choice.
	ElbowK int `json:"elbow_k"`
}

// Auto fits k = 1..KMax and returns the k in [KMin, KMax] with the highest
// mean silhouette (the smaller k on ties), with the elbow curve.
func Auto(data []float64, n, d int, opt AutoOptions) (*AutoResult, error) {
	opt.defaults()
	if err := checkData(data, n, d); err != nil {
		return nil, err
	}
	if opt.KMin <= 0 {
		opt.KMin = 2
	}
	if opt.KMax <= 0 {
		opt.KMax = 10
	}
	opt.KMax = min(opt.KMax, n-1)
	if opt.KMin < 2 || opt.KMin > opt.KMax {
		return nil, portrait.Errorf(portrait.EINVALID, "automatic k needs 2 ≤ kmin ≤ kmax < n; got kmin %d, kmax %d, n %d", opt.KMin, opt.KMax, n)
	}
	if opt.SilhouetteSample <= 0 {
		opt.SilhouetteSample = 2000
	}
	x := data
	var mean, scale []float64
	if opt.Standardize {
		x, mean, scale = standardize(data, n, d)
	}
	sample := sampleRows(n, opt.SilhouetteSample, opt.Seed)
	res := &AutoResult{}
	bestSil := math.Inf(-1)
	for k := 1; k <= opt.KMax; k++ {
		o := opt.Options
		o.K = k
		m, err := fit(x, n, d, o)
		if err != nil {
			if k > opt.KMin {
				break // fewer distinct points than k: larger k cannot help
			}
			return nil, err
		}
		ks := KScore{K: k, WCSS: m.WCSS}
		if k >= 2 {
			ks.Silhouette = silhouette(x, d, m.Labels, k, sample)
			if k >= opt.KMin && ks.Silhouette > bestSil {
				bestSil, res.Model = ks.Silhouette, m
			}
		}
		res.Curve = append(res.Curve, ks)
	}
	if res.Model == nil {
		return nil, portrait.Errorf(portrait.EINVALID, "no k in %d..%d could be fitted", opt.KMin, opt.KMax)
	}
	res.ElbowK = elbow(res.Curve)
	if opt.Standardize {
		m := res.Model
		m.Standardized, m.Mean, m.Scale = true, mean, scale
		for j := 0; j < m.K; j++ {
			for f := 0; f < d; f++ {
				m.Centers[j*d+f] = m.Centers[j*d+f]*scale[f] + mean[f]
			}
		}
	}
	return res, nil
}

// sampleRows returns every row when n ≤ size, else a seeded random subset.
func sampleRows(n, size int, seed uint64) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if n <= size {
		return idx
	}
	rng := rand.New(rand.NewPCG(seed, 0x5111))
	rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	idx = idx[:size]
	sort.Ints(idx)
	return idx
}

// Silhouette returns the mean silhouette coefficient of a labelling over the
// given rows (all rows when rows is nil); distances are Euclidean.
func Silhouette(data []float64, n, d int, labels []int, k int, rows []int) (float64, error) {
	if err := checkData(data, n, d); err != nil {
		return 0, err
	}
	if len(labels) != n || k < 2 {
		return 0, portrait.Errorf(portrait.EINVALID, "silhouette needs a label per point and k ≥ 2")
	}
	if rows == nil {
		rows = sampleRows(n, n, 0)
	}
	return silhouette(data, d, labels, k, rows), nil
}

// silhouette follows Rousseeuw (1987) on the sampled rows: a(i) is the mean
// distance to the other members of i's cluster, b(i) the smallest mean
// distance to another cluster, s(i) = (b−a)/max(a,b), and 0 for singletons.
// Like scikit-learn's sample_size, both i and its neighbours come from the
// sample.
func silhouette(x []float64, d int, labels []int, k int, rows []int) float64 {
	sum := make([]float64, k)
	cnt := make([]int, k)
	for _, i := range rows {
		cnt[labels[i]]++
	}
	var total float64
	for _, i := range rows {
		clear(sum)
		xi := x[i*d : (i+1)*d]
		for _, j := range rows {
			if j != i {
				sum[labels[j]] += math.Sqrt(sqDist(xi, x[j*d:(j+1)*d]))
			}
		}
		li := labels[i]
		if cnt[li] <= 1 {
			continue
		}
		a := sum[li] / float64(cnt[li]-1)
		b := math.Inf(1)
		for c := 0; c < k; c++ {
			if c != li && cnt[c] > 0 {
				b = math.Min(b, sum[c]/float64(cnt[c]))
			}
		}
		if math.IsInf(b, 1) {
			continue
		}
		if den := math.Max(a, b); den > 0 {
			total += (b - a) / den
		}
	}
	return total / float64(len(rows))
}

// elbow returns the k whose (k, WCSS) point lies farthest below the straight
// line joining the first and last points of the curve, on axes scaled to
// [0,1] (the "kneedle" idea).
func elbow(curve []KScore) int {
	if len(curve) < 3 {
		return curve[len(curve)-1].K
	}
	first, last := curve[0], curve[len(curve)-1]
	spanK := float64(last.K - first.K)
	spanW := first.WCSS - last.WCSS
	if !(spanW > 0) {
		return first.K
	}
	best, bd := curve[0].K, -1.0
	for _, c := range curve {
		xk := float64(c.K-first.K) / spanK
		yw := (first.WCSS - c.WCSS) / spanW
		if dist := yw - xk; dist > bd {
			best, bd = c.K, dist
		}
	}
	return best
}

// Description says in plain words how a cluster differs from the population.
type Description struct {
	Cluster int     `json:"cluster"`
	Size    int     `json:"size"`
	Share   float64 `json:"share"`
	Text    string  `json:"text"`
	// Code and Terms say Text for a reader in another language: "average"
	// (no term), or "differs" with each term of the text in its order.
	Code  string `json:"code"`
	Terms []Term `json:"terms"`
	// Z holds, per feature, (cluster mean − population mean) / population SD.
	Z []float64 `json:"z"`
}

// Term is one feature a cluster differs on: Level is high, low,
// very_high or very_low; Z the difference in σ, rounded to 0.1.
type Term struct {
	Feature string  `json:"feature"`
	Level   string  `json:"level"`
	Z       float64 `json:"z"`
}

// Describe names the (at most three) features on which each cluster differs
// most from the population, in z-scores of the input data, e.g.
// "high Annual Income (+1.0σ), low Spending Score (−1.3σ)". Differences under
// 0.25σ are not worth a word.
func Describe(data []float64, n, d int, m *Model, names []string) ([]Description, error) {
	if err := checkData(data, n, d); err != nil {
		return nil, err
	}
	if len(m.Labels) != n || m.D != d {
		return nil, portrait.Errorf(portrait.EINVALID, "model does not fit the data (%d labels, %d features; data %d × %d)", len(m.Labels), m.D, n, d)
	}
	if len(names) != d {
		names = make([]string, d)
		for f := range names {
			names[f] = fmt.Sprintf("feature %d", f+1)
		}
	}
	mean, sd := colstat.MeanSD(data, n, d)
	cm := make([]float64, m.K*d)
	for i, a := range m.Labels {
		for f := 0; f < d; f++ {
			cm[a*d+f] += data[i*d+f]
		}
	}
	out := make([]Description, m.K)
	for j := range out {
		size := m.Sizes[j]
		desc := Description{Cluster: j, Size: size, Share: float64(size) / float64(n), Z: make([]float64, d), Terms: []Term{}}
		order := make([]int, d)
		for f := 0; f < d; f++ {
			order[f] = f
			if size > 0 {
				desc.Z[f] = (cm[j*d+f]/float64(size) - mean[f]) / sd[f]
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return math.Abs(desc.Z[order[a]]) > math.Abs(desc.Z[order[b]]) })
		var parts []string
		for _, f := range order[:min(3, d)] {
			z := desc.Z[f]
			if math.Abs(z) < 0.25 {
				break
			}
			word := "high"
			if z < 0 {
				word = "low"
			}
			if math.Abs(z) >= 1.5 {
				word = "very " + word
			}
			parts = append(parts, fmt.Sprintf("%s %s (%+.1fσ)", word, names[f], z))
			desc.Terms = append(desc.Terms, Term{Feature: names[f], Level: strings.ReplaceAll(word, " ", "_"), Z: math.Round(z*10) / 10})
		}
		if len(parts) == 0 {
			desc.Text, desc.Code = "close to the average on every feature", "average"
		} else {
			desc.Text, desc.Code = strings.Join(parts, ", "), "differs"
		}
		out[j] = desc
	}
	return out, nil
}
