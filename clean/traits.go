package clean

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/portrait-cdp/portrait"
)

// Trait kinds: which standardizer a trait's values go through.
const (
	KindEmail    = "email"
	KindPhone    = "phone"
	KindName     = "name"
	KindText     = "text"
	KindProvince = "province"
	KindCity     = "city"
	KindDate     = "date"
	KindIDCard   = "id_card"
	KindUSCC     = "uscc"
	KindGender   = "gender"
)

// TraitStandardizer cleans the traits that profiles receive, by name: the
// same person typed three ways in three systems becomes one value.
type TraitStandardizer struct {
	// Kinds maps a trait name to its kind; unlisted traits are kept as sent.
	Kinds map[string]string `json:"kinds" yaml:"kinds"`
	// Region is the default phone region (ISO 3166 code), CN by default.
	Region string      `json:"region" yaml:"region"`
	Dates  DateOptions `json:"dates" yaml:"dates"`
}

// DefaultTraitStandardizer knows the usual trait names of Segment's spec
// and of Chinese CRMs.
func DefaultTraitStandardizer() *TraitStandardizer {
	k := map[string]string{}
	for kind, names := range map[string][]string{
		KindEmail:    {"email"},
		KindPhone:    {"phone", "mobile", "mobile_phone", "telephone"},
		KindName:     {"name", "first_name", "firstName", "last_name", "lastName", "full_name"},
		KindText:     {"title", "company_name", "address", "street"},
		KindProvince: {"province", "state_province"},
		KindCity:     {"city"},
		KindDate:     {"birthday", "birth_date", "date_of_birth", "signup_date"},
		KindIDCard:   {"id_card", "id_number"},
		KindUSCC:     {"uscc", "credit_code", "unified_social_credit_code"},
		KindGender:   {"gender", "sex"},
	} {
		for _, n := range names {
			k[n] = kind
		}
	}
	return &TraitStandardizer{Kinds: k, Region: "CN"}
}

// Validate reports unknown kinds.
func (s *TraitStandardizer) Validate() error {
	for name, kind := range s.Kinds {
		switch kind {
		case KindEmail, KindPhone, KindName, KindText, KindProvince, KindCity, KindDate, KindIDCard, KindUSCC, KindGender:
		default:
			return portrait.Errorf(portrait.EINVALID, "trait %q: unknown kind %q", name, kind)
		}
	}
	return nil
}

// Standardize returns the clean form of a trait value, or an EINVALID error
// saying why the value cannot be used. Values of traits without a kind, and
// null, pass unchanged.
func (s *TraitStandardizer) Standardize(name string, v any) (any, error) {
	kind, ok := s.Kinds[name]
	if !ok || v == nil {
		return v, nil
	}
	var str string
	switch x := v.(type) {
	case string:
		str = x
	case float64:
		// CRMs export phone numbers and ids as numbers.
		if x != float64(int64(x)) {
			return nil, invalid(kind, strconv.FormatFloat(x, 'g', -1, 64), "must be text, not a number with a fraction")
		}
		str = strconv.FormatInt(int64(x), 10)
	default:
		return nil, invalid(kind, fmt.Sprint(v), "must be text, not %s", jsonType(v))
	}
	switch kind {
	case KindEmail:
		return Email(str)
	case KindPhone:
		return Phone(str, s.Region)
	case KindName:
		return Name(str)
	case KindText:
		return Text(str)
	case KindProvince:
		// Outside the Chinese list (Bavaria, NSW) a name is still a name:
		// kept as clean text rather than refused.
		if v, err := Province(str); err == nil {
			return v, nil
		}
		return Text(str)
	case KindCity:
		if v, err := CityName(str); err == nil {
			return v, nil
		}
		return Text(str)
	case KindDate:
		return Date(str, s.Dates)
	case KindIDCard:
		return IDCardNumber(str)
	case KindUSCC:
		return USCC(str)
	case KindGender:
		return Gender(str)
	}
	return v, nil
}

