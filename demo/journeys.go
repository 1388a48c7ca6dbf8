package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The service path the customer business map draws: consultations before
// buying (on WeChat, by phone, on the web or in a store), surveys in which
// customers state what they need, and after-sales tickets with complaints
// written as customers write them, in Chinese and in English.
var (
	consultChannels = []string{"wechat", "wechat", "phone", "web", "store"}
	consultTopics   = map[bool][]string{
		true:  {"想了解一下这款产品的功能", "有没有优惠活动？", "什么时候能发货？", "能开发票吗？", "想咨询理财和保险方案", "适合送礼吗？"},
		false: {"Does this come with a warranty?", "Is there a discount this week?", "How fast is delivery to my city?", "Which model suits a family?", "Can I pay in instalments?"},
	}
	// stated needs by favourite category: what a customer of that taste
	// says when asked what they are looking for
	statedByCategory = map[string][]string{
		"数码 Electronics": {"数码", "性价比", "electronics"},
		"运动 Sports":      {"健身", "运动", "fitness"},
		"美妆 Beauty":      {"护肤", "美妆", "skincare"},
		"食品 Grocery":     {"咖啡", "零食", "food"},
		"母婴 Baby":        {"宝宝", "育儿", "baby"},
		"家电 Home":        {"家电", "厨房", "home"},
		"图书 Books":       {"阅读", "学习", "books"},
	}
	generalNeeds = []string{"优惠", "快速配送", "理财", "保险", "性价比", "delivery", "discount", "retirement"}
	complaints   = map[bool][]string{
		true: {"快递太慢了，物流三天都没有更新", "包装破损，商品有划痕", "客服态度很差，问题一直没人回复", "申请退款一周了还没到账",
			"收到的产品有质量问题，用了两天就坏了", "价格比别家贵，降价了也不退差价", "发票抬头开错了", "配送员没打电话就放门口了"},
		false: {"The parcel arrived late and the tracking never updated", "Item arrived broken, the box was damaged",
			"Support was rude and never replied to my emails", "Still waiting for my refund after two weeks",
			"The product stopped working after three days", "I was overcharged, the price dropped the next day", "Wrong invoice details"},
	}
)

// journeys adds consults, stated-need surveys and after-sales complaints to
// a customer whose history was just generated (the last events of
// g.events). It draws from a generator of its own, so the rest of the demo
// is the same with or without it, and its message ids are its own.
func (g *gen) journeys(c *customer) {
	r := rand.New(rand.NewPCG(uint64(c.firstSeen.UnixNano()), uint64(c.i)^0x6a09e667f3bcc909))
	k := 0
	emit := func(t time.Time, e map[string]any) {
		if t.After(g.asOf) {
			return
		}
		k++
		e["messageId"] = fmt.Sprintf("demo-j-%05d-%02d", c.i, k)
		e["timestamp"] = g.at(t)
		if _, ok := e["context"]; !ok {
			e["context"] = map[string]any{"library": map[string]any{"name": "portrait-demo", "version": "1"}, "locale": "zh-CN"}
		}
		g.events = append(g.events, e)
	}
	// this customer's orders, from the events just generated
	var orders []time.Time
	anon := fmt.Sprintf("anon-%05d-", c.i)
	for i := len(g.events) - 1; i >= 0; i-- {
		e := g.events[i]
		a, _ := e["anonymousId"].(string)
		if e["userId"] != c.userID && !strings.HasPrefix(a, anon) && a != fmt.Sprintf("pos-%05d", c.i) {
			break
		}
		if e["event"] == "Order Completed" && e["userId"] == c.userID {
			if t, err := time.Parse("2006-01-02T15:04:05.000Z", e["timestamp"].(string)); err == nil {
				orders = append(orders, t)
			}
		}
	}
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	cat := products[c.favCategory].category
	// Most customers ask before buying; those who ask but never buy are
	// the consult stage's drop-off.
	if r.Float64() < 0.55 {
		t := c.firstSeen.Add(time.Duration(10+r.IntN(48)) * time.Hour)
		props := map[string]any{"channel": pick(consultChannels), "question": pick(consultTopics[c.chinese])}
		if r.Float64() < 0.6 {
			props["interests"] = []string{pick(statedByCategory[cat])}
		}
		emit(t, map[string]any{"type": "track", "userId": c.userID, "event": "Consultation Requested", "properties": props, "context": sdkContext(0)})
		// some ask again before a later order
		if len(orders) > 1 && r.Float64() < 0.3 {
			o := orders[r.IntN(len(orders))]
			emit(o.Add(-time.Duration(1+r.IntN(72))*time.Hour), map[string]any{"type": "track", "userId": c.userID, "event": "Chat Started",
				"properties": map[string]any{"channel": "wechat", "question": pick(consultTopics[c.chinese])}, "context": sdkContext(0)})
		}
	}
	// A needs survey: what are you looking for?
	if r.Float64() < 0.3 {
		t := c.firstSeen.Add(time.Duration(24+r.IntN(24*60)) * time.Hour)
		stated := []string{pick(statedByCategory[cat])}
		if r.Float64() < 0.5 {
			stated = append(stated, pick(generalNeeds))
		}
		emit(t, map[string]any{"type": "track", "userId": c.userID, "event": "Survey Completed", "properties": map[string]any{"survey": "needs", "needs": stated}})
	}
	// After-sales: a complaint after some orders, then often a low CSAT.
	for _, o := range orders {
		if r.Float64() >= 0.14 {
			continue
		}
		t := o.Add(time.Duration(48+r.IntN(24*8)) * time.Hour)
		emit(t, map[string]any{"type": "track", "userId": c.userID, "event": "Ticket Opened",
			"properties": map[string]any{"channel": []string{"phone", "wechat", "web"}[r.IntN(3)], "description": pick(complaints[c.chinese])}})
		if r.Float64() < 0.5 {
			emit(t.Add(time.Duration(24+r.IntN(72))*time.Hour), map[string]any{"type": "track", "userId": c.userID, "event": "Survey Completed",
				"properties": map[string]any{"survey": "csat", "csat": 1 + r.IntN(3)}})
		}
	}
}
