package clean_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/clean"
)

func TestProvince(t *testing.T) {
	for in, want := range map[string]string{
		"北京": "北京市", "北京市": "北京市", "Beijing": "北京市", "beijing": "北京市", "BEIJING": "北京市",
		" Beijing Shi ": "北京市", "Beijing Municipality": "北京市", "Peking": "北京市", "京": "北京市",
		"广东": "广东省", "广东省": "广东省", "Guangdong Province": "广东省", "guang dong": "广东省", "粤": "广东省",
		"广西": "广西壮族自治区", "广西壮族自治区": "广西壮族自治区", "Guangxi Zhuang Autonomous Region": "广西壮族自治区",
		"内蒙古": "内蒙古自治区", "Inner Mongolia": "内蒙古自治区", "Nei Mongol": "内蒙古自治区",
		"新疆维吾尔自治区": "新疆维吾尔自治区", "Xinjiang Uygur Autonomous Region": "新疆维吾尔自治区",
		"shanxi": "山西省", "Shaanxi": "陕西省", "陕西": "陕西省", "山西省": "山西省",
		"Tibet": "西藏自治区", "Xizang": "西藏自治区",
		"Hong Kong": "香港特别行政区", "HK": "香港特别行政区", "Hong Kong SAR": "香港特别行政区", "中国香港": "香港特别行政区",
		"Macau": "澳门特别行政区", "Macao": "澳门特别行政区", "澳門": "澳门特别行政区",
		"ＳＨＡＮＧＨＡＩ": "上海市", "沪": "上海市", "上海 市": "上海市",
		"Heilongjiang": "黑龙江省", "黑龙江省": "黑龙江省",
	} {
		got, err := clean.Province(in)
		if err != nil || got != want {
			t.Errorf("Province(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Atlantis", "北京路", "市", "省", "11", "New South Wales"} {
		got, err := clean.Province(in)
		if got != "" {
			t.Errorf("Province(%q) = %q, want rejection", in, got)
		}
		wantInvalid(t, "Province("+in+")", err)
	}
}

// Every division is reachable by each of its names, and the table is the
// 34 divisions with distinct codes.
func TestProvinceTable(t *testing.T) {
	if n := len(clean.Provinces); n != 34 {
		t.Fatalf("%d provincial-level divisions, want 34", n)
	}
	codes := map[string]bool{}
	for _, d := range clean.Provinces {
		if codes[d.Code] {
			t.Errorf("duplicate code %s", d.Code)
		}
		codes[d.Code] = true
		for _, n := range []string{d.Name, d.Short, d.Pinyin, d.English} {
			got, err := clean.Province(n)
			if err != nil || got != d.Name {
				t.Errorf("Province(%q) = %q, %v; want %q", n, got, err, d.Name)
			}
		}
		if got, ok := clean.ProvinceByCode(d.Code + "0105"); !ok || got.Name != d.Name {
			t.Errorf("ProvinceByCode(%s0105) = %v, %v", d.Code, got, ok)
		}
	}
	if names := clean.ProvinceNames(); len(names) != 34 || names[0] != "北京市" || names[33] != "澳门特别行政区" {
		t.Errorf("ProvinceNames() = %v", names)
	}
	if _, ok := clean.ProvinceByCode("9"); ok {
		t.Error("ProvinceByCode accepted a one-digit code")
	}
}

func TestCity(t *testing.T) {
	for _, tc := range []struct{ in, name, province string }{
		{"深圳", "深圳市", "44"},
		{"深圳市", "深圳市", "44"},
		{"Shenzhen", "深圳市", "44"},
		{"shen zhen", "深圳市", "44"},
		{"Shenzhen City", "深圳市", "44"},
		{"Canton", "广州市", "44"},
		{"Harbin", "哈尔滨市", "23"},
		{"Xi'an", "西安市", "61"},
		{"Urumqi", "乌鲁木齐市", "65"},
		{"北京", "北京市", "11"},
		{"厦门", "厦门市", "35"},
	} {
		c, err := clean.CityInfo(tc.in)
		if err != nil || c.Name != tc.name || c.Province != tc.province {
			t.Errorf("CityInfo(%q) = %+v, %v; want %s in %s", tc.in, c, err, tc.name, tc.province)
		}
	}
	for _, c := range clean.Cities {
		if _, ok := clean.ProvinceByCode(c.Province); !ok {
			t.Errorf("city %s has unknown province code %s", c.Name, c.Province)
		}
		if got, err := clean.CityName(c.Pinyin); err != nil || got != c.Name {
			t.Errorf("CityName(%q) = %q, %v; want %q (pinyin collides with another city?)", c.Pinyin, got, err, c.Name)
		}
	}
	for _, in := range []string{"", "Springfield", "市"} {
		_, err := clean.CityName(in)
		wantInvalid(t, "CityName("+in+")", err)
	}
}
