package clean

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// DefaultRegion is the region assumed for phone numbers written without a
// country code when the caller gives none.
const DefaultRegion = "CN"

// Phone parses a phone number as people write it — full-width digits,
// spaces, dashes, brackets, a leading 0086 or +86, an extension — and returns
// it in E.164 (+8613800138000). Numbers without a country code are read in
// region (ISO 3166 alpha-2, "" means DefaultRegion). The number must be
// valid for its region according to libphonenumber's metadata, which catches
// wrong lengths and unassigned prefixes, not only non-digits.
func Phone(raw, region string) (string, error) {
	p, err := parsePhone(raw, region)
	if err != nil {
		return "", err
	}
	return phonenumbers.Format(p, phonenumbers.E164), nil
}

func parsePhone(raw, region string) (*phonenumbers.PhoneNumber, error) {
	if region == "" {
		region = DefaultRegion
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return nil, invalid("phone", raw, "unknown default region %q", region)
	}
	// libphonenumber does accept some full-width digits, but not full-width
	// punctuation such as "（" or "＋", so fold everything first.
	s := width.Fold.String(norm.NFKC.String(raw))
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, invalid("phone", raw, "empty")
	}
	digits := 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			digits++
		}
	}
	if digits < 3 {
		return nil, invalid("phone", raw, "too few digits")
	}
	if len(s) > 64 {
		return nil, invalid("phone", raw, "too long")
	}
	p, err := phonenumbers.Parse(s, region)
	if err != nil {
		return nil, invalid("phone", raw, "not a phone number (%v)", err)
	}
	if !phonenumbers.IsValidNumber(p) {
		return nil, invalid("phone", raw, "not a valid number for region %s", regionOf(p, region))
	}
	return p, nil
}

func regionOf(p *phonenumbers.PhoneNumber, fallback string) string {
	if r := phonenumbers.GetRegionCodeForNumber(p); r != "" && r != "ZZ" {
		return r
	}
	return fallback
}

// PhoneProvince returns the canonical Chinese province of a mainland China
// number from libphonenumber's offline geocoding data, which maps mobile
// number blocks (e.g. +86 139 1234) and landline area codes to the province
// and city where the block was issued. This is where the number was
// registered, not where the customer lives, and number portability makes it
// a guess: callers should mark the value as imputed. The error is EINVALID
// when the number is not a mainland number or the data has no province for
// it.
func PhoneProvince(raw, region string) (string, error) {
	p, err := parsePhone(raw, region)
	if err != nil {
		return "", err
	}
	if p.GetCountryCode() != 86 {
		return "", invalid("phone", raw, "not a mainland China number, no province")
	}
	loc, err := phonenumbers.GetGeocodingForNumber(p, "zh")
	if err != nil || loc == "" {
		return "", invalid("phone", raw, "no location data for this number")
	}
	if prov, ok := provinceByPrefix(loc); ok {
		return prov.Name, nil
	}
	return "", invalid("phone", raw, "its location names no province")
}
