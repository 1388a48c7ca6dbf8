package clean_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/clean"
)

// leaks reports a run of 4 or more characters of raw (or of its digits
// alone) found in reason: a part of the value.
func leaks(reason, raw string) string {
	var digits strings.Builder
	for _, r := range raw {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	for _, v := range []string{strings.ToLower(raw), digits.String()} {
		rs := []rune(v)
		for i := 0; i+4 <= len(rs); i++ {
			if part := string(rs[i : i+4]); strings.TrimSpace(part) == part && strings.Contains(strings.ToLower(reason), part) {
				return part
			}
		}
	}
	return ""
}

// TestReasonsNameNoValue: every rule of the standardizers refusing a value
// of a secret or confidential trait (ID numbers, phones, emails, birth
// dates, credit codes) is said by clean.Reason with the trait, the kind
// and the rule, and no part of the value: not the value quoted, not the
// expected check character, the region code or the birth date of an ID
// number, an email's domain, a phone's location, a date's numbers. The
// error's message still quotes the value (for a caller shown it anyway).
func TestReasonsNameNoValue(t *testing.T) {
	s := clean.DefaultTraitStandardizer()
	s.Kinds["salary_code"] = clean.KindIDCard // a custom trait of a kind
	cases := []struct {
		trait string
		value any
		rule  string // a part of the rule the reason must say
	}{
		{"id_number", "110101199003071234", "check character"},
		{"id_number", "110101199002301236", "birth date"},
		{"id_number", "990101199003071237", "region code"},
		{"id_number", "11010119900307123", "18 characters"},
		{"id_number", "1101011990030712A3", "must be a digit"},
		{"id_number", "11010119900307123Y", "check character"},
		{"id_card", "11010A900307123", "15-digit"},
		{"salary_code", "370102198808174561", "check character"},
		{"id_number", 110101199003.5, "fraction"},
		{"id_number", []any{"110101199003071233"}, "must be text"},
		{"credit_code", "914403001922038217", "check character"},
		{"credit_code", "I14403001922038216", "character 1"},
		{"uscc", "Z91440300192203821", "not allowed"},
		{"uscc", "91440300192203821", "18 characters"},
		{"email", "zhang.wei.secret@qqxyzzy", "domain"},
		{"email", "zhang.wei.secret@-host.example", "hyphen"},
		{"email", "zhang.wei.secret@bad!x.example", "character"},
		{"email", "zhang wei@example.com", "space"},
		{"email", "zhang.wei.secret.example.com", "@"},
		{"phone", "1380013", "not a valid number"},
		{"phone", "+86 10 1234 5678 9999 8888", "long"},
		{"birthday", "1990-02-30", "no such day"},
		{"birthday", "19/23/1990", "month"},
		{"birthday", "1990x03y07", "character"},
		{"name", "Zhang 1990", "digits"},
		{"gender", "unknown-5123", "gender"},
	}
	for _, c := range cases {
		_, err := s.Standardize(c.trait, c.value)
		if err == nil {
			t.Errorf("%s %v: accepted", c.trait, c.value)
			continue
		}
		raw := fmt.Sprint(c.value)
		r := clean.Reason(c.trait, err)
		if !strings.HasPrefix(r, c.trait+" (") && !strings.HasPrefix(r, c.trait+": ") {
			t.Errorf("%s %v: the reason %q does not name the trait", c.trait, c.value, r)
		}
		if !strings.Contains(r, c.rule) {
			t.Errorf("%s %v: the reason %q does not say the rule (%s)", c.trait, c.value, r, c.rule)
		}
		if part := leaks(r, raw); part != "" {
			t.Errorf("%s %v: the reason %q holds %q of the value", c.trait, c.value, r, part)
		}
	}
	// An error from elsewhere (its message may quote anything): only that
	// the value was refused.
	if r := clean.Reason("id_number", errString(`id_number "110101199003071234" is odd`)); strings.Contains(r, "1101") || !strings.HasPrefix(r, "id_number: ") {
		t.Errorf("a foreign error: %q", r)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
