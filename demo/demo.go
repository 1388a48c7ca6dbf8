// Package demo generates Portrait's demo data set: retail customers with
// Chinese and Latin names, anonymous browsing that later identifies, orders,
// surveys and service tickets, offline purchases that must be merged with
// online profiles, and corporate accounts with their buying committees. It
// is deterministic: the same seed and as-of day give the same events.
package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Dataset is a generated demo, as Segment-spec events ready to send.
type Dataset struct {
	Events      []map[string]any
	Customers   int
	Accounts    int
	Duplicates  int // people who also appear under an offline identity
	SampleEmail string
}

type surname struct{ han, pinyin string }

var (
	surnames = []surname{{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"}, {"黄", "huang"}, {"赵", "zhao"},
		{"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"}, {"马", "ma"}, {"朱", "zhu"}, {"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"林", "lin"}, {"罗", "luo"}, {"高", "gao"}}
	givens = []surname{{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"秀英", "xiuying"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"}, {"强", "qiang"}, {"磊", "lei"}, {"军", "jun"},
		{"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"}, {"杰", "jie"}, {"娟", "juan"}, {"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"霞", "xia"}, {"浩然", "haoran"},
		{"子涵", "zihan"}, {"欣怡", "xinyi"}, {"梓萱", "zixuan"}, {"宇轩", "yuxuan"}, {"思远", "siyuan"}, {"雨桐", "yutong"}, {"俊杰", "junjie"}, {"佳怡", "jiayi"}}
	latinFirst = []string{"James", "Mary", "Olivia", "Liam", "Emma", "Noah", "Sophia", "Lucas", "Mia", "Ethan", "Anna", "David", "Laura", "Daniel", "Chloe", "Mateo", "Elena", "Jonas", "Amelie", "Arjun"}
	latinLast  = []string{"Smith", "Brown", "Müller", "García", "Rossi", "Martin", "Nguyen", "Kim", "Silva", "Johnson", "Dubois", "Novak", "Tanaka", "Fischer", "López", "Wilson"}
	domains    = []string{"qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "foxmail.com", "sina.com"}
	places     = []struct{ province, city, en string }{
		{"北京市", "北京市", "Beijing"}, {"上海市", "上海市", "Shanghai"}, {"广东省", "广州市", "Guangzhou"}, {"广东省", "深圳市", "Shenzhen"},
		{"浙江省", "杭州市", "Hangzhou"}, {"江苏省", "南京市", "Nanjing"}, {"江苏省", "苏州市", "Suzhou"}, {"四川省", "成都市", "Chengdu"},
		{"湖北省", "武汉市", "Wuhan"}, {"陕西省", "西安市", "Xi'an"}, {"重庆市", "重庆市", "Chongqing"}, {"天津市", "天津市", "Tianjin"}, {"山东省", "青岛市", "Qingdao"}, {"福建省", "厦门市", "Xiamen"},
	}
	products = []struct {
		sku, name, nameEn, category string
		price                       float64
	}{
		{"SKU-1001", "智能手机", "Smartphone", "数码 Electronics", 3999},
		{"SKU-1002", "无线耳机", "Wireless earbuds", "数码 Electronics", 899},
		{"SKU-1003", "笔记本电脑", "Laptop", "数码 Electronics", 6999},
		{"SKU-2001", "跑鞋", "Running shoes", "运动 Sports", 599},
		{"SKU-2002", "瑜伽垫", "Yoga mat", "运动 Sports", 129},
		{"SKU-3001", "保湿面霜", "Moisturiser", "美妆 Beauty", 329},
		{"SKU-3002", "防晒霜", "Sunscreen", "美妆 Beauty", 189},
		{"SKU-4001", "咖啡豆", "Coffee beans", "食品 Grocery", 89},
		{"SKU-4002", "婴儿奶粉", "Infant formula", "母婴 Baby", 368},
		{"SKU-5001", "空气净化器", "Air purifier", "家电 Home", 2199},
		{"SKU-5002", "咖啡机", "Coffee machine", "家电 Home", 1599},
		{"SKU-6001", "畅销小说", "Bestselling novel", "图书 Books", 49},
	}
	industries = []struct{ code, name string }{{"C39", "计算机、通信和其他电子设备制造业"}, {"I65", "软件和信息技术服务业"}, {"J66", "货币金融服务"}, {"F52", "零售业"}, {"C27", "医药制造业"}, {"G54", "道路运输业"}}
	companySyl = []string{"华信", "恒达", "瑞丰", "中科", "天成", "博远", "金桥", "新锐", "鼎盛", "启明", "东方", "云海"}
	companyEnd = []string{"科技有限公司", "信息技术股份有限公司", "商贸有限公司", "医药集团有限公司", "物流有限公司"}
	roles      = []struct{ role, level, title string }{{"EB", "决策层", "总经理 CEO"}, {"UB", "中层", "采购经理 Procurement manager"}, {"TB", "高层", "技术总监 CTO"}, {"Coach", "基层", "项目专员 Project specialist"}, {"UB", "基层", "业务主管 Team lead"}}
	// Mobile prefixes in service in China (China Mobile, Unicom, Telecom).
	mobilePrefixes = []string{"130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157", "158", "159",
		"166", "176", "177", "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199"}
	comments = []string{"物流很快，包装很好", "客服响应慢", "价格有点贵", "质量超出预期", "Great service, will buy again", "Delivery was late", "App is easy to use", "退货流程太麻烦", ""}
)

// popularity weights products (same order as products): everyday items
// sell far more often than laptops, which is what keeps order values and
// repeat buying believable.
var popularity = []float64{4, 8, 2, 8, 8, 10, 10, 14, 8, 3, 3, 12}

// durable products are bought once; later orders go to other products.
var durable = map[string]bool{"SKU-1001": true, "SKU-1003": true, "SKU-5001": true, "SKU-5002": true}

// companions: products often bought with another (index into products).
var companions = map[string]struct {
	idx int
	p   float64
}{
	"SKU-1001": {1, 0.55},  // smartphone → earbuds
	"SKU-1003": {1, 0.35},  // laptop → earbuds
	"SKU-5002": {7, 0.65},  // coffee machine → coffee beans
	"SKU-2001": {4, 0.30},  // running shoes → yoga mat
	"SKU-3001": {6, 0.45},  // moisturiser → sunscreen
	"SKU-4002": {11, 0.20}, // infant formula → a book
}

// Generate builds the demo data set: n retail customers (and n/75 corporate
// accounts) with history up to asOf.
func Generate(seed uint64, n int, asOf time.Time) *Dataset {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), asOf: asOf.UTC()}
	d := &Dataset{Customers: n}
	accounts := max(n/75, 1)
	d.Accounts = accounts
	for i := range n {
		c := g.customer(i)
		if i == 0 {
			d.SampleEmail = c.email
		}
		g.history(c, accounts)
		g.journeys(c) // the service path the business map draws (journeys.go)
		if c.duplicate {
			d.Duplicates++
		}
	}
	for k := range accounts {
		g.account(k)
	}
	corp := CorporateAccounts(n) // demo/accounts.go: the account portrait's companies
	g.events = append(g.events, Corporate(seed, corp, asOf)...)
	d.Accounts += corp
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i]["timestamp"].(string) < g.events[j]["timestamp"].(string) })
	d.Events = g.events
	return d
}

type gen struct {
	rng    *rand.Rand
	asOf   time.Time
	events []map[string]any
	seq    int
	// taken: e-mails and phones already given to a customer. Customers
	// share none: the only duplicates the demo means are the store buyers
	// (customer.duplicate), joined by phone; an accidental shared e-mail
	// would merge two people, or pose as a duplicate to linkage.
	taken map[string]bool
}

// unique returns the first of make(0), make(1), ... not given to another
// customer, and takes it. Collisions bump a number instead of drawing
// again, so the rest of the data set stays what the seed made it.
func (g *gen) unique(make func(bump int) string) string {
	if g.taken == nil {
		g.taken = map[string]bool{}
	}
	for bump := 0; ; bump++ {
		if v := make(bump); !g.taken[v] {
			g.taken[v] = true
			return v
		}
	}
}

type customer struct {
	i                        int
	userID, name, email      string
	phone, phoneMessy        string
	gender, province, city   string
	birthYear                int
	chinese, duplicate       bool
	b2bAccount               int     // -1 when a retail customer only
	activity                 float64 // shopping visits per 30 days
	dropout                  float64 // chance of going quiet after each order
	firstSeen                time.Time
	favCategory              int
	channel, memberLevel, en string
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

// weighted draws an index with probability proportional to its weight.
func (g *gen) weighted(w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := g.rng.Float64() * sum
	for i, x := range w {
		if u -= x; u < 0 {
			return i
		}
	}
	return len(w) - 1
}

// gamma draws Gamma(k, 1) for k ≤ 1 (Ahrens–Dieter GS), which is all the
// demo needs; math/rand has no gamma.
func (g *gen) gamma(k float64) float64 {
	if k >= 1 { // Marsaglia–Tsang for completeness
		d := k - 1.0/3
		c := 1 / math.Sqrt(9*d)
		for {
			x := g.rng.NormFloat64()
			v := 1 + c*x
			if v <= 0 {
				continue
			}
			v = v * v * v
			if u := g.rng.Float64(); math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
				return d * v
			}
		}
	}
	b := (math.E + k) / math.E
	for {
		p := b * g.rng.Float64()
		if p <= 1 {
			x := math.Pow(p, 1/k)
			if g.rng.Float64() <= math.Exp(-x) {
				return x
			}
			continue
		}
		x := -math.Log((b - p) / k)
		if g.rng.Float64() <= math.Pow(x, k-1) {
			return x
		}
	}
}

func (g *gen) beta(a, b float64) float64 {
	x, y := g.gamma(a), g.gamma(b)
	return x / (x + y)
}

func (g *gen) customer(i int) *customer {
	c := &customer{i: i, userID: fmt.Sprintf("cust-%05d", i), b2bAccount: -1}
	p := places[g.pick(len(places))]
	c.province, c.city, c.en = p.province, p.city, p.en
	prefix, number := mobilePrefixes[g.pick(len(mobilePrefixes))], g.rng.IntN(100000000)
	digits := g.unique(func(bump int) string { return fmt.Sprintf("%s%08d", prefix, (number+bump)%100000000) })
	c.phone = "+86" + digits
	switch g.pick(4) { // the same number, typed as people type it
	case 0:
		c.phoneMessy = digits
	case 1:
		c.phoneMessy = "+86 " + digits[:3] + " " + digits[3:7] + " " + digits[7:]
	case 2:
		c.phoneMessy = "0086-" + digits
	default:
		c.phoneMessy = toFullWidth(digits[:3] + " " + digits[3:7] + " " + digits[7:])
	}
	if g.pick(100) < 62 {
		c.chinese = true
		s, gv := surnames[g.pick(len(surnames))], givens[g.pick(len(givens))]
		c.name = s.han + gv.han
		n, domain := g.pick(1000), domains[g.pick(len(domains))]
		c.email = g.unique(func(bump int) string { return fmt.Sprintf("%s.%s%d@%s", gv.pinyin, s.pinyin, n+1000*bump, domain) })
	} else {
		f, l := latinFirst[g.pick(len(latinFirst))], latinLast[g.pick(len(latinLast))]
		c.name = f + " " + l
		n, domain := g.pick(100), domains[3+g.pick(2)]
		c.email = g.unique(func(bump int) string {
			return fmt.Sprintf("%s.%s%d@%s", strings.ToLower(f), asciiFold(strings.ToLower(l)), n+100*bump, domain)
		})
	}
	c.gender = []string{"female", "male"}[g.pick(2)]
	c.birthYear = 1955 + g.pick(50)
	// Buying as repeat-buying studies find it (Ehrenberg; Fader, Hardie &
	// Lee): visit rates are Gamma-distributed across customers, most rarely
	// shopping and a few often, and after each order a customer may go
	// quiet for good, with a chance that also varies (Beta) — so many buy
	// once, a few become regulars.
	c.activity = g.gamma(0.8) * 1.0
	c.dropout = g.beta(1.3, 2.6)
	c.firstSeen = g.asOf.Add(-time.Duration(g.rng.Float64()*540*24) * time.Hour)
	c.favCategory = g.weighted(popularity)
	c.channel = []string{"online", "app", "store"}[g.pick(3)]
	c.memberLevel = []string{"普通 Regular", "银卡 Silver", "金卡 Gold", "钻石 Diamond"}[min(g.pick(10)/3, 3)]
	c.duplicate = g.pick(100) < 4
	return c
}

func (g *gen) at(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (g *gen) emit(t time.Time, e map[string]any) {
	if t.After(g.asOf) {
		return
	}
	g.seq++
	e["messageId"] = fmt.Sprintf("demo-%07d", g.seq)
	e["timestamp"] = g.at(t)
	if _, ok := e["context"]; !ok {
		e["context"] = map[string]any{"library": map[string]any{"name": "portrait-demo", "version": "1"}, "locale": "zh-CN"}
	}
	g.events = append(g.events, e)
}

// sdkContext is the context the SDK on a customer's device d sends: the
// first device is a browser (analytics.js), the others phones (Segment's
// iOS library, RudderStack's Android SDK), so that preferred_channel reads
// web or app as it would with real SDKs.
func sdkContext(d int) map[string]any {
	switch d {
	case 0:
		return map[string]any{"library": map[string]any{"name": "analytics.js", "version": "2.11.1"}, "locale": "zh-CN"}
	case 1:
		return map[string]any{"library": map[string]any{"name": "analytics-ios", "version": "4.1.8"}, "locale": "zh-CN", "os": map[string]any{"name": "iOS"}}
	}
	return map[string]any{"library": map[string]any{"name": "com.rudderstack.android.sdk.core", "version": "1.25.1"}, "locale": "zh-CN", "os": map[string]any{"name": "Android"}}
}

func (g *gen) history(c *customer, accounts int) {
	t := c.firstSeen
	anon := fmt.Sprintf("anon-%05d-%d", c.i, 0)
	// Anonymous browsing first; the visitor identifies later.
	for range 1 + g.pick(4) {
		t = t.Add(time.Duration(5+g.pick(120)) * time.Minute)
		pr := products[(c.favCategory+g.pick(3))%len(products)]
		g.emit(t, map[string]any{"type": "page", "anonymousId": anon, "name": pr.name, "properties": map[string]any{"path": "/p/" + pr.sku, "title": pr.name + " " + pr.nameEn}, "context": sdkContext(0)})
		if g.pick(2) == 0 {
			g.emit(t.Add(30*time.Second), map[string]any{"type": "track", "anonymousId": anon, "event": "Product Viewed", "properties": map[string]any{"sku": pr.sku, "name": pr.name, "category": pr.category, "price": pr.price}, "context": sdkContext(0)})
		}
	}
	t = t.Add(time.Duration(1+g.pick(60)) * time.Minute)
	traits := map[string]any{
		"name": c.name, "email": c.email, "phone": c.phoneMessy, "gender": c.gender, "birth_year": c.birthYear,
		"province": c.province, "city": c.city, "member_level": c.memberLevel, "preferred_channel": c.channel,
		"$set_once": map[string]any{"signup_channel": []string{"web", "app", "wechat_mini_program"}[g.pick(3)], "signup_date": t.Format("2006-01-02")},
	}
	if c.i%75 < 3 && accounts > 0 { // some customers are key persons of a corporate account
		c.b2bAccount = c.i / 75 % accounts
		r := roles[c.i%len(roles)]
		traits["company_id"] = fmt.Sprintf("acct-%03d", c.b2bAccount)
		traits["buying_role"], traits["hierarchy_level"], traits["title"] = r.role, r.level, r.title
	}
	g.emit(t, map[string]any{"type": "identify", "userId": c.userID, "anonymousId": anon, "traits": traits})
	if c.b2bAccount >= 0 {
		g.emit(t.Add(time.Second), map[string]any{"type": "group", "userId": c.userID, "groupId": fmt.Sprintf("acct-%03d", c.b2bAccount)})
	}

	// Orders, views, tickets and surveys across the customer's life; after
	// each order the customer may go quiet for good (churn).
	orders := 0
	quiet := false
	for !quiet {
		// Compared in days first: a rarely-shopping customer's gap can
		// exceed what a time.Duration holds.
		days := g.rng.ExpFloat64() * 30 / c.activity
		if days >= g.asOf.Sub(t).Hours()/24 {
			break
		}
		t = t.Add(time.Duration(days*24)*time.Hour + time.Hour)
		if t.After(g.asOf) {
			break
		}
		dev, d := anon, 0
		if g.pick(3) == 0 {
			d = 1 + g.pick(2)
			dev = fmt.Sprintf("anon-%05d-%d", c.i, d) // a second device, identified by the user id
		}
		// Half the visits are to the favourite product, the rest follow
		// popularity; a durable one already bought is not bought again.
		pr := products[c.favCategory]
		if g.pick(2) == 0 || (orders > 0 && durable[pr.sku]) {
			pr = products[g.weighted(popularity)]
		}
		g.emit(t, map[string]any{"type": "track", "userId": c.userID, "anonymousId": dev, "event": "Product Viewed", "properties": map[string]any{"sku": pr.sku, "name": pr.name, "category": pr.category, "price": pr.price}, "context": sdkContext(d)})
		if g.pick(100) < 45 && !(orders > 0 && durable[pr.sku] && g.pick(4) > 0) {
			qty := 1
			if !durable[pr.sku] && g.pick(3) == 0 {
				qty = 2
			}
			items := []map[string]any{{"sku": pr.sku, "name": pr.name, "category": pr.category, "price": pr.price, "quantity": qty}}
			total := pr.price * float64(qty)
			// Real baskets have structure: some products are bought together
			// (a phone with earbuds, a coffee machine with beans), which is
			// what basket analysis finds.
			if comp, ok := companions[pr.sku]; ok && g.rng.Float64() < comp.p {
				cp := products[comp.idx]
				items = append(items, map[string]any{"sku": cp.sku, "name": cp.name, "category": cp.category, "price": cp.price, "quantity": 1})
				total += cp.price
			} else if g.pick(4) == 0 {
				extra := products[g.weighted(popularity)]
				items = append(items, map[string]any{"sku": extra.sku, "name": extra.name, "category": extra.category, "price": extra.price, "quantity": 1})
				total += extra.price
			}
			orders++
			props := map[string]any{"order_id": fmt.Sprintf("o-%05d-%03d", c.i, orders), "revenue": math.Round(total*100) / 100, "currency": "CNY", "products": items,
				"channel": []string{"online", "app", "store"}[g.pick(3)], "coupon": g.pick(4) == 0}
			g.emit(t.Add(3*time.Minute), map[string]any{"type": "track", "userId": c.userID, "event": "Order Completed", "properties": props})
			if g.pick(100) < 12 {
				g.emit(t.Add(72*time.Hour), map[string]any{"type": "track", "userId": c.userID, "event": "Ticket Opened", "properties": map[string]any{"topic": []string{"退货 Return", "物流 Delivery", "发票 Invoice", "质量 Quality"}[g.pick(4)], "order_id": props["order_id"]}})
			}
			if g.pick(100) < 20 {
				score := min(10, max(0, int(math.Round(7+g.rng.NormFloat64()*2.2))))
				g.emit(t.Add(120*time.Hour), map[string]any{"type": "track", "userId": c.userID, "event": "Survey Completed",
					"properties": map[string]any{"survey": "nps", "nps": score, "csat": min(5, max(1, (score+2)/2)), "comment": comments[g.pick(len(comments))]}})
			}
			quiet = g.rng.Float64() < c.dropout
		}
	}
	// A deliberate duplicate: the same person buys in a store, known there
	// only by the phone number, typed differently. The phone joins them.
	if c.duplicate {
		pos := fmt.Sprintf("pos-%05d", c.i)
		tt := c.firstSeen.Add(time.Duration(g.pick(24*200)) * time.Hour)
		g.emit(tt, map[string]any{"type": "identify", "anonymousId": pos, "traits": map[string]any{"phone": c.phone, "name": c.name, "store": c.city + "旗舰店"},
			"context": map[string]any{"library": map[string]any{"name": "pos-export", "version": "3"}}})
		pr := products[g.weighted(popularity)]
		g.emit(tt.Add(10*time.Minute), map[string]any{"type": "track", "anonymousId": pos, "event": "Order Completed",
			"properties": map[string]any{"order_id": fmt.Sprintf("pos-%05d-1", c.i), "revenue": pr.price, "currency": "CNY", "channel": "store", "products": []map[string]any{{"sku": pr.sku, "name": pr.name, "category": pr.category, "price": pr.price, "quantity": 1}}}})
	}
}

func (g *gen) account(k int) {
	name := companyName(k)
	ind := industries[k%len(industries)]
	p := places[k%len(places)]
	t := g.asOf.Add(-time.Duration(400+g.pick(100)) * 24 * time.Hour)
	g.emit(t, map[string]any{"type": "group", "userId": fmt.Sprintf("cust-%05d", k*75), "groupId": fmt.Sprintf("acct-%03d", k), "traits": map[string]any{
		"name": name, "industry_code": ind.code, "industry": ind.name, "employees": []int{45, 180, 600, 2400, 12000}[g.pick(5)],
		"annual_revenue_cny": []int{8_000_000, 50_000_000, 300_000_000, 2_000_000_000}[g.pick(4)], "province": p.province, "city": p.city,
		"ownership": []string{"民营 Private", "国有 State-owned", "外资 Foreign", "合资 Joint venture"}[g.pick(4)],
	}})
}

// companyName is the k-th account's name: two different syllables (never
// 华信华信) and an ending; the first 12×11 names are all different.
func companyName(k int) string {
	n := len(companySyl)
	a := k % n
	b := (a + 1 + (k/n)%(n-1)) % n // an offset of 1..n-1: never a itself
	return companySyl[a] + companySyl[b] + companyEnd[(k+k/n)%len(companyEnd)]
}

func toFullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune('０' + (r - '0'))
		case r == ' ':
			b.WriteRune('　')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func asciiFold(s string) string {
	return strings.NewReplacer("ü", "ue", "í", "i", "é", "e", "ó", "o", "á", "a").Replace(s)
}
