package needs_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/needs"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/traits"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

type env struct {
	db   *sqlite.DB
	proc *profile.Processor
	en   *needs.Enricher
	ten  *traits.Enricher
}

func open(t testing.TB) *env {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ten, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nen, err := needs.New(needs.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, en: nen, ten: ten}
	e.proc = profile.NewProcessor(db, identity.DefaultRules().Compile())
	e.proc.Now = func() time.Time { return now }
	e.proc.Enrichers = []profile.Enricher{ten, nen}
	return e
}

func (e *env) send(t testing.TB, evs ...*portrait.Event) {
	t.Helper()
	cp := make([]*portrait.Event, len(evs))
	for i, ev := range evs {
		c := *ev
		cp[i] = &c
	}
	if _, err := e.db.Append(context.Background(), cp, nil); err != nil {
		t.Fatal(err)
	}
	last, err := e.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

func (e *env) user(t testing.TB, id string) *portrait.Profile {
	t.Helper()
	p, err := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: id})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ago: an event that long before now.
func track(msg, user, name string, ago time.Duration, props string) *portrait.Event {
	at := now.Add(-ago)
	e := &portrait.Event{MessageID: msg, Type: portrait.EventTrack, Source: "web", UserID: user, Name: name, Timestamp: at, ReceivedAt: at}
	if props != "" {
		e.Properties = json.RawMessage(props)
	}
	return e
}

func value(t *testing.T, p *portrait.Profile, name string) any {
	t.Helper()
	tr, ok := p.Traits[name]
	if !ok {
		t.Fatalf("trait %s missing", name)
	}
	if tr.Source != needs.Source {
		t.Fatalf("trait %s source %q", name, tr.Source)
	}
	return tr.Value
}

// Affinity: a view 30 days ago (one half-life) counts 1 × ½, a purchase
// today 3; beauty viewed 60 days ago counts ¼, below the interest line.
func TestAffinityDecays(t *testing.T) {
	e := open(t)
	e.send(t,
		track("v1", "u", "Product Viewed", 30*day, `{"category":"数码 Electronics"}`),
		track("b1", "u", "Order Completed", 0, `{"revenue":10,"products":[{"category":"数码 Electronics"}]}`),
		track("v2", "u", "Product Viewed", 60*day, `{"category":"美妆 Beauty"}`),
	)
	p := e.user(t, "u")
	aff := value(t, p, needs.TraitAffinity).(map[string]any)
	if aff["数码 Electronics"] != 3.5 || aff["美妆 Beauty"] != 0.25 {
		t.Errorf("affinity = %v, want electronics 3.5, beauty 0.25", aff)
	}
	if got := value(t, p, needs.TraitTopCategories); !reflect.DeepEqual(got, []any{"数码 Electronics"}) {
		t.Errorf("top categories = %v", got)
	}
	if got := value(t, p, needs.TraitNeeds); !reflect.DeepEqual(got, []any{"electronics"}) {
		t.Errorf("needs = %v, want [electronics] (beauty is below min_affinity)", got)
	}
	ev := value(t, p, needs.TraitNeedsEvidence).(map[string]any)["electronics"].(map[string]any)
	if !reflect.DeepEqual(ev["events"], []any{"b1", "v1"}) || ev["source"] != "affinity" {
		t.Errorf("electronics evidence = %v, want events b1, v1 from affinity", ev)
	}
	if _, ok := p.Traits[needs.TraitPainPoints]; ok {
		t.Error("pain points without any after-sales event")
	}
}

// Stated needs from a survey and a form, in Chinese and English; each
// need names the events that said it.
func TestStatedNeeds(t *testing.T) {
	e := open(t)
	e.send(t,
		track("s1", "u", "Survey Submitted", 5*day, `{"nps":8,"needs":"理财，保险"}`),
		track("f1", "u", "Form Submitted", 2*day, `{"form":"consult","interests":["retirement planning","咖啡"]}`),
	)
	p := e.user(t, "u")
	got := value(t, p, needs.TraitNeeds).([]any)
	for _, want := range []string{"wealth_management", "risk_protection", "food"} {
		if !slices.Contains(got, any(want)) {
			t.Errorf("needs = %v, missing %s", got, want)
		}
	}
	ev := value(t, p, needs.TraitNeedsEvidence).(map[string]any)
	wm := ev["wealth_management"].(map[string]any)
	if !reflect.DeepEqual(wm["events"], []any{"f1", "s1"}) || wm["source"] != "stated" {
		t.Errorf("wealth_management evidence = %v, want f1 (retirement) and s1 (理财), stated", wm)
	}
	if said := value(t, p, needs.TraitStated); !reflect.DeepEqual(said, []any{"retirement planning", "保险", "咖啡", "理财"}) {
		t.Errorf("stated = %v", said)
	}
}

