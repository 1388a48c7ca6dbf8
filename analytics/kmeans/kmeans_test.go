package kmeans_test

import (
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/dataset"
	"github.com/portrait-cdp/portrait/analytics/internal/shareddata"
	"github.com/portrait-cdp/portrait/analytics/kmeans"
)

var mallColumns = []string{"Annual Income (k$)", "Spending Score (1-100)"}

func mall(t testing.TB) *dataset.Numeric {
	t.Helper()
	f, err := os.Open(shareddata.Path(t, "mall_customers/Mall_Customers.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := dataset.ReadNumeric(f, mallColumns)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMallReference(t *testing.T) {
	m := mall(t)
	for _, c := range []struct {
		k    int
		wcss float64
	}{{5, 44448.46}, {1, 269981.28}} {
		for _, seed := range []uint64{1, 2, 3} {
			res, err := kmeans.Fit(m.Data, m.Rows, 2, kmeans.Options{K: c.k, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.WCSS-c.wcss) > c.wcss*0.001 {
				t.Errorf("k=%d seed %d: WCSS %.2f, want %.2f ± 0.1%%", c.k, seed, res.WCSS, c.wcss)
			}
			total := 0
			for _, s := range res.Sizes {
				total += s
			}
			if total != 200 {
				t.Errorf("sizes %v do not add up to 200", res.Sizes)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	x, n, d := blobs(20000, 5, 4, 7)
	a, err := kmeans.Fit(x, n, d, kmeans.Options{K: 4, Seed: 9, Restarts: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := kmeans.Fit(x, n, d, kmeans.Options{K: 4, Seed: 9, Restarts: 3})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two fits with the same seed differ")
	}
	// One worker and several find the same clustering.
	c, _ := kmeans.Fit(x, n, d, kmeans.Options{K: 4, Seed: 9, Restarts: 3, Workers: 1})
	if !reflect.DeepEqual(a.Labels, c.Labels) || math.Abs(a.WCSS-c.WCSS) > 1e-9*a.WCSS {
		t.Fatalf("serial and parallel fits differ: WCSS %v vs %v", a.WCSS, c.WCSS)
	}
}

// blobs draws n points around k well-separated centres in d dimensions.
func blobs(n, d, k int, seed uint64) ([]float64, int, int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = rng.Float64() * 40
	}
	x := make([]float64, n*d)
	for i := 0; i < n; i++ {
		c := rng.IntN(k)
		for f := 0; f < d; f++ {
			x[i*d+f] = centres[c*d+f] + rng.NormFloat64()
		}
	}
	return x, n, d
}

func TestAutoMall(t *testing.T) {
	m := mall(t)
	res, err := kmeans.Auto(m.Data, m.Rows, 2, kmeans.AutoOptions{Options: kmeans.Options{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Income × spending score has five visible groups; the silhouette peaks
	// there (about 0.55).
	if res.Model.K != 5 {
		t.Errorf("chose k=%d, want 5; curve %+v", res.Model.K, res.Curve)
	}
	if len(res.Curve) != 10 || res.Curve[0].K != 1 || math.Abs(res.Curve[0].WCSS-269981.28) > 1 {
		t.Errorf("elbow curve %+v should run k=1..10 from WCSS 269981.28", res.Curve)
	}
	for i := 1; i < len(res.Curve); i++ {
		if res.Curve[i].WCSS > res.Curve[i-1].WCSS*1.0001 {
			t.Errorf("WCSS rises from k=%d to k=%d: %+v", i, i+1, res.Curve)
		}
	}
	if s := res.Curve[4].Silhouette; math.Abs(s-0.554) > 0.01 {
		t.Errorf("silhouette at k=5 = %.4f, want 0.554", s)
	}
	if res.ElbowK < 3 || res.ElbowK > 6 {
		t.Errorf("elbow at k=%d", res.ElbowK)
	}

	desc, err := kmeans.Describe(m.Data, m.Rows, 2, res.Model, m.Columns)
	if err != nil {
		t.Fatal(err)
	}
	// The classic "high income, low spending" group must be named as such.
	var found bool
	for _, dsc := range desc {
		t.Logf("cluster %d (%d): %s", dsc.Cluster, dsc.Size, dsc.Text)
		if strings.Contains(dsc.Text, "high Annual Income") && strings.Contains(dsc.Text, "low Spending Score") {
			found = true
		}
	}
	if !found {
		t.Error("no cluster described as high income, low spending")
	}
}

func TestStandardize(t *testing.T) {
	m := mall(t)
	res, err := kmeans.Fit(m.Data, m.Rows, 2, kmeans.Options{K: 5, Seed: 1, Standardize: true})
	if err != nil {
		t.Fatal(err)
	}
	// Centres come back in input units: they lie in the data's range.
	for j := 0; j < res.K; j++ {
		c := res.Center(j)
		if c[0] < 15 || c[0] > 137 || c[1] < 1 || c[1] > 99 {
			t.Errorf("centre %v outside the data range", c)
		}
	}
	// Predict agrees with the labels.
	for i := 0; i < m.Rows; i++ {
		if p := res.Predict(m.Data[i*2 : i*2+2]); p != res.Labels[i] {
			t.Fatalf("row %d: predict %d, label %d", i, p, res.Labels[i])
		}
	}
}

func TestDegenerate(t *testing.T) {
	fit := func(x []float64, n, d, k int, std bool) error {
		_, err := kmeans.Fit(x, n, d, kmeans.Options{K: k, Seed: 1, Standardize: std})
		return err
	}
	invalid := map[string]error{
		"k > n":             fit([]float64{1, 2, 3}, 3, 1, 4, false),
		"k = 0":             fit([]float64{1, 2, 3}, 3, 1, 0, false),
		"NaN":               fit([]float64{1, math.NaN(), 3, 4}, 2, 2, 1, false),
		"Inf":               fit([]float64{1, math.Inf(1)}, 2, 1, 1, false),
		"no rows":           fit(nil, 0, 2, 1, false),
		"short data":        fit([]float64{1, 2, 3}, 2, 2, 1, false),
		"too few distinct":  fit([]float64{1, 1, 1, 2, 2}, 5, 1, 3, false),
		"all constant, k=2": fit([]float64{5, 5, 5, 5}, 4, 1, 2, true),
	}
	for name, err := range invalid {
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: got %v, want an invalid error", name, err)
		}
	}
	// A constant feature next to an informative one is harmless.
	x := []float64{0, 7, 0.1, 7, 10, 7, 10.1, 7}
	res, err := kmeans.Fit(x, 4, 2, kmeans.Options{K: 2, Seed: 1, Standardize: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Labels[0] != res.Labels[1] || res.Labels[2] != res.Labels[3] || res.Labels[0] == res.Labels[2] {
		t.Errorf("labels %v, want {0,1} and {2,3}", res.Labels)
	}
	// k = n puts every point in its own cluster.
	res, err = kmeans.Fit([]float64{1, 5, 9}, 3, 1, kmeans.Options{K: 3, Seed: 1})
	if err != nil || res.WCSS != 0 {
		t.Errorf("k = n: %+v, %v", res, err)
	}
	if _, err := kmeans.Auto([]float64{1, 2}, 2, 1, kmeans.AutoOptions{}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("auto on 2 points: %v", err)
	}
}

// Each description comes with its code and terms, in the order of its text,
// so that the console can say it in Chinese.
func TestDescribeCodes(t *testing.T) {
	// Two groups: one high on both features, one low on both; a third
	// feature the same everywhere.
	var data []float64
	for i := range 20 {
		v := 1.0
		if i >= 10 {
			v = 10
		}
		data = append(data, v+float64(i%3)*0.1, v, 5)
	}
	m, err := kmeans.Fit(data, 20, 3, kmeans.Options{K: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := kmeans.Describe(data, 20, 3, m, []string{"orders", "revenue", "flat"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range desc {
		if d.Code != "differs" || len(d.Terms) != 2 {
			t.Fatalf("description %+v: want code differs and two terms", d)
		}
		for i, tm := range d.Terms {
			word := strings.ReplaceAll(tm.Level, "_", " ")
			if !strings.Contains(strings.Split(d.Text, ", ")[i], word+" "+tm.Feature) || (tm.Z > 0) != strings.HasSuffix(tm.Level, "high") {
				t.Fatalf("term %d %+v does not say %q", i, tm, d.Text)
			}
		}
	}
	flat := []float64{1, 1, 1, 1}
	m1, err := kmeans.Fit(flat, 4, 1, kmeans.Options{K: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := kmeans.Describe(flat, 4, 1, m1, []string{"x"}); err != nil || d[0].Code != "average" || len(d[0].Terms) != 0 {
		t.Fatalf("flat data %+v %v: want code average", d, err)
	}
}
