package linkage_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/portrait-cdp/portrait/linkage"
)

// sharedData finds the shared data folder: $PORTRAIT_SHARED, or the first
// parent of the working directory that has shared/data.
func sharedData(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		if fi, err := os.Stat(filepath.Join(d, "data")); err == nil && fi.IsDir() {
			return filepath.Join(d, "data")
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("FEBRL data not found: set PORTRAIT_SHARED or run below a directory containing shared/data")
		}
		dir = parent
	}
}

var truthRe = regexp.MustCompile(`rec-(\d+)`)

// loadFEBRL reads a FEBRL file, removes rec_id from the records (the linkage
// must never see it) and returns the truth labels taken from it.
func loadFEBRL(t testing.TB, name string) ([]linkage.Record, []string) {
	t.Helper()
	path := filepath.Join(sharedData(t), "febrl", name)
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("FEBRL file %s not available: %v", path, err)
	}
	defer f.Close()
	_, recs, err := linkage.ReadCSV(f, name)
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]string, len(recs))
	for i, r := range recs {
		m := truthRe.FindStringSubmatch(r["rec_id"])
		if m == nil {
			t.Fatalf("%s row %d: rec_id %q has no truth number", name, i+2, r["rec_id"])
		}
		labels[i] = m[1]
		delete(r, "rec_id")
	}
	return recs, labels
}

func TestDatasetFEBRL(t *testing.T) {
	for _, tc := range []struct {
		file      string
		records   int
		truePairs int
	}{
		{"dataset1.csv", 1000, 500},
		{"dataset2.csv", 5000, 1934},
	} {
		t.Run(tc.file, func(t *testing.T) {
			recs, labels := loadFEBRL(t, tc.file)
			res, err := linkage.Link(recs, linkage.Config{})
			if err != nil {
				t.Fatal(err)
			}
			s := linkage.Evaluate(res.EntityPairs(), labels)
			direct := linkage.Evaluate(pairsOf(res.Matches()), labels)
			cs := linkage.EvaluateClusters(res.Entities, labels)
			t.Logf("%s: %v; closure P=%.4f R=%.4f F1=%.4f (predicted %d); direct P=%.4f R=%.4f F1=%.4f; merged profiles P=%.4f R=%.4f F1=%.4f (%d true, %d predicted)",
				tc.file, res.String(), s.Precision, s.Recall, s.F1, s.PredictedPairs, direct.Precision, direct.Recall, direct.F1,
				cs.Precision, cs.Recall, cs.F1, cs.TrueClusters, cs.PredictedClusters)
			if !res.Credible {
				t.Errorf("model judged not credible on FEBRL: %s", res.Warning)
			}
			if s.Records != tc.records || s.TruePairs != tc.truePairs {
				t.Fatalf("got %d records and %d true pairs, want %d and %d", s.Records, s.TruePairs, tc.records, tc.truePairs)
			}
			if s.F1 < 0.95 {
				t.Errorf("F1 = %.4f, want ≥ 0.95 (precision %.4f, recall %.4f)", s.F1, s.Precision, s.Recall)
			}
		})
	}
}

func pairsOf(ps []linkage.Pair) [][2]int {
	out := make([][2]int, len(ps))
	for i, p := range ps {
		out[i] = [2]int{p.A, p.B}
	}
	return out
}
