// Package needs makes the needs-and-preferences dimension of a portrait
// explicit: interests as category affinity scores from views and purchases
// with time decay, stated needs from survey answers and form fields, and
// pain points from after-sales events (complaints, tickets, low CSAT)
// grouped into topics. Chinese text is split into words by gse (a
// maintained Go port of the jieba segmenter, dictionary embedded), other
// text by words. A configurable taxonomy maps all three onto named needs,
// and each need on a profile carries its evidence: the events it came from.
package needs

import (
	"regexp"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Source is the Source of the traits this package writes.
const Source = "needs"

// Trait names.
const (
	TraitAffinity      = "category_affinity"    // {category: score}
	TraitTopCategories = "top_categories"       // categories with a score ≥ MinAffinity, best first
	TraitNeeds         = "needs"                // need keys, strongest first
	TraitNeedsEvidence = "needs_evidence"       // {need: {source, score, events}}
	TraitStated        = "stated_needs"         // what the customer said, as said
	TraitPainPoints    = "pain_points"          // topic keys, most frequent first
	TraitPainEvidence  = "pain_points_evidence" // {topic: {count, events, terms}}
)

// Need is one entry of the needs taxonomy.
type Need struct {
	Key     string `json:"key" yaml:"key"`
	LabelZh string `json:"label_zh" yaml:"label_zh"`
	LabelEn string `json:"label_en" yaml:"label_en"`
	// Categories whose affinity shows the need (matched case-insensitively
	// as a substring of the category, so "Electronics" finds
	// "数码 Electronics").
	Categories []string `json:"categories,omitempty" yaml:"categories"`
	// Keywords of stated answers that name the need.
	Keywords []string `json:"keywords,omitempty" yaml:"keywords"`
}

// Topic is a pain-point topic: the words that put a complaint in it.
type Topic struct {
	Key      string   `json:"key" yaml:"key"`
	LabelZh  string   `json:"label_zh" yaml:"label_zh"`
	LabelEn  string   `json:"label_en" yaml:"label_en"`
	Keywords []string `json:"keywords" yaml:"keywords"`
}

// Topic keys that are not in the taxonomy.
const (
	TopicOther           = "other"            // a complaint no topic's words name
	TopicLowSatisfaction = "low_satisfaction" // a low CSAT without a comment
)

// Config says which events show what.
type Config struct {
	ViewEvents     []string `json:"view_events" yaml:"view_events"`
	PurchaseEvents []string `json:"purchase_events" yaml:"purchase_events"`
	ViewWeight     float64  `json:"view_weight" yaml:"view_weight"`
	PurchaseWeight float64  `json:"purchase_weight" yaml:"purchase_weight"`
	// HalfLife: an interest shown this long ago counts half.
	HalfLife time.Duration `json:"half_life" yaml:"half_life"`
	// CategoryProperty names the category (also read from
	// properties.products[].category).
	CategoryProperty string `json:"category_property" yaml:"category_property"`
	// MinAffinity: the score from which a category is an interest and its
	// need a need (a purchase this week scores about PurchaseWeight).
	MinAffinity float64 `json:"min_affinity" yaml:"min_affinity"`

	// StatedEvents carry stated needs in StatedFields (a string or a list)
	// and free text in TextFields.
	StatedEvents []string `json:"stated_events" yaml:"stated_events"`
	StatedFields []string `json:"stated_fields" yaml:"stated_fields"`
	TextFields   []string `json:"text_fields" yaml:"text_fields"`

	// AfterSalesEvents are complaints and tickets: their text is a pain
	// point. A survey answer with csat ≤ LowCSAT is one too.
	AfterSalesEvents []string `json:"after_sales_events" yaml:"after_sales_events"`
	SurveyEvents     []string `json:"survey_events" yaml:"survey_events"`
	LowCSAT          int      `json:"low_csat" yaml:"low_csat"`

	// Dictionary is a gse dictionary file for Chinese text ("": the compact
	// one embedded, see words.txt).
	Dictionary string `json:"dictionary,omitempty" yaml:"dictionary"`

	Needs  []Need  `json:"needs" yaml:"needs"`
	Topics []Topic `json:"topics" yaml:"topics"`
}

// DefaultConfig is a retail and financial-services taxonomy (the seeds'
// insurance and wealth-management example among them).
func DefaultConfig() Config {
	return Config{
		ViewEvents: []string{"Product Viewed"}, PurchaseEvents: []string{"Order Completed", "Policy Purchased"},
		ViewWeight: 1, PurchaseWeight: 3, HalfLife: 30 * 24 * time.Hour, CategoryProperty: "category", MinAffinity: 1,
		StatedEvents: []string{"Survey Submitted", "Survey Completed", "Form Submitted", "Consultation Requested"},
		StatedFields: []string{"needs", "need", "interests", "interest", "goal"},
		TextFields:   []string{"comment", "text", "description", "content", "subject", "reason", "message", "topic"},
		AfterSalesEvents: []string{"Complaint Submitted", "Ticket Created", "Ticket Opened", "Support Ticket Opened", "Return Requested",
			"Order Refunded", "Claim Filed"},
		SurveyEvents: []string{"Survey Submitted", "Survey Completed", "NPS Survey Submitted"},
		LowCSAT:      2,
		Needs: []Need{
			{Key: "electronics", LabelZh: "数码科技", LabelEn: "Electronics", Categories: []string{"electronics", "数码"}, Keywords: []string{"手机", "电脑", "耳机", "数码", "phone", "laptop", "electronics"}},
			{Key: "sports_health", LabelZh: "运动健康", LabelEn: "Sports & health", Categories: []string{"sports", "运动"}, Keywords: []string{"运动", "健身", "跑步", "健康", "fitness", "sports", "running", "health"}},
			{Key: "beauty", LabelZh: "美妆护肤", LabelEn: "Beauty", Categories: []string{"beauty", "美妆"}, Keywords: []string{"护肤", "美妆", "化妆", "skincare", "beauty"}},
			{Key: "family_baby", LabelZh: "家庭育儿", LabelEn: "Family & baby", Categories: []string{"baby", "母婴"}, Keywords: []string{"宝宝", "育儿", "母婴", "孩子", "baby", "kids", "family"}},
			{Key: "home_living", LabelZh: "家居生活", LabelEn: "Home living", Categories: []string{"home", "家电", "家居"}, Keywords: []string{"家电", "家居", "厨房", "home", "kitchen"}},
			{Key: "food", LabelZh: "食品饮料", LabelEn: "Food & grocery", Categories: []string{"grocery", "食品"}, Keywords: []string{"咖啡", "食品", "零食", "coffee", "food", "grocery"}},
			{Key: "reading", LabelZh: "阅读学习", LabelEn: "Reading & learning", Categories: []string{"books", "图书"}, Keywords: []string{"图书", "阅读", "学习", "books", "reading"}},
			{Key: "value_for_money", LabelZh: "性价比", LabelEn: "Value for money", Keywords: []string{"优惠", "折扣", "便宜", "价格", "性价比", "discount", "price", "cheap", "deal", "coupon"}},
			{Key: "fast_delivery", LabelZh: "快速配送", LabelEn: "Fast delivery", Keywords: []string{"配送", "快递", "送货", "当日达", "delivery", "shipping"}},
			{Key: "wealth_management", LabelZh: "财富管理", LabelEn: "Wealth management", Categories: []string{"wealth", "理财", "基金"}, Keywords: []string{"理财", "投资", "财富", "养老", "invest", "wealth", "retirement"}},
			{Key: "risk_protection", LabelZh: "风险保障", LabelEn: "Risk protection", Categories: []string{"insurance", "保险"}, Keywords: []string{"保险", "保障", "医疗", "insurance", "protection", "cover"}},
		},
		Topics: []Topic{
			{Key: "delivery", LabelZh: "物流配送", LabelEn: "Delivery", Keywords: []string{"物流", "快递", "配送", "发货", "送货", "延迟", "迟迟", "delivery", "shipping", "late", "delayed", "courier", "arrived"}},
			{Key: "quality", LabelZh: "产品质量", LabelEn: "Product quality", Keywords: []string{"质量", "破损", "损坏", "坏了", "瑕疵", "故障", "漏液", "broken", "defective", "damaged", "quality", "faulty", "stopped"}},
			{Key: "service", LabelZh: "服务态度", LabelEn: "Service", Keywords: []string{"客服", "态度", "服务", "回复", "没人", "rude", "support", "service", "response", "unhelpful", "waiting"}},
			{Key: "refund", LabelZh: "退款退货", LabelEn: "Refunds & returns", Keywords: []string{"退款", "退货", "退钱", "换货", "refund", "return", "exchange"}},
			{Key: "price", LabelZh: "价格费用", LabelEn: "Price & fees", Keywords: []string{"价格", "太贵", "收费", "扣费", "降价", "price", "expensive", "overcharged", "charged", "fee"}},
			{Key: "claims", LabelZh: "理赔", LabelEn: "Claims", Keywords: []string{"理赔", "赔付", "claim", "payout"}},
		},
	}
}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate checks c.
func (c *Config) Validate() error {
	if !(c.HalfLife > 0) {
		return portrait.Errorf(portrait.EINVALID, "needs: half_life must be positive")
	}
	if c.ViewWeight < 0 || c.PurchaseWeight < 0 {
		return portrait.Errorf(portrait.EINVALID, "needs: weights cannot be negative")
	}
	seen := map[string]bool{}
	for _, n := range c.Needs {
		if !keyRE.MatchString(n.Key) {
			return portrait.Errorf(portrait.EINVALID, "needs: need key %q: use lower case letters, digits and _", n.Key)
		}
		if seen[n.Key] {
			return portrait.Errorf(portrait.EINVALID, "needs: need %q is declared twice", n.Key)
		}
		seen[n.Key] = true
	}
	seen = map[string]bool{TopicOther: true, TopicLowSatisfaction: true}
	for _, t := range c.Topics {
		if !keyRE.MatchString(t.Key) {
			return portrait.Errorf(portrait.EINVALID, "needs: topic key %q: use lower case letters, digits and _", t.Key)
		}
		if seen[t.Key] {
			return portrait.Errorf(portrait.EINVALID, "needs: topic %q is declared twice or reserved", t.Key)
		}
		seen[t.Key] = true
		if len(t.Keywords) == 0 {
			return portrait.Errorf(portrait.EINVALID, "needs: topic %q has no keywords", t.Key)
		}
	}
	return nil
}

// Label names a need or topic key in lang (zh or en); unknown keys stay.
func (c Config) Label(key, lang string) string {
	pick := func(zh, en string) string {
		if lang == "zh" && zh != "" {
			return zh
		}
		if en != "" {
			return en
		}
		return key
	}
	for _, n := range c.Needs {
		if n.Key == key {
			return pick(n.LabelZh, n.LabelEn)
		}
	}
	for _, t := range c.Topics {
		if t.Key == key {
			return pick(t.LabelZh, t.LabelEn)
		}
	}
	switch key {
	case TopicOther:
		return pick("其他", "Other")
	case TopicLowSatisfaction:
		return pick("满意度低", "Low satisfaction")
	}
	return key
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}
