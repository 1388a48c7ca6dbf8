// Package synth generates populations of Chinese customers with known
// answers, for evaluating record linkage on data shaped like Portrait's
// users: common surnames and given names drawn by frequency (so that many
// distinct people share a name), mobile numbers, cities, birth dates and
// e-mail addresses, and duplicates damaged the way real entry damages them.
// Generation is deterministic for a seed.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"

	"github.com/portrait-cdp/portrait/clean"
)

// Record is one generated row (field name → value) with the id of the
// person it describes.
type Record struct {
	Person int
	Fields map[string]string
	// Romanised: one of a person's two records of which one is romanised
	// (Options.Romanised).
	Romanised bool
}

// Options of a population.
type Options struct {
	People int
	// DupShare is the share of people who get one or two extra records.
	// Zero makes a population without duplicates: every record is a
	// different person, and phones and e-mail addresses are unique.
	DupShare float64
	Seed     uint64
	// Romanised makes half the duplicates the romanised record of another
	// system (a booking site, an overseas shop): the name in pinyin, in
	// either order, sometimes full-width, with the phone only, where the
	// first record has the e-mail only, so the two share no identifier.
	// The other half are duplicated as without it.
	// Compound surnames (欧阳, 司马, 诸葛, 上官, 东方, 皇甫) are ten times as
	// frequent as in the census, so that enough of them are measured.
	Romanised bool
}

// Weighted lists, roughly by frequency in China (surnames per the 2020
// census shares, given names by how often they appear among registered
// names). The heavy head is the point: 王芳 and 张伟 are each thousands of
// different people.
type weighted struct {
	han string
	w   int
}

type place struct {
	province, city string
	w              int
}

var surnames = []weighted{
	{"王", 71}, {"李", 70}, {"张", 67}, {"刘", 54}, {"陈", 45}, {"杨", 31}, {"黄", 22}, {"赵", 21}, {"吴", 20}, {"周", 19},
	{"徐", 15}, {"孙", 15}, {"马", 14}, {"朱", 13}, {"胡", 13}, {"郭", 12}, {"何", 12}, {"高", 11}, {"林", 11}, {"罗", 10},
	{"郑", 10}, {"梁", 9}, {"谢", 8}, {"宋", 7}, {"唐", 7}, {"许", 6}, {"韩", 6}, {"冯", 6}, {"邓", 6}, {"曹", 5},
	{"彭", 5}, {"曾", 5}, {"肖", 5}, {"田", 5}, {"董", 4}, {"袁", 4}, {"潘", 4}, {"于", 4}, {"蒋", 4}, {"蔡", 4},
	{"余", 4}, {"杜", 4}, {"叶", 4}, {"程", 3}, {"苏", 3}, {"魏", 3}, {"吕", 3}, {"丁", 3}, {"任", 3}, {"沈", 3},
	{"欧阳", 1}, {"司马", 1}, {"诸葛", 1},
}

// compound surnames, weighted up for Options.Romanised.
var compound = []weighted{{"欧阳", 10}, {"司马", 10}, {"诸葛", 10}, {"上官", 10}, {"东方", 10}, {"皇甫", 10}}

var givens = []weighted{
	{"伟", 40}, {"芳", 38}, {"娜", 35}, {"秀英", 33}, {"敏", 32}, {"静", 31}, {"丽", 29}, {"强", 28}, {"磊", 27}, {"军", 26},
	{"洋", 25}, {"勇", 24}, {"艳", 23}, {"杰", 22}, {"娟", 21}, {"涛", 20}, {"明", 19}, {"超", 18}, {"秀兰", 17}, {"霞", 16},
	{"平", 15}, {"刚", 14}, {"桂英", 13}, {"建华", 12}, {"文", 11}, {"华", 11}, {"红", 10}, {"玉兰", 9}, {"建国", 8}, {"婷", 8},
	{"雪", 7}, {"鹏", 7}, {"欣怡", 6}, {"子涵", 6}, {"浩然", 5}, {"梓轩", 5}, {"雨萱", 5}, {"宇航", 4}, {"思远", 4}, {"嘉怡", 4},
	{"志强", 4}, {"海燕", 4}, {"春梅", 3}, {"晓东", 3}, {"国栋", 3}, {"丹丹", 3}, {"佳琪", 3}, {"一鸣", 2}, {"若曦", 2}, {"慧敏", 2},
	{"振华", 2}, {"梦洁", 2}, {"俊杰", 2}, {"诗涵", 2}, {"晨曦", 1}, {"博文", 1}, {"锦程", 1}, {"静怡", 1}, {"天佑", 1}, {"沐阳", 1},
}

// homophones: the character an input method offers next to the right one.
var homophones = map[rune][]rune{
	'伟': {'玮', '炜', '韦'}, '芳': {'方', '芬'}, '娜': {'纳'}, '敏': {'民', '闵'}, '静': {'婧', '靜'}, '丽': {'莉', '俪'},
	'强': {'蔷'}, '磊': {'垒'}, '军': {'君', '均'}, '洋': {'阳', '扬'}, '勇': {'永'}, '艳': {'燕', '妍'}, '杰': {'洁', '捷'},
	'娟': {'鹃'}, '涛': {'韬'}, '明': {'铭', '鸣'}, '超': {'潮'}, '霞': {'侠'}, '平': {'萍', '苹'}, '刚': {'钢'}, '英': {'瑛', '莹'},
	'华': {'骅'}, '红': {'虹', '宏'}, '兰': {'岚'}, '婷': {'亭'}, '雪': {'薛'}, '鹏': {'朋'}, '文': {'雯', '闻'}, '国': {'果'},
}

