// Package linkage finds records that describe the same real-world entity when
// they share no identifier: blocking to keep the number of compared pairs
// small, field comparators with a few agreement levels, Fellegi-Sunter match
// weights learned without labels by expectation-maximisation, a match threshold
// with a review band below it, and transitive grouping of matches into
// entities.
//
// The API is generic on purpose: a Record is a map from field name to string
// and field kinds are declared or inferred from column names. Nothing here
// knows about any particular file, data set or identifier column.
package linkage

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Record is one input row: field name → raw value. An empty value is missing.
type Record map[string]string

// Kind tells the linker how to compare and block on a field.
type Kind int

const (
	// KindIgnore fields are carried but never compared.
	KindIgnore Kind = iota
	// KindName is a person-name part (given name, surname, full name). Name
	// fields are compared with Jaro-Winkler and also against each other, since
	// given name and surname are often swapped at data entry.
	KindName
	// KindText is free text compared with Jaro-Winkler (city, suburb, company).
	KindText
	// KindAddress is a street address compared as a set of tokens, so that word
	// order and a missing "street"/"st" does not break agreement.
	KindAddress
	// KindDate is a date compared digit-wise after normalisation to YYYYMMDD,
	// tolerating one typo and a swapped day and month.
	KindDate
	// KindCode is a short code typed by hand (postcode, house number): exact,
	// one-edit typo, or different.
	KindCode
	// KindID is an identifier-like value (national id, phone, email, account
	// number): exact, one-edit typo, or different. It is a strong blocking key.
	KindID
	// KindCategory is a small closed set (state, gender): equal or not.
	KindCategory
)

var kindNames = [...]string{"ignore", "name", "text", "address", "date", "code", "id", "category"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if strings.EqualFold(s, n) {
			return Kind(i), true
		}
	}
	return KindIgnore, false
}

// Field declares how one field of the records is compared.
type Field struct {
	Name string
	Kind Kind
}

// nameRules map column-name fragments to kinds. They are checked in order and
// the first hit wins, so the more specific fragments come first ("postcode"
// before "code", "street_number" before "street", "birth" before "date").
var nameRules = []struct {
	frags []string
	kind  Kind
}{
	{[]string{"email", "e_mail", "mail", "邮箱"}, KindID},
	{[]string{"phone", "mobile", "telephone", "tel_", "_tel", "cell", "手机", "电话"}, KindID},
	{[]string{"soc_sec", "ssn", "social", "id_card", "idcard", "id_number", "passport", "national_id", "license", "licence", "身份证", "证件", "uscc", "credit_code", "信用代码"}, KindID},
	{[]string{"birth", "dob", "生日", "出生"}, KindDate},
	{[]string{"postcode", "post_code", "postal", "zip", "邮编", "邮政"}, KindCode},
	{[]string{"street_number", "street_no", "house_number", "house_no", "building_number", "门牌"}, KindCode},
	{[]string{"company", "employer", "organisation", "organization", "公司", "企业", "单位"}, KindText},
	{[]string{"given", "first_name", "firstname", "fname", "forename", "middle", "surname", "last_name", "lastname", "lname", "family", "full_name", "fullname", "姓", "名"}, KindName},
	{[]string{"address", "addr", "street", "road", "地址", "街道"}, KindAddress},
	{[]string{"state", "province", "gender", "sex", "region", "country", "省", "性别"}, KindCategory},
	{[]string{"suburb", "city", "town", "locality", "district", "county", "occupation", "市", "区", "县"}, KindText},
	{[]string{"date", "日期"}, KindDate},
	{[]string{"name"}, KindName},
}

// InferKind guesses a field's kind from its column name. Names are matched
// case-insensitively with spaces, dashes and dots folded to underscores.
// Unknown names are compared as text, the safest general choice.
func InferKind(column string) Kind {
	c := strings.ToLower(strings.TrimSpace(column))
	c = strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(c)
	if c == "tel" { // too short a fragment to search for inside other names (hotel)
		return KindID
	}
	for _, r := range nameRules {
		for _, f := range r.frags {
			if strings.Contains(c, f) {
				return r.kind
			}
		}
	}
	return KindText
}

// InferFields declares every column with its inferred kind, skipping the
// columns listed in exclude (for example a record-id column that must not be
// compared).
func InferFields(columns []string, exclude ...string) []Field {
	skip := make(map[string]bool, len(exclude))
	for _, e := range exclude {
		skip[e] = true
	}
	var out []Field
	for _, c := range columns {
		if skip[c] {
			continue
		}
		out = append(out, Field{Name: c, Kind: InferKind(c)})
	}
	return out
}

// normalize folds a raw value to the form comparisons work on: NFKC,
// full-width to half-width, lower case, punctuation other than what separates
// words turned into spaces, whitespace collapsed. Chinese characters pass
// through unchanged.
func normalize(s string) string {
	s = width.Fold.String(norm.NFKC.String(s))
	var b strings.Builder
	b.Grow(len(s))
	space := true // drop leading spaces
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
			space = false
		case r == '\'' || r == '’':
			// O'Brien and OBrien are the same name.
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// digitsOnly keeps the digits of s; codes and ids are compared on their
// digits and letters only, so "4011" and "40 11" or "123-456" agree.
func alnumOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
