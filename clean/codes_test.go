package clean_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/clean"
)

// idWithCheck appends the MOD 11-2 check character, computed here
// independently of the package (weights 2^(17-i) mod 11).
func idWithCheck(d17 string) string {
	sum := 0
	for i := range 17 {
		w := 1
		for range 17 - i {
			w = w * 2 % 11
		}
		sum += int(d17[i]-'0') * w
	}
	return d17 + string("10X98765432"[sum%11])
}

func TestParseIDCard(t *testing.T) {
	for _, tc := range []struct {
		in, number, birth, gender, province string
		upgraded                            bool
	}{
		// The example of GB 11643-1999 itself.
		{"11010519491231002X", "11010519491231002X", "1949-12-31", "female", "北京市", false},
		{"11010519491231002x", "11010519491231002X", "1949-12-31", "female", "北京市", false},
		{"１１０１０５ １９４９１２３１ ００２Ｘ", "11010519491231002X", "1949-12-31", "female", "北京市", false},
		{"440524188001010014", "440524188001010014", "1880-01-01", "male", "广东省", false},
		{"110105491231002", "11010519491231002X", "1949-12-31", "female", "北京市", true},
		{idWithCheck("32010620000229123"), idWithCheck("32010620000229123"), "2000-02-29", "male", "江苏省", false},
		{idWithCheck("65010119851111331"), idWithCheck("65010119851111331"), "1985-11-11", "male", "新疆维吾尔自治区", false},
	} {
		c, err := clean.ParseIDCard(tc.in)
		if err != nil {
			t.Errorf("ParseIDCard(%q): %v", tc.in, err)
			continue
		}
		if c.Number != tc.number || c.BirthDate() != tc.birth || c.Gender != tc.gender || c.Province != tc.province || c.Upgraded != tc.upgraded || c.Region != tc.number[:6] {
			t.Errorf("ParseIDCard(%q) = %+v, want number %s birth %s gender %s province %s upgraded %v",
				tc.in, c, tc.number, tc.birth, tc.gender, tc.province, tc.upgraded)
		}
	}
	for what, in := range map[string]string{
		"wrong check":           "110105194912310021",
		"too short":             "11010519491231002",
		"too long":              "11010519491231002X1",
		"letter inside":         "1101051949123100AX",
		"check not digit or X":  "11010519491231002Y",
		"no such date":          idWithCheck("32010619900229123"),
		"month 13":              idWithCheck("32010619901301123"),
		"unknown province":      idWithCheck("99010519491231002"),
		"15 digits with letter": "11010549123100X",
		"15 digits bad date":    "110105491331002",
		"empty":                 "",
	} {
		c, err := clean.ParseIDCard(in)
		if c.Number != "" {
			t.Errorf("%s: ParseIDCard(%q) = %+v, want rejection", what, in, c)
		}
		wantInvalid(t, what, err)
	}
}

// usccWithCheck appends the GB 32100 check character, computed here
// independently of the package (weights 3^i mod 31).
func usccWithCheck(s17 string) string {
	const alpha = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	sum := 0
	for i := range 17 {
		w := 1
		for range i {
			w = w * 3 % 31
		}
		sum += strings.IndexByte(alpha, s17[i]) * w
	}
	return s17 + string(alpha[(31-sum%31)%31])
}

