package clean

import (
	"fmt"
	"sort"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Fill rules. Missing values are filled only by rules the operator declared,
// and every filled value says which rule produced it, so that a profile can
// show it as imputed (assumed) rather than observed.

// RuleKind selects how a FillRule computes a value.
type RuleKind string

const (
	// FillConstant sets Value.
	FillConstant RuleKind = "constant"
	// FillDerive computes the value from another field of the same record
	// with the named Derivation.
	FillDerive RuleKind = "derive"
	// FillMostFrequent sets the most frequent observed value of the field
	// among records with the same GroupBy value (or among all records when
	// GroupBy is empty).
	FillMostFrequent RuleKind = "most_frequent"
)

// Derivations available to FillDerive rules.
const (
	DeriveGenderFromID     = "gender_from_id_card"     // male / female from the 17th digit
	DeriveBirthDateFromID  = "birth_date_from_id_card" // YYYY-MM-DD
	DeriveProvinceFromID   = "province_from_id_card"   // canonical province of the region code
	DeriveProvinceFromCity = "province_from_city"      // province of a known city
	// DeriveProvinceFromPhone uses libphonenumber's geocoding of mainland
	// number blocks: where the number was issued, a guess at best.
	DeriveProvinceFromPhone = "province_from_phone"
)

// FillRule declares how to fill one field when it is missing. Rules are
// plain data so that they can live in an import mapping file.
type FillRule struct {
	// Name identifies the rule in provenance; default "<kind>:<field>".
	Name  string   `json:"name,omitempty" yaml:"name,omitempty"`
	Field string   `json:"field" yaml:"field"`
	Kind  RuleKind `json:"kind" yaml:"kind"`
	// Value for FillConstant.
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
	// From and Derivation for FillDerive.
	From       string `json:"from,omitempty" yaml:"from,omitempty"`
	Derivation string `json:"derivation,omitempty" yaml:"derivation,omitempty"`
	// GroupBy for FillMostFrequent.
	GroupBy string `json:"group_by,omitempty" yaml:"group_by,omitempty"`
	// Region is the default phone region for DeriveProvinceFromPhone.
	Region string `json:"region,omitempty" yaml:"region,omitempty"`
}

func (r FillRule) name() string {
	if r.Name != "" {
		return r.Name
	}
	if r.Kind == FillDerive {
		return fmt.Sprintf("derive:%s:%s", r.Field, r.Derivation)
	}
	return fmt.Sprintf("%s:%s", r.Kind, r.Field)
}

// Imputation records one filled value.
type Imputation struct {
	Row   int    `json:"row"` // index into the records slice
	Field string `json:"field"`
	Value string `json:"value"`
	Rule  string `json:"rule"`
	// Source is the field the value was derived from or grouped by, if any.
	Source string `json:"source,omitempty"`
}

// Filler applies fill rules. Build one with NewFiller, which validates the
// rules once.
type Filler struct {
	rules []FillRule
}

// NewFiller validates rules and returns a Filler. Errors are EINVALID and
// name the offending rule.
func NewFiller(rules []FillRule) (*Filler, error) {
	for i, r := range rules {
		bad := func(format string, args ...any) error {
			e := portrait.Errorf(portrait.EINVALID, "fill rule %d (%s): "+format, append([]any{i + 1, r.name()}, args...)...)
			e.Details = []portrait.ErrorDetail{{Index: &i, Field: r.Field, Reason: e.Message}}
			return e
		}
		if strings.TrimSpace(r.Field) == "" {
			return nil, bad("field is required")
		}
		switch r.Kind {
		case FillConstant:
			if r.Value == "" {
				return nil, bad("a constant rule needs a value")
			}
		case FillDerive:
			if r.From == "" || r.From == r.Field {
				return nil, bad("a derive rule needs a from field other than the target")
			}
			switch r.Derivation {
			case DeriveGenderFromID, DeriveBirthDateFromID, DeriveProvinceFromID, DeriveProvinceFromCity, DeriveProvinceFromPhone:
			default:
				return nil, bad("unknown derivation %q", r.Derivation)
			}
		case FillMostFrequent:
			if r.GroupBy == r.Field {
				return nil, bad("cannot group by the field being filled")
			}
		default:
			return nil, bad("unknown kind %q (want constant, derive or most_frequent)", r.Kind)
		}
	}
	return &Filler{rules: append([]FillRule(nil), rules...)}, nil
}

func missing(rec map[string]string, f string) bool {
	return strings.TrimSpace(rec[f]) == ""
}

// Fill fills missing fields of records in place and returns what it
// filled, ordered by row and then by rule. Rules run in declared order, each
// over all records, so a later rule sees what earlier rules filled: a
// province derived from the ID number can group a most-frequent rule. A
// field that a rule filled is not touched by later rules. Most-frequent
// statistics count only observed values of the filled field, never imputed
// ones, so imputation does not feed on itself and the result does not depend
// on record order. A derivation whose source is missing or invalid leaves the
// field missing: a bad ID number must not invent a gender.
func (f *Filler) Fill(records []map[string]string) []Imputation {
	type filled struct {
		rule int
		imp  Imputation
	}
	var out []filled
	imputed := make([]map[string]bool, len(records))
	for i, r := range f.rules {
		var mode map[string]string
		if r.Kind == FillMostFrequent {
			mode = mostFrequent(records, imputed, r.Field, r.GroupBy)
		}
		for row, rec := range records {
			if !missing(rec, r.Field) {
				continue
			}
			var v, src string
			switch r.Kind {
			case FillConstant:
				v = r.Value
			case FillDerive:
				v, src = derive(r, rec), r.From
			case FillMostFrequent:
				src = r.GroupBy
				if r.GroupBy != "" && missing(rec, r.GroupBy) {
					continue
				}
				v = mode[groupKey(rec, r.GroupBy)]
			}
			if v == "" {
				continue
			}
			rec[r.Field] = v
			if imputed[row] == nil {
				imputed[row] = map[string]bool{}
			}
			imputed[row][r.Field] = true
			out = append(out, filled{i, Imputation{Row: row, Field: r.Field, Value: v, Rule: r.name(), Source: src}})
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].imp.Row != out[b].imp.Row {
			return out[a].imp.Row < out[b].imp.Row
		}
		return out[a].rule < out[b].rule
	})
	imps := make([]Imputation, len(out))
	for i, o := range out {
		imps[i] = o.imp
	}
	return imps
}

