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

// A declared trait (an analysis' output) is known with its type before any
// profile has it, under the default annotation of its name; the first
// value written is typed and stored as before and takes its place; a
// declaration never shadows a built-in.
func TestDeclaredTraitsAreKnownBeforeAnyValue(t *testing.T) {
	s := traits.NewSchema()
	s.Declare(traits.Field{Name: "churn_probability", Type: traits.TypeNumber, Description: "written by churn"},
		traits.Field{Name: "revenue", Type: traits.TypeString})
	if typ := s.Types()["churn_probability"]; typ != traits.TypeNumber {
		t.Fatalf("declared churn_probability has type %q in Types()", typ)
	}
	f, ok := s.Lookup("churn_probability")
	if !ok || f.Origin != traits.OriginDeclared || f.Dimension != traits.DimRisk || f.Description != "written by churn" {
		t.Errorf("declared churn_probability: %+v %v", f, ok)
	}
	if len(s.Unsaved()) != 0 {
		t.Errorf("a declaration is stored: %+v", s.Unsaved())
	}
	if typ := s.Types()["revenue"]; typ != traits.TypeNumber {
		t.Errorf("a declaration shadowed the built-in revenue: %q", typ)
	}
	s.Observe("churn_probability", 0.4, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if f, _ := s.Lookup("churn_probability"); f.Origin != traits.OriginObserved {
		t.Errorf("after a value, churn_probability is %+v, want the observed field", f)
	}
	if u := s.Unsaved(); len(u) != 1 || u[0].Name != "churn_probability" {
		t.Errorf("the first value is not stored as before: %+v", u)
	}
	n := 0
	for _, f := range s.Fields() {
		if f.Name == "churn_probability" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("churn_probability listed %d times", n)
	}
}

// Personal traits named in Chinese are classified as their English names
// are, and a trait whose name says nothing (contact, 备注) is classified
// by its first value when that is an ID number, a mobile number or an
// email; a restart (Load) keeps what the value decided. Found by the
// issue 15 probe: 身份证号, 手机号 and contact were internal and shown in
// clear to analysts.
func TestObservedPersonalTraitsInAnyNameOrByValue(t *testing.T) {
	s := traits.NewSchema()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for name, v := range map[string]any{"身份证号": "x", "手机号": "x", "邮箱": "x", "家庭住址": "x", "phoneNumber": "x",
		"contact": "13600002222", "备注": "110101199003074514", "partner": "li.si@example.cn", "city": "上海市", "order_no": "123456789012345678"} {
		s.Observe(name, v, at)
	}
	want := map[string]string{"身份证号": traits.ClassSecret, "手机号": traits.ClassConfidential, "邮箱": traits.ClassConfidential,
		"家庭住址": traits.ClassConfidential, "phoneNumber": traits.ClassConfidential, "contact": traits.ClassConfidential,
		"备注": traits.ClassSecret, "partner": traits.ClassConfidential, "city": traits.ClassInternal, "order_no": traits.ClassInternal}
	var fields []traits.Field
	for name, class := range want {
		f, ok := s.Lookup(name)
		if !ok || f.Classification != class {
			t.Errorf("%s: %q, want %q", name, f.Classification, class)
		}
		fields = append(fields, f)
	}
	again := traits.NewSchema()
	again.Load(fields)
	for name, class := range want {
		if f, _ := again.Lookup(name); f.Classification != class {
			t.Errorf("after Load, %s: %q, want %q", name, f.Classification, class)
		}
	}
}
