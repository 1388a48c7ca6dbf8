package clean_test

import (
	"reflect"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

func TestFill(t *testing.T) {
	rules := []clean.FillRule{
		{Field: "gender", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveGenderFromID},
		{Field: "birth_date", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveBirthDateFromID},
		{Field: "province", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveProvinceFromID},
		{Field: "province", Kind: clean.FillDerive, From: "city", Derivation: clean.DeriveProvinceFromCity},
		{Field: "province", Kind: clean.FillDerive, From: "phone", Derivation: clean.DeriveProvinceFromPhone, Region: "CN"},
		{Name: "segment-mode", Field: "segment", Kind: clean.FillMostFrequent, GroupBy: "province"},
		{Field: "country", Kind: clean.FillConstant, Value: "CN"},
	}
	f, err := clean.NewFiller(rules)
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]string{
		{"id_card": "11010519491231002X", "segment": "vip"},                // 0: derive everything from the ID
		{"id_card": "110105194912310021", "city": "深圳", "segment": "mass"}, // 1: bad ID derives nothing; city gives province
		{"phone": "13912345678", "gender": "male", "country": "HK"},        // 2: province from the phone, segment from the 江苏 group? none observed
		{"city": "Shenzhen", "segment": "mass"},                            // 3
		{"city": "广州", "province": "广东省", "segment": "vip"},                // 4: province observed
		{"city": "深圳"},                    // 5: segment = mode of 广东省 group: mass 2, vip 1
		{"id_card": "11010519491231002X"}, // 6: segment mode of 北京市 group: vip
		{"segment": "  "},                 // 7: blank counts as missing; no province → no group
	}
	got := f.Fill(recs)
	want := []clean.Imputation{
		{Row: 0, Field: "gender", Value: "female", Rule: "derive:gender:gender_from_id_card", Source: "id_card"},
		{Row: 0, Field: "birth_date", Value: "1949-12-31", Rule: "derive:birth_date:birth_date_from_id_card", Source: "id_card"},
		{Row: 0, Field: "province", Value: "北京市", Rule: "derive:province:province_from_id_card", Source: "id_card"},
		{Row: 0, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 1, Field: "province", Value: "广东省", Rule: "derive:province:province_from_city", Source: "city"},
		{Row: 1, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 2, Field: "province", Value: "江苏省", Rule: "derive:province:province_from_phone", Source: "phone"},
		{Row: 3, Field: "province", Value: "广东省", Rule: "derive:province:province_from_city", Source: "city"},
		{Row: 3, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 4, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 5, Field: "province", Value: "广东省", Rule: "derive:province:province_from_city", Source: "city"},
		{Row: 5, Field: "segment", Value: "mass", Rule: "segment-mode", Source: "province"},
		{Row: 5, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 6, Field: "gender", Value: "female", Rule: "derive:gender:gender_from_id_card", Source: "id_card"},
		{Row: 6, Field: "birth_date", Value: "1949-12-31", Rule: "derive:birth_date:birth_date_from_id_card", Source: "id_card"},
		{Row: 6, Field: "province", Value: "北京市", Rule: "derive:province:province_from_id_card", Source: "id_card"},
		{Row: 6, Field: "segment", Value: "vip", Rule: "segment-mode", Source: "province"},
		{Row: 6, Field: "country", Value: "CN", Rule: "constant:country"},
		{Row: 7, Field: "country", Value: "CN", Rule: "constant:country"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("imputations:\n got %+v\nwant %+v", got, want)
	}
	if recs[1]["gender"] != "" {
		t.Errorf("an invalid ID number must not produce a gender, got %q", recs[1]["gender"])
	}
	if recs[2]["gender"] != "male" || recs[2]["country"] != "HK" {
		t.Errorf("observed values were overwritten: %v", recs[2])
	}
	if recs[7]["segment"] != "  " {
		t.Errorf("record without a group got segment %q", recs[7]["segment"])
	}
}

// Most-frequent statistics come from observed values only, so the result
// does not depend on the order of the records.
func TestFillMostFrequentIgnoresImputedAndOrder(t *testing.T) {
	f, err := clean.NewFiller([]clean.FillRule{{Field: "tier", Kind: clean.FillMostFrequent}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() []map[string]string {
		return []map[string]string{{}, {"tier": "b"}, {}, {"tier": "a"}, {}, {"tier": "b"}, {"tier": "a"}}
	}
	a, b := mk(), mk()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	f.Fill(a)
	f.Fill(b)
	for i := range a {
		if a[i]["tier"] != "a" && a[i]["tier"] != "b" {
			t.Fatalf("record %d tier %q", i, a[i]["tier"])
		}
	}
	// Tie between a and b (2 each): the lexically smaller wins, every time.
	if a[0]["tier"] != "a" || b[len(b)-1]["tier"] != "a" {
		t.Errorf("tie broken differently: %v / %v", a, b)
	}
}

func TestNewFillerRejectsBadRules(t *testing.T) {
	for what, r := range map[string]clean.FillRule{
		"no field":          {Kind: clean.FillConstant, Value: "x"},
		"constant no value": {Field: "a", Kind: clean.FillConstant},
		"derive no from":    {Field: "a", Kind: clean.FillDerive, Derivation: clean.DeriveGenderFromID},
		"derive from self":  {Field: "a", Kind: clean.FillDerive, From: "a", Derivation: clean.DeriveGenderFromID},
		"bad derivation":    {Field: "a", Kind: clean.FillDerive, From: "b", Derivation: "astrology"},
		"group by self":     {Field: "a", Kind: clean.FillMostFrequent, GroupBy: "a"},
		"unknown kind":      {Field: "a", Kind: "guess"},
	} {
		_, err := clean.NewFiller([]clean.FillRule{{Field: "ok", Kind: clean.FillConstant, Value: "1"}, r})
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: err = %v, want invalid", what, err)
			continue
		}
		var pe *portrait.Error
		pe = err.(*portrait.Error)
		if len(pe.Details) != 1 || pe.Details[0].Index == nil || *pe.Details[0].Index != 1 {
			t.Errorf("%s: details %+v do not point at rule index 1", what, pe.Details)
		}
	}
}

func TestFillMostFrequentCountsObservedValuesOnly(t *testing.T) {
	f, err := clean.NewFiller([]clean.FillRule{
		{Field: "tier", Kind: clean.FillMostFrequent, GroupBy: "city"},
		{Field: "tier", Kind: clean.FillMostFrequent},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]string{
		{"city": "A", "tier": "x"}, {"city": "A"}, {"city": "A"}, {"city": "A"}, {"city": "A"},
		{"city": "C", "tier": "y"}, {"city": "C", "tier": "y"},
		{"city": "B"},
	}
	f.Fill(recs)
	// Observed: x once, y twice. Had the four imputed x counted, B would get x.
	if recs[7]["tier"] != "y" {
		t.Errorf("city B tier = %q, want y from observed values only", recs[7]["tier"])
	}
	if recs[1]["tier"] != "x" {
		t.Errorf("city A tier = %q, want x", recs[1]["tier"])
	}
}
