package clean_test

import (
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

func TestTraitStandardizer(t *testing.T) {
	s := clean.DefaultTraitStandardizer()
	for _, c := range []struct {
		name string
		in   any
		out  any
		bad  bool
	}{
		{"phone", "１３８ ００１３ ８０００", "+8613800138000", false},
		{"phone", 13800138000.0, "+8613800138000", false},
		{"mobile", "0086-139 1234 5678", "+8613912345678", false},
		{"phone", "call me", nil, true},
		{"email", " Zhang.San@Example.COM ", "zhang.san@example.com", false},
		{"email", "zhang.san@", nil, true},
		{"name", "  张　三 ", "张三", false},
		{"gender", "女", "female", false},
		{"sex", "M", "male", false},
		{"gender", "unknown", nil, true},
		{"province", "Beijing", "北京市", false},
		{"birthday", "1990年3月5日", "1990-03-05", false},
		{"id_card", "11010519491231002X", "11010519491231002X", false},
		{"id_card", "110105194912310021", nil, true},
		{"plan", "GOLD ", "GOLD ", false}, // no kind: kept as sent
		{"email", map[string]any{"a": 1}, nil, true},
		{"phone", nil, nil, false},
	} {
		got, err := s.Standardize(c.name, c.in)
		if c.bad {
			if err == nil || portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "" {
				t.Errorf("%s %v: want an invalid error with a reason, got %v %v", c.name, c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("%s %v: got %v %v, want %v", c.name, c.in, got, err, c.out)
		}
	}
	if err := (&clean.TraitStandardizer{Kinds: map[string]string{"x": "colour"}}).Validate(); err == nil {
		t.Error("an unknown kind must be refused")
	}
}

func TestTraitFillerDerivesAndYieldsToObserved(t *testing.T) {
	f, err := clean.NewTraitFiller([]clean.FillRule{
		{Field: "gender", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveGenderFromID},
		{Field: "birth_date", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveBirthDateFromID},
		{Field: "country", Kind: clean.FillConstant, Value: "CN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &portrait.Profile{Traits: map[string]portrait.Trait{"id_card": {Value: "11010519491231002X", Source: "crm", Time: at, MessageID: "m1"}}}
	f.Finish(p, at)
	g := p.Traits["gender"]
	if g.Value != "female" || g.Imputed == "" || g.MessageID != "m1" || !g.Time.Equal(at) {
		t.Errorf("gender %+v: want female, imputed, with the id card's provenance", g)
	}
	if p.Traits["birth_date"].Value != "1949-12-31" || p.Traits["country"].Value != "CN" {
		t.Errorf("traits %+v", p.Traits)
	}
	// An observed gender replaces the imputed one and is never overwritten.
	p.Traits["gender"] = portrait.Trait{Value: "male", Source: "survey", Time: at}
	f.Finish(p, at)
	if p.Traits["gender"].Value != "male" || p.Traits["gender"].Imputed != "" {
		t.Errorf("observed gender lost: %+v", p.Traits["gender"])
	}
	// Without the id card, what was derived from it goes away.
	delete(p.Traits, "id_card")
	f.Finish(p, at)
	if _, ok := p.Traits["birth_date"]; ok {
		t.Error("birth_date still imputed without an id card")
	}
	if _, err := clean.NewTraitFiller([]clean.FillRule{{Field: "city", Kind: clean.FillMostFrequent}}); err == nil {
		t.Error("most_frequent cannot apply per profile")
	}
}

func TestPinyinEnricher(t *testing.T) {
	p := &portrait.Profile{Traits: map[string]portrait.Trait{"name": {Value: "张三", MessageID: "m"}}}
	clean.PinyinEnricher{}.Finish(p, time.Now())
	if v, _ := p.Traits["name_pinyin"].Value.(string); v == "" || p.Traits["name_pinyin"].Source != "derived" {
		t.Errorf("name_pinyin %+v", p.Traits["name_pinyin"])
	}
	p.Traits["name"] = portrait.Trait{Value: "Emma Rossi"}
	clean.PinyinEnricher{}.Finish(p, time.Now())
	if _, ok := p.Traits["name_pinyin"]; ok {
		t.Error("a Latin name has no pinyin")
	}
}
