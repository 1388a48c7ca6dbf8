package journey_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/journey"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/traits"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

type env struct {
	db   *sqlite.DB
	proc *profile.Processor
	now  time.Time
}

// open runs the journey enricher after the traits enricher, as serve does:
// the traits enricher must leave journey traits alone.
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
	jen, err := journey.New(journey.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, now: t0.Add(30 * day)}
	e.proc = profile.NewProcessor(db, identity.DefaultRules().Compile())
	e.proc.Now = func() time.Time { return e.now }
	e.proc.Enrichers = []profile.Enricher{ten, jen}
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

func track(msg, user, name string, at time.Duration, props string) *portrait.Event {
	e := &portrait.Event{MessageID: msg, Type: portrait.EventTrack, Source: "web", UserID: user, Name: name, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	if props != "" {
		e.Properties = json.RawMessage(props)
	}
	return e
}

// stream is one customer's known path: consults on the web, a purchase in
// the app, a survey, an after-sales ticket and a consult again.
func stream(user string) []*portrait.Event {
	return []*portrait.Event{
		track(user+"-c1", user, "Consultation Requested", 0, `{"channel":"web"}`),
		track(user+"-c2", user, "Chat Started", 1*day, `{"channel":"wechat"}`),
		track(user+"-v", user, "Product Viewed", 2*day, `{"category":"数码 Electronics"}`),
		track(user+"-p1", user, "Order Completed", 3*day, `{"revenue":100,"channel":"app"}`),
		track(user+"-s1", user, "Survey Submitted", 4*day, `{"nps":9,"csat":5}`),
		track(user+"-t1", user, "Ticket Created", 10*day, `{"channel":"phone","text":"快递太慢了"}`),
		track(user+"-s2", user, "Survey Submitted", 11*day, `{"csat":2}`),
		track(user+"-c3", user, "Consultation Requested", 20*day, `{"channel":"web"}`),
	}
}

func value(t *testing.T, p *portrait.Profile, name string) any {
	t.Helper()
	tr, ok := p.Traits[name]
	if !ok {
		t.Fatalf("trait %s missing", name)
	}
	if tr.Source != journey.Source {
		t.Fatalf("trait %s source %q, want %q", name, tr.Source, journey.Source)
	}
	return tr.Value
}

func TestKnownStream(t *testing.T) {
	e := open(t)
	e.send(t, stream("u1")...)
	p := e.user(t, "u1")
	if got := value(t, p, journey.TraitStage); got != "consult" {
		t.Errorf("stage = %v, want consult (a new consult after the ticket)", got)
	}
	if tr := p.Traits[journey.TraitStage]; tr.MessageID != "u1-c3" || !tr.Time.Equal(t0.Add(20*day)) {
		t.Errorf("stage provenance = %s at %v, want u1-c3 at day 20", tr.MessageID, tr.Time)
	}
	if got := value(t, p, journey.TraitReached); !reflect.DeepEqual(got, []any{"consult", "purchase", "after_sales"}) {
		t.Errorf("reached = %v", got)
	}
	hist := value(t, p, journey.TraitHistory).([]any)
	var stages []string
	for _, h := range hist {
		stages = append(stages, h.(map[string]any)["stage"].(string))
	}
	if want := []string{"consult", "purchase", "after_sales", "consult"}; !reflect.DeepEqual(stages, want) {
		t.Errorf("history = %v, want %v", stages, want)
	}
	// consult: days 0-3 and 20-30; purchase 3-10; after-sales 10-20.
	for stage, want := range map[string]float64{"consult": 13, "purchase": 7, "after_sales": 10} {
		if got := value(t, p, journey.DaysIn(stage)); got != want {
			t.Errorf("days in %s = %v, want %v", stage, got, want)
		}
	}
	if got := value(t, p, journey.DaysTo("consult", "purchase")); got != 3.0 {
		t.Errorf("days consult→purchase = %v, want 3", got)
	}
	if got := value(t, p, journey.DaysTo("purchase", "after_sales")); got != 7.0 {
		t.Errorf("days purchase→after_sales = %v, want 7", got)
	}
	for stage, want := range map[string]string{"consult": "web", "purchase": "app", "after_sales": "phone"} {
		if got := value(t, p, journey.ChannelOf(stage)); got != want {
			t.Errorf("channel of %s = %v, want %v", stage, got, want)
		}
	}
	if got := value(t, p, journey.NPSAt("purchase")); got != 9.0 {
		t.Errorf("nps at purchase = %v, want 9", got)
	}
	if got := value(t, p, journey.CSATAt("after_sales")); got != 2.0 {
		t.Errorf("csat at after_sales = %v, want 2", got)
	}
	if _, ok := p.Traits[journey.NPSAt("after_sales")]; ok {
		t.Error("no NPS was answered in after-sales")
	}
	// the traits enricher's own traits are still there beside
	if _, ok := p.Traits["purchase_count"]; !ok {
		t.Error("purchase_count missing: the enrichers must not remove each other's traits")
	}
	// As of a later time the current stage lasts longer.
	e.now = t0.Add(40 * day)
	if _, err := e.proc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := value(t, e.user(t, "u1"), journey.DaysIn("consult")); got != 23.0 {
		t.Errorf("days in consult 10 days later = %v, want 23", got)
	}
}

// journeyTraits is the part of a profile this package writes.
func journeyTraits(p *portrait.Profile) map[string]portrait.Trait {
	out := map[string]portrait.Trait{}
	for k, v := range p.Traits {
		if v.Source == journey.Source {
			out[k] = v
		}
	}
	return out
}

// A rebuild (another arrival order, other batches) gives the same path.
func TestAnyOrderSamePath(t *testing.T) {
	evs := append(stream("u1"), stream("u2")...)
	a := open(t)
	a.send(t, evs...)
	for round := range 3 {
		r := rand.New(rand.NewPCG(uint64(round), 7))
		sh := append([]*portrait.Event(nil), evs...)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		b := open(t)
		cut := r.IntN(len(sh))
		b.send(t, sh[:cut]...)
		b.send(t, sh[cut:]...)
		for _, u := range []string{"u1", "u2"} {
			if x, y := journeyTraits(a.user(t, u)), journeyTraits(b.user(t, u)); !reflect.DeepEqual(x, y) {
				t.Fatalf("round %d %s: paths differ\n in order: %v\nshuffled: %v", round, u, x, y)
			}
		}
	}
}

// Two anonymous visitors who turn out to be one customer: the merged
// profile's path is the one of all their events.
func TestMergeJoinsPaths(t *testing.T) {
	e := open(t)
	c := track("m-c", "", "Consultation Requested", 0, `{"channel":"web"}`)
	c.AnonymousID = "anon-1"
	p := track("m-p", "", "Order Completed", 2*day, `{"revenue":5}`)
	p.AnonymousID = "anon-2"
	e.send(t, c, p)
	link := func(msg, anon string, at time.Duration) *portrait.Event {
		return &portrait.Event{MessageID: msg, Type: portrait.EventIdentify, Source: "web", UserID: "m", AnonymousID: anon, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	}
	e.send(t, link("m-i1", "anon-1", 5*day), link("m-i2", "anon-2", 6*day))
	pr := e.user(t, "m")
	if got := value(t, pr, journey.TraitReached); !reflect.DeepEqual(got, []any{"consult", "purchase"}) {
		t.Errorf("reached after merge = %v", got)
	}
	if got := value(t, pr, journey.DaysTo("consult", "purchase")); got != 2.0 {
		t.Errorf("days consult→purchase after merge = %v, want 2", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]journey.Config{
		"no stages":   {},
		"bad name":    {Stages: []journey.Stage{{Name: "Consult!", Patterns: []journey.Pattern{{Event: "x"}}}}},
		"no patterns": {Stages: []journey.Stage{{Name: "consult"}}},
		"match all":   {Stages: []journey.Stage{{Name: "consult", Patterns: []journey.Pattern{{}}}}},
		"twice":       {Stages: []journey.Stage{{Name: "a", Patterns: []journey.Pattern{{Event: "x"}}}, {Name: "a", Patterns: []journey.Pattern{{Event: "y"}}}}},
		"bad value":   {Stages: []journey.Stage{{Name: "a", Patterns: []journey.Pattern{{Event: "x", Properties: map[string]any{"k": map[string]any{}}}}}}},
	} {
		if _, err := journey.New(c); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
}

// Patterns match on properties and channels.
func TestPatternProperties(t *testing.T) {
	cfg := journey.Config{Stages: []journey.Stage{
		{Name: "consult", Patterns: []journey.Pattern{{Event: "Form Submitted", Properties: map[string]any{"form": []any{"consult", "quote"}}}}},
		{Name: "purchase", Patterns: []journey.Pattern{{Event: "Order Completed", Channels: []string{"store"}}}},
	}}
	jen, err := journey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &portrait.Profile{ID: "x", Traits: map[string]portrait.Trait{}}
	for _, ev := range []*portrait.Event{
		track("a", "x", "Form Submitted", 0, `{"form":"newsletter"}`),
		track("b", "x", "Form Submitted", day, `{"form":"quote"}`),
		track("c", "x", "Order Completed", 2*day, `{"channel":"app"}`),
		track("d", "x", "Order Completed", 3*day, `{"channel":"store"}`),
	} {
		var props map[string]any
		_ = json.Unmarshal(ev.Properties, &props)
		jen.Event(p, ev, props)
	}
	jen.Finish(p, t0.Add(5*day))
	path := jen.PathOf(p, t0.Add(5*day))
	if len(path.History) != 2 || path.History[0].MessageID != "b" || path.History[1].MessageID != "d" {
		t.Fatalf("history = %+v, want b (quote form) then d (store order)", path.History)
	}
}
