package clean_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// wantInvalid checks that err is the EINVALID error every standardizer
// returns, with a reason a report can show.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var pe *portrait.Error
	if !errors.As(err, &pe) || pe.Code != portrait.EINVALID || pe.Message == "" || len(pe.Details) != 1 {
		t.Errorf("%s: err = %#v, want *portrait.Error with code invalid and one detail", what, err)
	}
}

func TestPhone(t *testing.T) {
	for _, tc := range []struct{ in, region, want string }{
		{"１３８ ００１３ ８０００", "CN", "+8613800138000"},
		{"138 0013 8000", "", "+8613800138000"},
		{"+86 138-0013-8000", "CN", "+8613800138000"},
		{"0086 13800138000", "CN", "+8613800138000"},
		{"+86(138)00138000", "US", "+8613800138000"},
		{"＋８６（１３８）００１３８０００", "CN", "+8613800138000"},
		{"86-138-0013-8000", "CN", "+8613800138000"},
		{"(010) 8555 1234", "CN", "+861085551234"},
		{"021-55551234", "cn", "+862155551234"},
		{"+1 (650) 253-0000", "CN", "+16502530000"},
		{"650-253-0000", "US", "+16502530000"},
		{"9123 4567", "HK", "+85291234567"},
	} {
		got, err := clean.Phone(tc.in, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("Phone(%q, %q) = %q, %v; want %q", tc.in, tc.region, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, region string }{
		{"12345", "CN"},
		{"abc", "CN"},
		{"", "CN"},
		{"1380013800", "CN"},     // one digit short
		{"23800138000", "CN"},    // no such mobile prefix
		{"13800138000", "XX"},    // unknown region
		{"+999 1234 5678", "CN"}, // unassigned country code
		{strings.Repeat("1", 100), "CN"},
	} {
		got, err := clean.Phone(tc.in, tc.region)
		if got != "" {
			t.Errorf("Phone(%q, %q) = %q, want rejection", tc.in, tc.region, got)
		}
		wantInvalid(t, "Phone("+tc.in+")", err)
	}
}

func TestPhoneProvince(t *testing.T) {
	for in, want := range map[string]string{
		"13800138000":    "北京市",
		"+8613912345678": "江苏省",
		"021-55551234":   "上海市",
	} {
		got, err := clean.PhoneProvince(in, "CN")
		if err != nil || got != want {
			t.Errorf("PhoneProvince(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := clean.PhoneProvince("+16502530000", "CN")
	wantInvalid(t, "PhoneProvince(US number)", err)
}

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		" Zhang.San@Example.COM ":   "zhang.san@example.com",
		"ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ":         "zhang@example.com",
		"mailto:li.si@qq.com":       "li.si@qq.com",
		"wang+crm@mail.sina.com.cn": "wang+crm@mail.sina.com.cn",
		"o'brien@example.ie":        "o'brien@example.ie",
	} {
		got, err := clean.Email(in)
		if err != nil || got != want {
			t.Errorf("Email(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "zhang san@example.com", "a@@b.com", "a@b@c.com", "zhang.san", "a@b", "@b.com",
		"a@b..com", "a@-b.com", "a@b.com.", "a@.com", "a@b .com", "a@b,com", "Zhang <z@example.com>",
		"\"a b\"@example.com", strings.Repeat("a", 65) + "@example.com",
	} {
		got, err := clean.Email(in)
		if got != "" {
			t.Errorf("Email(%q) = %q, want rejection", in, got)
		}
		wantInvalid(t, "Email("+in+")", err)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"  ＡＢＣ　１２３  ":      "ABC 123",
		"Ｚｈａｎｇ  Ｓａｎ":       "Zhang San",
		"a\t\n b":          "a b",
		"北京市　朝阳区\u200b建国路": "北京市 朝阳区建国路",
		"ｶﾀｶﾅ":             "カタカナ", // half-width katakana widen; CJK is never narrowed
		"①号楼":              "1号楼",
		"ﬁle":              "file",
		"":                 "",
	} {
		got, err := clean.Text(in)
		if err != nil || got != want {
			t.Errorf("Text(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := clean.Text("bad \xff byte")
	wantInvalid(t, "Text(invalid UTF-8)", err)
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"张 三":          "张三",
		" 欧阳　娜娜 ":      "欧阳娜娜",
		" Zhang  San ": "Zhang San",
		"阿依古丽•买买提":     "阿依古丽·买买提",
		"O'Brien":      "O'Brien",
	} {
		got, err := clean.Name(in)
		if err != nil || got != want {
			t.Errorf("Name(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "123", "张3", "--"} {
		_, err := clean.Name(in)
		wantInvalid(t, "Name("+in+")", err)
	}
}

func TestPinyin(t *testing.T) {
	for in, want := range map[string]string{
		"张三":        "zhang san",
		"欧阳娜娜":      "ou yang na na",
		"李Lily":     "li lily",
		"王 小明":      "wang xiao ming",
		"Zhang San": "zhang san",
		"":          "",
	} {
		if got := clean.Pinyin(in); got != want {
			t.Errorf("Pinyin(%q) = %q, want %q", in, got, want)
		}
	}
}