// Gender maps the ways forms write it (男/女, M/F, male/female, 先生/女士)
// to male or female.
func Gender(raw string) (string, error) {
	s, _ := Text(raw)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "m", "male", "man", "男", "男性", "先生", "1":
		return "male", nil
	case "f", "female", "woman", "女", "女性", "女士", "2":
		return "female", nil
	}
	return "", invalid("gender", raw, "not a recognised gender (male/female, 男/女, M/F)")
}

// TraitFiller fills missing profile traits by declared rules — a constant
// default, or a value derived from another trait (gender and birth date
// from the ID number, province from the city or the phone) — each marked
// as imputed by its rule. It runs as a processor enricher: when a profile
// changes, imputed values are derived again from what was observed, so a
// corrected ID number corrects what was derived from it, and an observed
// value always replaces an imputed one.
//
// "Most frequent within a group" needs the whole population; it is applied
// by imports (Filler), not per profile.
type TraitFiller struct {
	filler *Filler
	rules  []FillRule
}

// NewTraitFiller validates the rules.
func NewTraitFiller(rules []FillRule) (*TraitFiller, error) {
	for i, r := range rules {
		if r.Kind == FillMostFrequent {
			return nil, portrait.Errorf(portrait.EINVALID, "fill rule %d (%s): most_frequent needs the whole population and applies to imports only", i+1, r.Field)
		}
	}
	f, err := NewFiller(rules)
	if err != nil {
		return nil, err
	}
	return &TraitFiller{filler: f, rules: rules}, nil
}

// Event does nothing: filling depends on the profile, not on single events.
func (f *TraitFiller) Event(*portrait.Profile, *portrait.Event, map[string]any) {}

// Merge does nothing: Finish derives again from the merged profile.
func (f *TraitFiller) Merge(keep, gone *portrait.Profile) {}

// Finish re-derives every imputed trait from the observed ones.
func (f *TraitFiller) Finish(p *portrait.Profile, now time.Time) {
	rec := map[string]string{}
	var latest portrait.Trait
	for name, t := range p.Traits {
		if t.Imputed != "" {
			delete(p.Traits, name)
			continue
		}
		if s, ok := t.Value.(string); ok && s != "" {
			rec[name] = s
		} else if t.Value != nil {
			rec[name] = fmt.Sprint(t.Value)
		}
		if t.Time.After(latest.Time) {
			latest = t
		}
	}
	imps := f.filler.Fill([]map[string]string{rec})
	sort.Slice(imps, func(i, j int) bool { return imps[i].Field < imps[j].Field })
	for _, im := range imps {
		// The provenance of a derived value is the trait it came from; a
		// constant has none, so it borrows the profile's latest change.
		src := latest
		if t, ok := p.Traits[im.Source]; ok {
			src = t
		}
		p.Traits[im.Field] = portrait.Trait{Value: im.Value, Source: "imputed", Time: src.Time, MessageID: src.MessageID, Imputed: im.Rule}
	}
}

// PinyinEnricher stores the pinyin of a Chinese name as name_pinyin, so
// that 张三 is found by typing zhangsan.
type PinyinEnricher struct{}

func (PinyinEnricher) Event(*portrait.Profile, *portrait.Event, map[string]any) {}
func (PinyinEnricher) Merge(keep, gone *portrait.Profile)                       {}

// Finish derives name_pinyin from name.
func (PinyinEnricher) Finish(p *portrait.Profile, now time.Time) {
	name, ok := p.Traits["name"]
	s, isStr := name.Value.(string)
	if !ok || !isStr || !hasHan(s) {
		if t, ok := p.Traits["name_pinyin"]; ok && t.Source == "derived" {
			delete(p.Traits, "name_pinyin")
		}
		return
	}
	p.Traits["name_pinyin"] = portrait.Trait{Value: Pinyin(s), Source: "derived", Time: name.Time, MessageID: name.MessageID}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// jsonType names the JSON type of a decoded value, for a reason.
func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "true or false"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return "this type"
}
