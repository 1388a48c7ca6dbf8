package linkage

import (
	"math"
	"testing"
)

func TestJaroWinkler(t *testing.T) {
	// Reference values from Winkler (1990) and the usual textbook examples.
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"martha", "marhta", 0.9611},
		{"dwayne", "duane", 0.84},
		{"dixon", "dicksonx", 0.8133},
		{"jones", "johnson", 0.8323},
		{"abc", "abc", 1},
		{"abc", "xyz", 0},
		{"", "abc", 0},
		{"张三", "张三丰", 0.9111},
	} {
		got := jaroWinkler([]rune(tc.a), []rune(tc.b))
		if math.Abs(got-tc.want) > 1e-3 {
			t.Errorf("jaroWinkler(%q, %q) = %.4f, want %.4f", tc.a, tc.b, got, tc.want)
		}
		if back := jaroWinkler([]rune(tc.b), []rune(tc.a)); math.Abs(back-got) > 1e-12 {
			t.Errorf("jaroWinkler not symmetric for %q/%q: %v vs %v", tc.a, tc.b, got, back)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"19081209", "19081209", 0},
		{"19081209", "19081290", 1}, // transposition
		{"4011", "4017", 1},
		{"4011", "411", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"ca", "abc", 3}, // OSA, not full Damerau: no edit of a transposed pair
	} {
		if got := editDistance([]rune(tc.a), []rune(tc.b)); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSoundex(t *testing.T) {
	for in, want := range map[string]string{
		"robert": "r163", "rupert": "r163", "ashcraft": "a261", "tymczak": "t522",
		"pfister": "p236", "honeyman": "h555", "lee": "l000", "张三": "张三", "": "",
	} {
		if got := soundex(in); got != want {
			t.Errorf("soundex(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeDate(t *testing.T) {
	for in, want := range map[string]string{
		"19081209":   "19081209",
		"1908-12-09": "19081209",
		"1908/12/9":  "19081209",
		"9/12/1908":  "19081209",
		"１９０８年１２月９日": "19081209",
		"1908":       "1908",
	} {
		if got := normalizeDate(in); got != want {
			t.Errorf("normalizeDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComparators(t *testing.T) {
	lv := func(k Kind, a, b string) int {
		x, y := prepare(k, a), prepare(k, b)
		return comparatorFor(k).compare(&x, &y)
	}
	for _, tc := range []struct {
		kind Kind
		a, b string
		want int
	}{
		{KindName, "Kayla", "kayla", 0},
		{KindName, "harrington", "harringtom", 1},
		{KindName, "maribanne", "marianne", 1},
		{KindName, "jon", "john", 2},
		{KindName, "kayla", "joshua", 3},
		{KindDate, "19150612", "19150612", 0},
		{KindDate, "19150612", "19151206", 1}, // day and month swapped
		{KindDate, "19150612", "19150613", 1},
		{KindDate, "19150612", "19150625", 2}, // same year and month
		{KindDate, "19150612", "19840101", 3},
		{KindCode, "3465", "3465", 0},
		{KindCode, "3465", "3456", 1},
		{KindCode, "3465", "2068", 2},
		{KindAddress, "maltby circuit", "Maltby  Circuit", 0},
		{KindAddress, "maltby circuit", "circuit maltby", 1},
		{KindAddress, "maltby circuit", "maltbz circuit", 1},
		{KindAddress, "maltby circuit", "maltby street", 2},
		{KindAddress, "maltby circuit", "giblin street", 3},
		{KindCategory, "nsw", "NSW", 0},
		{KindCategory, "nsw", "vic", 1},
	} {
		if got := lv(tc.kind, tc.a, tc.b); got != tc.want {
			t.Errorf("%v %q vs %q: level %d, want %d", tc.kind, tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSwappedNamesAgree(t *testing.T) {
	fields := []Field{{"given_name", KindName}, {"surname", KindName}}
	recs := []Record{
		{"given_name": "marianne", "surname": "rees"},
		{"given_name": "rees", "surname": "maribanne"},
	}
	vals := make([][]value, len(recs))
	for i, r := range recs {
		for _, f := range fields {
			vals[i] = append(vals[i], prepare(f.Kind, r[f.Name]))
		}
	}
	c := newComparer(fields, vals)
	out := make([]int8, 2)
	c.compare(0, 1, out)
	if out[0] > 2 || out[1] != 0 {
		t.Errorf("swapped names compared as %v, want given ≤ 2 and surname 0", out)
	}
	back := make([]int8, 2)
	c.compare(1, 0, back)
	if back[0] != out[0] || back[1] != out[1] {
		// The comparison must not depend on which record comes first.
		t.Errorf("compare(1,0) = %v, compare(0,1) = %v", back, out)
	}
}

func TestChineseNameLevels(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"朱秀英", "朱秀英", 0},
		{"朱秀英", "Zhu Xiuying", 1}, // pinyin
		{"朱秀英", "Xiuying Zhu", 1}, // Western order
		{"朱秀英", "ＺＨＵ　Ｘｉｕｙｉｎｇ", 1}, // full width
		{"张伟", "张玮", 1},           // homophone from the input method
		{"张伟", "张 伟", 1},          // a typed space
		{"朱秀英", "Zhu Xiuyin", 2},  // a typo in the pinyin
		{"张伟", "张文", 3},           // zhangwei / zhangwen: another person
		{"张伟", "王伟", 3},
		{"朱秀英", "朱涛", 3},
		{"欧阳娜娜", "Ouyang Nana", 1}, // compound surname
		{"martha", "marhta", 1},    // Latin names keep Jaro-Winkler
	} {
		a, b := prepare(KindName, tc.a), prepare(KindName, tc.b)
		if got := (nameComparator{}).compare(&a, &b); got != tc.want {
			t.Errorf("%q vs %q: level %d, want %d (keys %q %q)", tc.a, tc.b, got, tc.want, a.pykey, b.pykey)
		}
	}
}

func TestMobileCountryCodeDropped(t *testing.T) {
	want := prepare(KindID, "13812345678").s
	for _, raw := range []string{"+86 138 1234 5678", "0086-138-1234-5678", "８６１３８１２３４５６７８", "(+86) 138.1234.5678"} {
		if got := prepare(KindID, raw).s; got != want {
			t.Errorf("%q → %q, want %q", raw, got, want)
		}
	}
	if got := prepare(KindID, "1234567").s; got != "1234567" {
		t.Errorf("a short id changed: %q", got)
	}
}

func TestTermFrequencyAdjustment(t *testing.T) {
	var vals []string
	for range 50 {
		vals = append(vals, "王芳")
	}
	vals = append(vals, "欧阳若曦", "欧阳若曦", "李娜", "李娜", "李娜", "")
	tt := newTFTable(vals)
	common, rare := tt.adj["王芳"], tt.adj["欧阳若曦"]
	if !(common < 0.5 && rare > 3) {
		t.Errorf("adjustments: common name %.2f bits, rare name %.2f bits; want common ≈ 0 or below, rare strongly positive", common, rare)
	}
	if _, ok := tt.adj["李"]; ok {
		t.Error("a value never seen has an adjustment")
	}
	if a := newTFTable([]string{"a", "b", "c"}).adj; len(a) != 0 {
		t.Errorf("values held once cannot agree, got %v", a)
	}
}

func TestNumberedMailboxesDiffer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"Wang.Fang@QQ.com", " wang.fang@qq.com ", 0},
		{"ｗａｎｇ．ｆａｎｇ＠ｑｑ．ｃｏｍ", "wang.fang@qq.com", 0},
		{"mary.martin91@gmail.com", "mary.martin21@gmail.com", 2}, // two accounts
		{"123456789@qq.com", "123456788@qq.com", 2},
		{"wang.fang@gmial.com", "wang.fang@gmail.com", 1}, // a typo
		{"13812345678", "13812345679", 1},                 // a phone keeps its one-digit typo level
	} {
		a, b := prepare(KindID, tc.a), prepare(KindID, tc.b)
		if got := (codeComparator{}).compare(&a, &b); got != tc.want {
			t.Errorf("%q vs %q: level %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestChineseAddressLevels(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"杭州市西湖区文三路188号", "杭州市 西湖区 文三路 188号", 0}, // typed spaces
		{"杭州市西湖区文三路188号", "西湖区 文三路 188号", 1},     // without the city
		{"浙江省杭州市西湖区文三路188号", "西湖区文三路188号", 1},    // without province and city
		{"杭州市西湖区文三路188号", "杭州市西湖区文三路189号", 1},    // one character apart (a typo?): Jaro-Winkler, as for any text
		{"杭州市西湖区文三路188号", "188号", 3},             // a bare house number says nothing
		{"杭州市西湖区文三路188号", "上城区解放路88号", 3},
	} {
		a, b := prepare(KindAddress, tc.a), prepare(KindAddress, tc.b)
		if got := (addressComparator{}).compare(&a, &b); got != tc.want {
			t.Errorf("%q vs %q: level %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