func groupKey(rec map[string]string, by string) string {
	if by == "" {
		return ""
	}
	return strings.TrimSpace(rec[by])
}

// mostFrequent returns, per group, the most frequent observed value of
// field; ties go to the lexically smallest value so that the result is
// reproducible.
func mostFrequent(records []map[string]string, imputed []map[string]bool, field, by string) map[string]string {
	counts := map[string]map[string]int{}
	for row, rec := range records {
		if missing(rec, field) || imputed[row][field] || (by != "" && missing(rec, by)) {
			continue
		}
		g := groupKey(rec, by)
		if counts[g] == nil {
			counts[g] = map[string]int{}
		}
		counts[g][strings.TrimSpace(rec[field])]++
	}
	out := make(map[string]string, len(counts))
	for g, c := range counts {
		vals := make([]string, 0, len(c))
		for v := range c {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		best := vals[0]
		for _, v := range vals[1:] {
			if c[v] > c[best] {
				best = v
			}
		}
		out[g] = best
	}
	return out
}

func derive(r FillRule, rec map[string]string) string {
	src := rec[r.From]
	if strings.TrimSpace(src) == "" {
		return ""
	}
	switch r.Derivation {
	case DeriveGenderFromID, DeriveBirthDateFromID, DeriveProvinceFromID:
		id, err := ParseIDCard(src)
		if err != nil {
			return ""
		}
		switch r.Derivation {
		case DeriveGenderFromID:
			return id.Gender
		case DeriveBirthDateFromID:
			return id.BirthDate()
		default:
			return id.Province
		}
	case DeriveProvinceFromCity:
		c, err := CityInfo(src)
		if err != nil {
			return ""
		}
		d, _ := ProvinceByCode(c.Province)
		return d.Name
	case DeriveProvinceFromPhone:
		p, err := PhoneProvince(src, r.Region)
		if err != nil {
			return ""
		}
		return p
	}
	return ""
}