var places = []place{
	{"广东省", "广州市", 9}, {"广东省", "深圳市", 9}, {"北京市", "北京市", 10}, {"上海市", "上海市", 10}, {"四川省", "成都市", 7},
	{"浙江省", "杭州市", 6}, {"湖北省", "武汉市", 6}, {"江苏省", "南京市", 5}, {"江苏省", "苏州市", 5}, {"陕西省", "西安市", 5},
	{"重庆市", "重庆市", 7}, {"天津市", "天津市", 5}, {"湖南省", "长沙市", 4}, {"河南省", "郑州市", 4}, {"山东省", "青岛市", 4},
	{"福建省", "厦门市", 3}, {"辽宁省", "沈阳市", 3}, {"云南省", "昆明市", 2}, {"黑龙江省", "哈尔滨市", 2}, {"安徽省", "合肥市", 3},
}

var mobilePrefixes = []string{"130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "166", "177", "180", "186", "187", "188", "189", "199"}

var domains = []string{"qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com", "foxmail.com"}

type person struct {
	sur, given     string
	gender         string
	y, m, d        int
	province, city string
	mobile, email  string
	surPy, givenPy string
}

type gen struct {
	rng            *rand.Rand
	surnames       []weighted
	phones, emails map[string]bool
	surTotal       int
	givTotal       int
	placeTotal     int
}

func pick[T any](g *gen, xs []T, w func(T) int, total int) T {
	n := g.rng.IntN(total)
	for _, x := range xs {
		n -= w(x)
		if n < 0 {
			return x
		}
	}
	return xs[len(xs)-1]
}

func weightOf(x weighted) int { return x.w }

func (g *gen) person() person {
	s := pick(g, g.surnames, weightOf, g.surTotal)
	gv := pick(g, givens, weightOf, g.givTotal)
	pl := pick(g, places, func(p place) int { return p.w }, g.placeTotal)
	p := person{sur: s.han, given: gv.han, province: pl.province, city: pl.city,
		gender: []string{"female", "male"}[g.rng.IntN(2)],
		y:      1950 + g.rng.IntN(55), m: 1 + g.rng.IntN(12), d: 1 + g.rng.IntN(28)}
	p.surPy = strings.ReplaceAll(clean.Pinyin(p.sur), " ", "")
	p.givenPy = strings.ReplaceAll(clean.Pinyin(p.given), " ", "")
	for {
		m := fmt.Sprintf("%s%08d", mobilePrefixes[g.rng.IntN(len(mobilePrefixes))], g.rng.IntN(100000000))
		if !g.phones[m] {
			g.phones[m] = true
			p.mobile = m
			break
		}
	}
	for {
		var local string
		switch g.rng.IntN(3) {
		case 0:
			local = fmt.Sprintf("%s.%s%d", p.givenPy, p.surPy, g.rng.IntN(1000))
		case 1:
			local = fmt.Sprintf("%s%s%02d", p.surPy, p.givenPy, p.y%100)
		default:
			local = fmt.Sprintf("%d", 10000000+g.rng.IntN(900000000)) // a QQ number
		}
		e := local + "@" + domains[g.rng.IntN(len(domains))]
		if !g.emails[e] {
			g.emails[e] = true
			p.email = e
			break
		}
	}
	return p
}

// clean record of a person, as the first system holds it.
func (p person) record() map[string]string {
	return map[string]string{
		"name": p.sur + p.given, "gender": p.gender, "birth_date": fmt.Sprintf("%04d-%02d-%02d", p.y, p.m, p.d),
		"province": p.province, "city": p.city, "phone": p.mobile, "email": p.email,
	}
}

// variant is the same person as another system or a later form entry
// holds them: some fields retyped, reformatted, missing or changed.
func (g *gen) variant(p person) map[string]string {
	r := p.record()
	roll := func(pct int) bool { return g.rng.IntN(100) < pct }
	switch k := g.rng.IntN(100); {
	case k < 20: // a homophone picked from the input method's list
		rs := []rune(p.given)
		i := g.rng.IntN(len(rs))
		if hs, ok := homophones[rs[i]]; ok {
			rs[i] = hs[g.rng.IntN(len(hs))]
		}
		r["name"] = p.sur + string(rs)
	case k < 35: // pinyin, surname first
		r["name"] = title(p.surPy) + " " + title(p.givenPy)
	case k < 45: // pinyin in Western order
		r["name"] = title(p.givenPy) + " " + title(p.surPy)
	case k < 50: // full-width pinyin, as some forms save it
		r["name"] = fullWidth(title(p.surPy) + " " + title(p.givenPy))
	case k < 55: // a space typed between surname and given name
		r["name"] = p.sur + " " + p.given
	case k < 60: // a typo in the pinyin
		gp := []byte(p.givenPy)
		if len(gp) > 2 {
			gp = append(gp[:len(gp)-1:len(gp)-1], gp[len(gp)-1]+1)
		}
		r["name"] = title(p.surPy) + " " + title(string(gp))
	}
	switch k := g.rng.IntN(100); {
	case k < 25:
		r["phone"] = "+86 " + p.mobile[:3] + " " + p.mobile[3:7] + " " + p.mobile[7:]
	case k < 40:
		r["phone"] = "0086-" + p.mobile
	case k < 50:
		r["phone"] = fullWidth(p.mobile[:3] + "-" + p.mobile[3:7] + "-" + p.mobile[7:])
	case k < 60:
		r["phone"] = "" // not asked for
	case k < 68: // a new number
		r["phone"] = fmt.Sprintf("%s%08d", mobilePrefixes[g.rng.IntN(len(mobilePrefixes))], g.rng.IntN(100000000))
	}
	switch k := g.rng.IntN(100); {
	case k < 20:
		r["email"] = strings.ToUpper(p.email[:1]) + p.email[1:]
	case k < 40:
		r["email"] = ""
	case k < 48:
		r["email"] = fmt.Sprintf("%d@qq.com", 10000000+g.rng.IntN(900000000))
	}
	switch k := g.rng.IntN(100); {
	case k < 25:
		r["birth_date"] = fmt.Sprintf("%d/%d/%d", p.y, p.m, p.d)
	case k < 40:
		r["birth_date"] = fmt.Sprintf("%d年%d月%d日", p.y, p.m, p.d)
	case k < 60:
		r["birth_date"] = ""
	case k < 64: // one digit mistyped
		r["birth_date"] = fmt.Sprintf("%04d-%02d-%02d", p.y, p.m, 1+(p.d%28))
	}
	if roll(15) { // moved
		pl := places[g.rng.IntN(len(places))]
		r["province"], r["city"] = pl.province, pl.city
	} else if roll(30) {
		r["city"] = strings.TrimSuffix(r["city"], "市")
	}
	if roll(10) {
		r["gender"] = ""
	}
	return r
}

// romanised is the person as a system that takes Latin letters holds
// them: the name in pinyin (surname first or last, sometimes full-width or
// in capitals), the phone (reformatted) but no e-mail, the birth date in
// another format or missing, the city sometimes without 市.
func (g *gen) romanised(p person) map[string]string {
	r := p.record()
	sur, given := title(p.surPy), title(p.givenPy)
	switch k := g.rng.IntN(100); {
	case k < 45:
		r["name"] = sur + " " + given
	case k < 85: // Western order
		r["name"] = given + " " + sur
	case k < 93:
		r["name"] = strings.ToUpper(p.surPy) + " " + given // passport style
	default:
		r["name"] = fullWidth(sur + " " + given)
	}
	r["email"] = ""
	if g.rng.IntN(2) == 0 {
		r["phone"] = "+86 " + p.mobile[:3] + " " + p.mobile[3:7] + " " + p.mobile[7:]
	}
	switch k := g.rng.IntN(100); {
	case k < 40:
		r["birth_date"] = fmt.Sprintf("%02d/%02d/%d", p.d, p.m, p.y) // day first
	case k < 55:
		r["birth_date"] = ""
	}
	if g.rng.IntN(100) < 30 {
		r["city"] = strings.TrimSuffix(r["city"], "市")
	}
	if g.rng.IntN(100) < 20 {
		r["gender"] = ""
	}
	return r
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
			b.WriteRune('\u3000')
		case r > ' ' && r < 0x7f && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-'):
			b.WriteRune(r - 0x21 + 0xFF01)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Population generates the records of o.People people in a seeded order:
// each person's clean record and, for a DupShare of them, one or two
// variants. Records of one person are not adjacent.
func Population(o Options) []Record {
	g := &gen{rng: rand.New(rand.NewPCG(o.Seed, 0x11e7a6e)), phones: map[string]bool{}, emails: map[string]bool{}}
	if o.Romanised {
		g.surnames = append(append([]weighted{}, surnames[:len(surnames)-3]...), compound...)
	} else {
		g.surnames = surnames
	}
	for _, s := range g.surnames {
		g.surTotal += s.w
	}
	for _, s := range givens {
		g.givTotal += s.w
	}
	for _, p := range places {
		g.placeTotal += p.w
	}
	var out []Record
	for i := range o.People {
		p := g.person()
		if o.Romanised && o.DupShare > 0 && g.rng.Float64() < o.DupShare/2 {
			first := p.record()
			first["phone"] = ""
			out = append(out, Record{Person: i, Fields: first, Romanised: true}, Record{Person: i, Fields: g.romanised(p), Romanised: true})
			continue
		}
		out = append(out, Record{Person: i, Fields: p.record()})
		if o.DupShare > 0 && g.rng.Float64() < o.DupShare {
			for range 1 + g.rng.IntN(2) {
				out = append(out, Record{Person: i, Fields: g.variant(p)})
			}
		}
	}
	g.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
