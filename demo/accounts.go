package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Corporate accounts for the account portrait (对公客户): a few hundred
// companies with unified social credit codes, web domains, parent groups
// and subsidiaries, buying committees (some roles missing or only
// presumed), sales activities and won or lost opportunities. Each company
// has a hidden fit; the committee's completeness, the sales team's effort
// and the outcomes follow it, which is what the learned ICP score must
// find again.

var (
	corpA       = []string{"长城", "华夏", "远航", "星河", "北辰", "嘉和", "汇通", "正泰", "银泰", "宏图", "安信", "同创", "光华", "海纳", "万象", "联合", "中瑞", "力拓", "盛世", "和信"}
	corpB       = []string{"数据", "智能", "金融", "制造", "医疗", "零售", "云", "物联", "保险", "能源", "电子", "供应链", "网络", "控股", "精密", "生物", "物流", "传媒", "电气"}
	corpPinyinA = []string{"changcheng", "huaxia", "yuanhang", "xinghe", "beichen", "jiahe", "huitong", "zhengtai", "yintai", "hongtu", "anxin", "tongchuang", "guanghua", "haina", "wanxiang", "lianhe", "zhongrui", "lituo", "shengshi", "hexin"}
	corpInd     = []struct {
		code string
		fit  float64 // how well the industry suits the demo seller (B2B software)
	}{{"I651", 1}, {"I654", 0.9}, {"J662", 0.9}, {"J681", 0.8}, {"C397", 0.6}, {"C272", 0.5}, {"F523", 0.3}, {"G543", 0.2}, {"E471", 0.1}, {"H621", 0.1}}
	corpProv = []struct{ province, code string }{{"北京市", "110000"}, {"上海市", "310000"}, {"广东省", "440300"}, {"浙江省", "330100"}, {"江苏省", "320500"}, {"四川省", "510100"}, {"湖北省", "420100"}, {"陕西省", "610100"}}
	corpRole = []struct{ role, level, title string }{
		{"EB", "决策层", "总经理"}, {"TB", "高层", "CIO 信息总监"}, {"UB", "中层", "运营经理"}, {"Coach", "基层", "项目专员"}, {"UB", "基层", "业务主管"}, {"TB", "中层", "IT经理"},
	}
)

const usccAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// USCC makes a valid unified social credit code (GB 32100) for an
// enterprise (9 1) registered in region, from a serial number.
func USCC(region string, serial uint64) string {
	var b strings.Builder
	b.WriteString("91")
	b.WriteString(region)
	x := serial
	for range 9 {
		b.WriteByte(usccAlphabet[x%31])
		x /= 31
	}
	s := b.String()
	sum := 0
	for i := range 17 {
		sum += strings.IndexByte(usccAlphabet, s[i]) * usccWeights[i]
	}
	return s + string(usccAlphabet[(31-sum%31)%31])
}

// CorporateAccounts is how many companies Generate adds for n customers.
func CorporateAccounts(n int) int { return min(max(n/10, 20), 300) }

// Corporate generates k companies' events up to asOf.
func Corporate(seed uint64, k int, asOf time.Time) []map[string]any {
	g := &gen{rng: rand.New(rand.NewPCG(seed^0xacc0, seed+17)), asOf: asOf.UTC()}
	for i := range k {
		g.corporate(i)
	}
	for _, e := range g.events {
		e["messageId"] = "corp-" + e["messageId"].(string)
		// The sales team's CRM sends all of it (see SourceOf).
		e["context"] = map[string]any{"library": map[string]any{"name": "crm-sync", "version": "1"}, "locale": "zh-CN"}
	}
	return g.events
}

func corpName(i int) (han, pinyin string) {
	a := i % len(corpA)
	b := (i / len(corpA)) % len(corpB)
	return corpA[a] + corpB[b] + []string{"股份有限公司", "集团有限公司", "科技有限公司"}[(i/7)%3], corpPinyinA[a] + fmt.Sprint(i)
}