// Pain points: complaints in Chinese and English, split into words and
// grouped into topics; a low CSAT without a comment; and text no topic
// names.
func TestPainPointTopics(t *testing.T) {
	e := open(t)
	e.send(t,
		track("t1", "u", "Complaint Submitted", 9*day, `{"text":"快递太慢了，物流三天都没有更新"}`),
		track("t2", "u", "Ticket Created", 8*day, `{"subject":"Earbuds arrived broken","description":"and support was rude"}`),
		track("t3", "u", "Ticket Created", 7*day, `{"text":"包装破损，客服态度很差"}`),
		track("s1", "u", "Survey Submitted", 6*day, `{"csat":1}`),
		track("s2", "u", "Survey Submitted", 5*day, `{"csat":5,"comment":"great"}`),
		track("t4", "u", "Ticket Created", 4*day, `{"text":"发票抬头写错了"}`),
	)
	p := e.user(t, "u")
	ev := value(t, p, needs.TraitPainEvidence).(map[string]any)
	want := map[string][]any{
		"delivery":         {"t2", "t1"}, // 快递, 物流; arrived
		"quality":          {"t3", "t2"}, // 破损; broken
		"service":          {"t3", "t2"}, // 客服, 态度; support, rude
		"low_satisfaction": {"s1"},
		"other":            {"t4"},
	}
	for topic, ids := range want {
		got, ok := ev[topic].(map[string]any)
		if !ok {
			t.Errorf("topic %s missing; topics %v", topic, ev)
			continue
		}
		if !reflect.DeepEqual(got["events"], ids) {
			t.Errorf("topic %s events = %v, want %v", topic, got["events"], ids)
		}
	}
	if len(ev) != len(want) {
		t.Errorf("topics = %v, want exactly %v", ev, want)
	}
	// "other" keeps its words so that a topic can be made of them
	terms := ev["other"].(map[string]any)["terms"].([]any)
	if !slices.Contains(terms, any("发票")) {
		t.Errorf("other terms = %v, want 发票 among them", terms)
	}
	if top := value(t, p, needs.TraitPainPoints).([]any); len(top) != 5 {
		t.Errorf("pain points = %v", top)
	}
}

func TestTokens(t *testing.T) {
	got, err := needs.Tokens("快递太慢了! The parcel ARRIVED late; 物流没更新")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"快递", "parcel", "arrived", "late", "物流"} {
		if !slices.Contains(got, w) {
			t.Errorf("tokens %v: missing %q", got, w)
		}
	}
	for _, w := range []string{"the", "了"} {
		if slices.Contains(got, w) {
			t.Errorf("tokens %v: stop word %q kept", got, w)
		}
	}
}

func needTraits(p *portrait.Profile) map[string]portrait.Trait {
	out := map[string]portrait.Trait{}
	for k, v := range p.Traits {
		if v.Source == needs.Source {
			out[k] = v
		}
	}
	return out
}

// A rebuild in another order gives the same needs.
func TestAnyOrderSameNeeds(t *testing.T) {
	evs := []*portrait.Event{
		track("v1", "u", "Product Viewed", 30*day, `{"category":"数码 Electronics"}`),
		track("v2", "u", "Product Viewed", 3*day, `{"category":"运动 Sports"}`),
		track("b1", "u", "Order Completed", 1*day, `{"revenue":10,"products":[{"category":"运动 Sports"},{"category":"数码 Electronics"}]}`),
		track("s1", "u", "Survey Submitted", 5*day, `{"needs":"性价比","csat":2,"comment":"价格太贵"}`),
		track("t1", "u", "Complaint Submitted", 9*day, `{"text":"delivery was late"}`),
	}
	a := open(t)
	a.send(t, evs...)
	for round := range 3 {
		r := rand.New(rand.NewPCG(uint64(round), 3))
		sh := append([]*portrait.Event(nil), evs...)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		b := open(t)
		for _, ev := range sh {
			b.send(t, ev)
		}
		if x, y := needTraits(a.user(t, "u")), needTraits(b.user(t, "u")); !reflect.DeepEqual(x, y) {
			t.Fatalf("round %d: needs differ\n%v\n%v", round, x, y)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(c *needs.Config){
		func(c *needs.Config) { c.HalfLife = 0 },
		func(c *needs.Config) { c.Needs = append(c.Needs, c.Needs[0]) },
		func(c *needs.Config) { c.Topics = append(c.Topics, needs.Topic{Key: "other", Keywords: []string{"x"}}) },
		func(c *needs.Config) { c.Topics = append(c.Topics, needs.Topic{Key: "empty"}) },
		func(c *needs.Config) { c.Needs[0].Key = "Bad Key" },
	}
	for i, f := range bad {
		c := needs.DefaultConfig()
		f(&c)
		if _, err := needs.New(c); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("case %d: err = %v, want invalid", i, err)
		}
	}
}
