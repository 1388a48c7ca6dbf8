package traits_test

import (
	"slices"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/traits"
)

// Traits seen for the first time get the dimension and classification they
// belong to: the analyses' outputs sit in value and risk, and personal
// identifiers are classified above revenue.
func TestObservedTraitsDefaultAnnotation(t *testing.T) {
	s := traits.NewSchema()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"clv_12m", "p_alive", "expected_purchases_90d", "expected_spend", "purchase_probability_90d",
		"churn_probability", "phone", "email", "id_card", "address", "work_email", "shoe_size"} {
		s.Observe(name, "x", at)
	}
	level := func(name string) int {
		f, ok := s.Lookup(name)
		if !ok {
			t.Fatalf("%s unknown", name)
		}
		return slices.Index(traits.Classifications, f.Classification)
	}
	for name, dim := range map[string]string{"clv_12m": traits.DimValue, "p_alive": traits.DimValue, "expected_purchases_90d": traits.DimValue,
		"expected_spend": traits.DimValue, "purchase_probability_90d": traits.DimValue, "churn_probability": traits.DimRisk, "shoe_size": traits.DimBasic} {
		if f, _ := s.Lookup(name); f.Dimension != dim {
			t.Errorf("%s: dimension %q, want %q", name, f.Dimension, dim)
		}
	}
	// Issue 15's levels: an ID number is secret (机密); phone, email and
	// address confidential (秘密), as revenue is.
	if f, _ := s.Lookup("id_card"); f.Classification != traits.ClassSecret {
		t.Errorf("id_card is %s, want secret", f.Classification)
	}
	for _, name := range []string{"phone", "email", "address", "work_email"} {
		if f, _ := s.Lookup(name); f.Classification != traits.ClassConfidential || level(name) < level("revenue") {
			t.Errorf("%s is classified %s, want confidential", name, f.Classification)
		}
	}
	if f, _ := s.Lookup("shoe_size"); f.Classification != traits.ClassInternal {
		t.Errorf("an ordinary trait is %s, want internal", f.Classification)
	}
}
