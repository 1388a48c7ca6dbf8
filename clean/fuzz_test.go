package clean_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// Every standardizer must: never panic, either accept or return EINVALID,
// and be idempotent — cleaning a cleaned value changes nothing. Idempotence
// is what lets re-imports and replays leave profiles unchanged.

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && portrait.ErrorCode(err) != portrait.EINVALID {
		t.Fatalf("error with code %q: %v", portrait.ErrorCode(err), err)
	}
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"１３８ ００１３ ８０００", "+86 138-0013-8000", "(010) 8555 1234", "+1 650 253 0000", "0086", "++", "1380013800０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := clean.Phone(in, "CN")
		checkErr(t, err)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "+") || len(out) > 16 {
			t.Fatalf("Phone(%q) = %q is not E.164", in, out)
		}
		if again, err := clean.Phone(out, "US"); err != nil || again != out {
			t.Fatalf("Phone(%q) = %q, but Phone(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{" Zhang.San@Example.COM ", "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a@b", "\"a\"@b.c", "a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := clean.Email(in)
		checkErr(t, err)
		if err != nil {
			return
		}
		if strings.Count(out, "@") != 1 || strings.ContainsAny(out, " \t\n") || out != strings.ToLower(out) {
			t.Fatalf("Email(%q) = %q", in, out)
		}
		if again, err := clean.Email(out); err != nil || again != out {
			t.Fatalf("Email(%q) = %q, but Email(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"  ＡＢＣ　１２３  ", "张 三", "ｶﾀｶﾅ", "a\u200bb", "①", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := clean.Text(in)
		checkErr(t, err)
		if err != nil {
			return
		}
		if !utf8.ValidString(out) || strings.Contains(out, "  ") || strings.TrimSpace(out) != out {
			t.Fatalf("Text(%q) = %q", in, out)
		}
		if again, _ := clean.Text(out); again != out {
			t.Fatalf("Text not idempotent: %q → %q → %q", in, out, again)
		}
		if n, err := clean.Name(in); err == nil {
			if again, err := clean.Name(n); err != nil || again != n {
				t.Fatalf("Name not idempotent: %q → %q → %q, %v", in, n, again, err)
			}
		}
		_ = clean.Pinyin(in)
	})
}

func FuzzIDCard(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110105491231002", "440524188001010014", "１１０１０５１９４９１２３１００２ｘ", "000000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := clean.ParseIDCard(in)
		checkErr(t, err)
		if err != nil {
			return
		}
		if len(c.Number) != 18 || c.Province == "" || (c.Gender != "male" && c.Gender != "female") {
			t.Fatalf("ParseIDCard(%q) = %+v", in, c)
		}
		again, err := clean.ParseIDCard(c.Number)
		if err != nil || again.Number != c.Number || again.BirthDate() != c.BirthDate() || again.Gender != c.Gender {
			t.Fatalf("ParseIDCard(%q) = %+v, reparsed %+v, %v", in, c, again, err)
		}
	})
}

func FuzzUSCC(f *testing.F) {
	for _, s := range []string{"91350100M000100Y43", "91350100m000100y43", "91350100I000100Y43", "ｉ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := clean.USCC(in)
		checkErr(t, err)
		if err != nil {
			return
		}
		if len(out) != 18 || strings.ContainsAny(out, "IOZSV") {
			t.Fatalf("USCC(%q) = %q", in, out)
		}
		if again, err := clean.USCC(out); err != nil || again != out {
			t.Fatalf("USCC not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
	})
}

func FuzzDate(f *testing.F) {
	for _, s := range []string{"2024-03-05", "2024/3/5", "20240305", "2024年3月5日", "05/03/2024", "2024-03-05T14:30:00+08:00", "45356", "60"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, dayFirst bool) {
		opt := clean.DateOptions{DayFirst: dayFirst, ExcelSerial: true}
		out, err := clean.Date(in, opt)
		checkErr(t, err)
		if err != nil {
			return
		}
		// ISO output reads back to itself under any options.
		if again, err := clean.Date(out, clean.DateOptions{DayFirst: !dayFirst}); err != nil || again != out {
			t.Fatalf("Date(%q) = %q, but Date(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

func FuzzProvince(f *testing.F) {
	for _, s := range []string{"北京", "Beijing Shi", "Guangxi Zhuang Autonomous Region", "HK", "市"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := clean.Province(in)
		checkErr(t, err)
		if err == nil {
			if again, err := clean.Province(out); err != nil || again != out {
				t.Fatalf("Province not idempotent: %q → %q → %q", in, out, again)
			}
		}
		if c, err := clean.CityInfo(in); err == nil {
			if _, ok := clean.ProvinceByCode(c.Province); !ok {
				t.Fatalf("CityInfo(%q) has no province", in)
			}
		} else {
			checkErr(t, err)
		}
	})
}