func TestUSCC(t *testing.T) {
	for in, want := range map[string]string{
		"91350100M000100Y43": "91350100M000100Y43", // the example printed in most guides
		"91350100m000100y43": "91350100M000100Y43",
		"９１３５０１００Ｍ０００１００Ｙ４３":               "91350100M000100Y43",
		"9135 0100 M000 100Y 43":           "91350100M000100Y43",
		usccWithCheck("91110108MA01KPMX7"): usccWithCheck("91110108MA01KPMX7"),
		usccWithCheck("12100000400000624"): usccWithCheck("12100000400000624"),
	} {
		got, err := clean.USCC(in)
		if err != nil || got != want {
			t.Errorf("USCC(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for what, in := range map[string]string{
		"wrong check":          "91350100M000100Y44",
		"letter I":             "91350100I000100Y43",
		"letter O":             "91350100O000100Y43",
		"letter S as check":    "91350100M000100Y4S",
		"17 characters":        "91350100M000100Y4",
		"region not digits":    usccWithCheck("913A0100M000100Y4"),
		"unassigned authority": usccWithCheck("J1350100M000100Y4"),
		"empty":                "",
	} {
		got, err := clean.USCC(in)
		if got != "" {
			t.Errorf("%s: USCC(%q) = %q, want rejection", what, in, got)
		}
		wantInvalid(t, what, err)
	}
}

func TestDate(t *testing.T) {
	dayFirst := clean.DateOptions{DayFirst: true}
	monthFirst := clean.DateOptions{}
	excel := clean.DateOptions{ExcelSerial: true}
	for _, tc := range []struct {
		in   string
		opt  clean.DateOptions
		want string
	}{
		{"2024-03-05", monthFirst, "2024-03-05"},
		{"2024/3/5", monthFirst, "2024-03-05"},
		{"2024.03.05", monthFirst, "2024-03-05"},
		{"20240305", monthFirst, "2024-03-05"},
		{"2024年3月5日", monthFirst, "2024-03-05"},
		{"２０２４年３月５日", monthFirst, "2024-03-05"},
		{" 2024-3-5 ", monthFirst, "2024-03-05"},
		{"05/03/2024", dayFirst, "2024-03-05"},
		{"05/03/2024", monthFirst, "2024-05-03"},
		{"25/12/2024", monthFirst, "2024-12-25"},
		{"12/25/2024", dayFirst, "2024-12-25"},
		{"29/2/2024", dayFirst, "2024-02-29"},
		{"2024-03-05T14:30:00+08:00", monthFirst, "2024-03-05T14:30:00+08:00"},
		{"2024-03-05T06:30:00.5Z", monthFirst, "2024-03-05T06:30:00.5Z"},
		{"2024-03-05 14:30:00", monthFirst, "2024-03-05T14:30:00"},
		{"2024/3/5 14:30", monthFirst, "2024-03-05T14:30:00"},
		{"45356", excel, "2024-03-05"},
		{"45356.75", excel, "2024-03-05"},
		{"1", excel, "1900-01-01"},
		{"59", excel, "1900-02-28"},
		{"61", excel, "1900-03-01"},
		{"20240305", excel, "2024-03-05"}, // eight digits are never a serial
	} {
		got, err := clean.Date(tc.in, tc.opt)
		if err != nil || got != tc.want {
			t.Errorf("Date(%q, %+v) = %q, %v; want %q", tc.in, tc.opt, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in  string
		opt clean.DateOptions
	}{
		{"", monthFirst},
		{"2023-02-29", monthFirst},
		{"2024-13-01", monthFirst},
		{"13/13/2024", dayFirst},
		{"31/04/2024", dayFirst},
		{"March 5, 2024", monthFirst},
		{"45356", monthFirst}, // a bare number is a serial only when asked
		{"60", excel},         // Excel's phantom 1900-02-29
		{"0", excel},
		{"2024-03", monthFirst},
		{"24-03-05", monthFirst}, // two-digit years are ambiguous
	} {
		got, err := clean.Date(tc.in, tc.opt)
		if got != "" {
			t.Errorf("Date(%q, %+v) = %q, want rejection", tc.in, tc.opt, got)
		}
		wantInvalid(t, "Date("+tc.in+")", err)
	}
	// The output of a date-only input parses as a date.
	if got, _ := clean.Date("2024年3月5日", monthFirst); got != "" {
		if _, err := time.Parse(time.DateOnly, got); err != nil {
			t.Error(err)
		}
	}
}