func (g *gen) corporate(i int) {
	name, py := corpName(i)
	ind := corpInd[g.pick(len(corpInd))]
	prov := corpProv[g.pick(len(corpProv))]
	employees := math.Round(math.Exp(3 + g.rng.Float64()*7)) // 20 .. 22,000
	revenue := math.Round(employees * (3e5 + g.rng.Float64()*9e5))
	// The hidden fit: industry, size, and luck.
	size := 1.0
	if employees < 200 {
		size = employees / 200
	}
	fit := 0.45*ind.fit + 0.35*size + 0.2*g.rng.Float64()
	group := fmt.Sprintf("corp-%04d", i)
	domain := py + ".com.cn"
	start := g.asOf.Add(-time.Duration(200+g.pick(400)) * 24 * time.Hour)
	traits := map[string]any{
		"name": name, "uscc": USCC(prov.code, uint64(i)*7919+11), "domain": domain, "industry": ind.code,
		"employees": employees, "revenue": revenue, "province": prov.province,
		"ownership": []string{"民营", "国有", "外资", "合资"}[g.pick(4)], "listed": g.pick(4) == 0,
		"stage": []string{"初创", "成长", "成熟"}[min(2, int(employees)/500)], "crm_id": fmt.Sprintf("CRM-%05d", 10000+i),
	}
	switch {
	case i%50 == 7: // a CRM typo: refused with its reason, the account kept
		u := traits["uscc"].(string)
		traits["uscc"] = u[:17] + string(usccAlphabet[(strings.IndexByte(usccAlphabet, u[17])+1)%31])
	case i%9 == 4: // the revenue is a sales rep's estimate
		traits["presumed"] = map[string]any{"revenue": "按员工人数和行业人均产值估算"}
	}
	// Every tenth company heads a group: the next two are its regional
	// companies, the one after a branch of the first (three levels).
	switch i % 10 {
	case 1, 2:
		traits["parent"] = fmt.Sprintf("corp-%04d", i-i%10)
	case 3:
		traits["parent"] = fmt.Sprintf("corp-%04d", i-2)
	}
	g.emit(start, map[string]any{"type": "group", "userId": fmt.Sprintf("kp-%04d-0", i), "groupId": group, "traits": traits})

	// The committee: better-fitting accounts are better covered.
	people := 1 + int(fit*5) + g.pick(2)
	emails := map[string]bool{} // two namesakes at one company get two mailboxes
	for j := range min(people, len(corpRole)) {
		r := corpRole[j]
		if j == 0 && g.rng.Float64() > fit+0.2 {
			continue // no EB identified yet
		}
		sur := surnames[g.pick(len(surnames))]
		giv := givens[g.pick(len(givens))]
		uid := fmt.Sprintf("kp-%04d-%d", i, j)
		t := start.Add(time.Duration(1+g.pick(30)) * 24 * time.Hour)
		email := fmt.Sprintf("%s.%s@%s", giv.pinyin, sur.pinyin, domain)
		for n := 2; emails[email]; n++ {
			email = fmt.Sprintf("%s.%s%d@%s", giv.pinyin, sur.pinyin, n, domain)
		}
		emails[email] = true
		tr := map[string]any{"name": sur.han + giv.han, "email": email, "title": r.title, "buying_role": r.role, "level": r.level}
		if g.pick(4) == 0 {
			tr["buying_role_status"], tr["buying_role_reasoning"] = "presumed", "从组织架构图推断 inferred from the org chart"
		}
		g.emit(t, map[string]any{"type": "identify", "userId": uid, "traits": tr})
		g.emit(t.Add(time.Minute), map[string]any{"type": "group", "userId": uid, "groupId": group})
	}
	// Sales work, more where the fit is better, until the deal closes.
	acts := int(fit*18) + g.pick(4)
	t := start
	kinds := []string{"Sales Call", "Sales Visit", "Meeting Held", "Proposal Sent"}
	for range acts {
		t = t.Add(time.Duration(2+g.pick(20)) * 24 * time.Hour)
		who := fmt.Sprintf("kp-%04d-%d", i, g.pick(min(people, len(corpRole))))
		g.emit(t, map[string]any{"type": "track", "userId": who, "event": kinds[g.weighted([]float64{5, 3, 2, 1})], "properties": map[string]any{"account_id": group, "rep": "sales-" + fmt.Sprint(i%7)}})
	}
	opp := fmt.Sprintf("opp-%04d", i)
	g.emit(start.Add(10*24*time.Hour), map[string]any{"type": "track", "userId": fmt.Sprintf("kp-%04d-1", i), "event": "Opportunity Created", "properties": map[string]any{"account_id": group, "opportunity_id": opp, "amount": math.Round(revenue * 0.002)}})
	if i%4 != 3 { // a quarter are still open: the prospects to rank
		stage := "Opportunity Lost"
		if g.rng.Float64() < fit*fit*1.3 {
			stage = "Opportunity Won"
		}
		g.emit(t.Add(5*24*time.Hour), map[string]any{"type": "track", "userId": fmt.Sprintf("kp-%04d-1", i), "event": stage, "properties": map[string]any{"account_id": group, "opportunity_id": opp, "amount": math.Round(revenue * 0.002)}})
	}
	if g.pick(12) == 0 {
		g.emit(t.Add(40*24*time.Hour), map[string]any{"type": "track", "userId": fmt.Sprintf("kp-%04d-2", i), "event": "Payment Overdue", "properties": map[string]any{"account_id": group, "days": 60 + g.pick(120)}})
	}
	for range g.pick(3) * g.pick(3) {
		g.emit(t.Add(time.Duration(g.pick(60))*24*time.Hour), map[string]any{"type": "track", "userId": fmt.Sprintf("kp-%04d-2", i), "event": "Ticket Opened", "properties": map[string]any{"account_id": group, "topic": "实施 Implementation"}})
	}
}
