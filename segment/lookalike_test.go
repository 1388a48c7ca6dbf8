package segment_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/segment"
)

// lookalikeAt is the curve point at a size.
func lookalikeAt(t *testing.T, l *segment.Lookalike, size int) segment.LookalikePoint {
	t.Helper()
	for _, p := range l.Curve {
		if p.Size == size {
			return p
		}
	}
	t.Fatalf("no curve point at %d: %+v", size, l.Curve)
	return segment.LookalikePoint{}
}

// Hold out half of one country's customers, expand from the other half
// without the country trait, and see how many of the hidden half the top
// picks find, at the hidden half's size.
func TestDatasetLookalikeOnlineRetailCountry(t *testing.T) {
	ix, cs := retailIndex(t)
	// Thresholds sit below what the model reaches (Germany 0.42, France
	// 0.25 at the hidden half's size; random picks find 0.011) and well
	// above chance: a model that learnt nothing fails them.
	want := map[string]float64{"Germany": 0.25, "France": 0.15}
	for _, country := range []string{"Germany", "France"} {
		var ids []string
		for _, c := range cs {
			if c.country == country {
				ids = append(ids, c.id)
			}
		}
		l, err := ix.Lookalike(ix.Numbers(ids), segment.LookalikeOptions{Exclude: []string{"trait:country"}, HoldOut: 0.5, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		p := lookalikeAt(t, l, l.HeldOut)
		t.Logf("%s: seed %d (trained on %d, %d hidden among %d candidates), AUC %.3f; at %d: precision %.3f, recall %.3f, lift %.1f; top features %v",
			country, l.SeedSize, l.TrainSeed, l.HeldOut, l.Candidates, l.AUC, p.Size, p.Precision, p.Recall, p.Lift, l.TopFeatures[:3])
		for _, q := range l.Curve {
			t.Logf("  size %5d: precision %.3f recall %.3f lift %.1f", q.Size, q.Precision, q.Recall, q.Lift)
		}
		if p.Precision < want[country] || p.Lift < 10 || l.AUC < 0.8 {
			t.Errorf("%s: precision %.3f (want ≥ %.2f), lift %.1f (≥ 10), AUC %.3f (≥ 0.8)", country, p.Precision, want[country], p.Lift, l.AUC)
		}
		for _, f := range l.TopFeatures {
			if strings.HasPrefix(f.Feature, "traits.country") {
				t.Errorf("%s: the excluded country trait is a feature: %v", country, f)
			}
		}
		top := l.Top(10)
		if len(top) != 10 {
			t.Fatalf("top 10: %v", top)
		}
		for _, id := range top {
			if slices.Contains(ids, id) {
				t.Errorf("%s: the expansion lists seed member %s", country, id)
			}
		}
	}
}

// A seed drawn at random has nothing to learn: its hidden members rank
// like anyone (AUC about 0.5, lift about 1).
func TestDatasetLookalikeRandomSeedFindsNothing(t *testing.T) {
	ix, cs := retailIndex(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []string
	for _, c := range cs {
		if rng.Float64() < 0.05 {
			ids = append(ids, c.id)
		}
	}
	l, err := ix.Lookalike(ix.Numbers(ids), segment.LookalikeOptions{HoldOut: 0.5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := lookalikeAt(t, l, l.HeldOut)
	t.Logf("random seed of %d: AUC %.3f, precision %.3f at %d, lift %.1f", l.SeedSize, l.AUC, p.Precision, p.Size, p.Lift)
	if l.AUC < 0.4 || l.AUC > 0.6 || p.Lift > 3 {
		t.Errorf("a random seed: AUC %.3f, lift %.1f; want about 0.5 and 1", l.AUC, p.Lift)
	}
}
