package needs_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/traits"
)

// The traits needs writes are the needs dimension of the trait schema (what
// GET /v1/traits/schema lists), not basic information; what the customer
// said and the words of their complaints are confidential.
func TestNeedsTraitsInNeedsDimension(t *testing.T) {
	e := open(t)
	e.send(t,
		track("v1", "u", "Product Viewed", 3*day, `{"category":"electronics"}`),
		track("o1", "u", "Order Completed", 2*day, `{"category":"electronics","revenue":100}`),
		track("s1", "u", "Survey Submitted", 2*day, `{"nps":8,"needs":"理财"}`),
		track("t1", "u", "Complaint Submitted", 1*day, `{"text":"快递太慢了"}`),
	)
	// the traits enricher types what the others wrote on the profile's
	// next event
	e.send(t, track("v2", "u", "Product Viewed", 0, `{"category":"electronics"}`))
	p := e.user(t, "u")
	want := map[string]string{
		needs.TraitAffinity:      traits.ClassInternal,
		needs.TraitTopCategories: traits.ClassInternal,
		needs.TraitNeeds:         traits.ClassInternal,
		needs.TraitNeedsEvidence: traits.ClassInternal,
		needs.TraitStated:        traits.ClassConfidential,
		needs.TraitPainPoints:    traits.ClassInternal,
		needs.TraitPainEvidence:  traits.ClassConfidential,
	}
	for name, class := range want {
		if _, ok := p.Traits[name]; !ok {
			t.Errorf("profile lacks %s; traits %v", name, p.Traits)
			continue
		}
		fl, ok := e.ten.Schema.Lookup(name)
		if !ok {
			t.Errorf("schema lacks %s", name)
			continue
		}
		if fl.Dimension != traits.DimNeeds || fl.Classification != class {
			t.Errorf("%s: dimension %s, classification %s; want needs, %s", name, fl.Dimension, fl.Classification, class)
		}
	}
	// A schema saved before this default (basic, internal, never
	// annotated) takes it on load; an annotated field keeps its own.
	s := traits.NewSchema()
	s.Load([]traits.Field{
		{Name: needs.TraitStated, Type: traits.TypeList, Dimension: traits.DimBasic, Classification: traits.ClassInternal, Origin: traits.OriginObserved, Description: "typed on first sight"},
		{Name: needs.TraitNeeds, Type: traits.TypeList, Dimension: traits.DimBehaviour, Classification: traits.ClassPublic, Origin: traits.OriginObserved, Description: "ours", Annotated: true},
	})
	if fl, _ := s.Lookup(needs.TraitStated); fl.Dimension != traits.DimNeeds || fl.Classification != traits.ClassConfidential {
		t.Errorf("loaded stated_needs = %+v, want needs, confidential", fl)
	}
	if fl, _ := s.Lookup(needs.TraitNeeds); fl.Dimension != traits.DimBehaviour {
		t.Errorf("annotated needs = %+v, want its annotation kept", fl)
	}
}
