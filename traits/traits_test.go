package traits_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	db   *sqlite.DB
	proc *profile.Processor
	en   *traits.Enricher
	now  time.Time
}

func open(t testing.TB, dir string, defs ...traits.Definition) *env {
	t.Helper()
	sqlitetest.Seed(t, dir) // an empty dir gets a migrated store
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rules := identity.DefaultRules()
	rules.Limits["email"] = 2
	en, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := en.SetDefinitions(defs); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, en: en, now: t0}
	e.proc = profile.NewProcessor(db, rules.Compile())
	e.proc.Now = func() time.Time { return e.now }
	e.proc.Enrichers = []profile.Enricher{en}
	return e
}

func (e *env) send(t testing.TB, evs ...*portrait.Event) {
	t.Helper()
	cp := make([]*portrait.Event, len(evs))
	for i, ev := range evs {
		c := *ev
		c.Seq = 0
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

func (e *env) refresh(t testing.TB, at time.Time) {
	t.Helper()
	e.now = at
	if _, err := e.proc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func track(msg, user, name string, at time.Duration, props string) *portrait.Event {
	e := &portrait.Event{MessageID: msg, Type: portrait.EventTrack, Source: "web", UserID: user, Name: name, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	if props != "" {
		e.Properties = json.RawMessage(props)
	}
	return e
}

const day = 24 * time.Hour

func num(t testing.TB, p *portrait.Profile, name string) float64 {
	t.Helper()
	tr, ok := p.Traits[name]
	if !ok {
		t.Fatalf("trait %s missing; traits: %v", name, keys(p.Traits))
	}
	f, ok := tr.Value.(float64)
	if !ok {
		t.Fatalf("trait %s = %#v, not a number", name, tr.Value)
	}
	return f
}

func keys(m map[string]portrait.Trait) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestKnownStream(t *testing.T) {
	e := open(t, t.TempDir(),
		traits.Definition{Name: "orders_30d", Aggregate: "count", Event: "Order Completed", Window: "30d"},
		traits.Definition{Name: "big_orders", Aggregate: "count", Event: "Order Completed", Filter: "properties.revenue > 60"},
		traits.Definition{Name: "order_total", Aggregate: "sum", Event: "Order Completed", Property: "revenue"},
		traits.Definition{Name: "mean_order", Aggregate: "avg", Event: "Order Completed", Property: "revenue"},
		traits.Definition{Name: "max_order", Aggregate: "max", Event: "Order Completed", Property: "revenue"},
		traits.Definition{Name: "min_order", Aggregate: "min", Event: "Order Completed", Property: "revenue"},
		traits.Definition{Name: "first_cat", Aggregate: "first", Event: "Order Completed", Property: "category"},
		traits.Definition{Name: "last_cat", Aggregate: "last", Event: "Order Completed", Property: "category"},
		traits.Definition{Name: "top_cat", Aggregate: "most_frequent", Event: "Order Completed", Property: "category"},
		traits.Definition{Name: "cats", Aggregate: "unique", Event: "Order Completed", Property: "category"},
		traits.Definition{Name: "n_cats", Aggregate: "distinct_count", Event: "Order Completed", Property: "category"},
		traits.Definition{Name: "spend_30d", Aggregate: "sum", Event: "Order Completed", Property: "revenue", Window: "30d"},
	)
	e.now = t0.Add(12 * day)
	// Sent out of order on purpose: the result is defined by event time.
	e.send(t,
		track("o3", "u1", "Order Completed", 10*day, `{"revenue":20,"category":"books"}`),
		&portrait.Event{MessageID: "v1", Type: portrait.EventPage, Source: "web", UserID: "u1", Timestamp: t0, ReceivedAt: t0},
		track("o1", "u1", "Order Completed", time.Hour, `{"revenue":100,"category":"books"}`),
	)
	e.send(t,
		track("o2", "u1", "Order Completed", 2*day, `{"total":50.5,"revenue":70,"category":"music","channel":"app"}`),
		track("s1", "u1", "Survey Submitted", 11*day, `{"nps":9,"csat":4,"comment":"很好"}`),
		track("s0", "u1", "Survey Submitted", 3*day, `{"nps":3,"csat":2}`),
		track("s2", "u1", "Survey Submitted", 11*day+time.Hour, `{"nps":11}`), // out of range: not an answer
	)
	p := e.user(t, "u1")
	want := map[string]any{
		"purchase_count": 3.0, "revenue": 190.0, "avg_order_value": 190.0 / 3, "favourite_category": "books",
		"preferred_channel": "web", "sessions": 7.0, // no two visits are within 30 minutes
		"orders_30d": 3.0, "big_orders": 2.0, "order_total": 190.0, "mean_order": 190.0 / 3, "max_order": 100.0, "min_order": 20.0,
		"first_cat": "books", "last_cat": "books", "top_cat": "books", "cats": []any{"books", "music"}, "n_cats": 2.0,
		"spend_30d": 190.0, "lifecycle_stage": "repeat", "nps_score": 9.0, "nps_category": "promoter", "csat_score": 4.0,
		"feedback_comment": "很好", "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-12T01:00:00Z",
		"days_since_last_purchase": 2.0,
	}
	for name, w := range want {
		if got := p.Traits[name].Value; !reflect.DeepEqual(got, w) {
			if gf, ok := got.(float64); !ok || math.Abs(gf-w.(float64)) > 1e-9 {
				t.Errorf("%s = %#v, want %#v", name, got, w)
			}
		}
	}
	// Provenance: the event that determined each value.
	for name, msg := range map[string]string{"revenue": "o3", "max_order": "o1", "min_order": "o3", "first_cat": "o1",
		"last_cat": "o3", "nps_score": "s1", "first_seen": "v1", "lifecycle_stage": "o2", "favourite_category": "o3"} {
		tr := p.Traits[name]
		if tr.MessageID != msg || tr.Source != traits.SourceComputed {
			t.Errorf("%s provenance: message %q source %q, want %q computed", name, tr.MessageID, tr.Source, msg)
		}
	}
	if got := p.Traits["revenue"].Time; !got.Equal(t0.Add(10 * day)) {
		t.Errorf("revenue time %v, want the last order's time", got)
	}
	if _, ok := p.Traits["rfm_r"]; ok {
		t.Error("rfm_r present before any boundaries were computed")
	}

	// The window expires with the clock, not with events.
	e.refresh(t, t0.Add(35*day))
	p = e.user(t, "u1")
	if got := num(t, p, "orders_30d"); got != 1 {
		t.Errorf("orders_30d at day 35 = %v, want 1 (only the day-10 order)", got)
	}
	if got := num(t, p, "spend_30d"); got != 20 {
		t.Errorf("spend_30d at day 35 = %v, want 20", got)
	}
	if got := num(t, p, "order_total"); got != 190 {
		t.Errorf("all-time order_total changed with the clock: %v", got)
	}
	e.refresh(t, t0.Add(50*day))
	if got := num(t, e.user(t, "u1"), "orders_30d"); got != 0 {
		t.Errorf("orders_30d at day 50 = %v, want 0", got)
	}

	// Lifecycle by time: at risk 180 days after the last order, churned
	// after 365, with the transitions kept.
	e.refresh(t, t0.Add(200*day))
	if got := e.user(t, "u1").Traits["lifecycle_stage"]; got.Value != "at_risk" || !got.Time.Equal(t0.Add(190*day)) {
		t.Errorf("stage at day 200: %+v, want at_risk since day 190", got)
	}
	e.refresh(t, t0.Add(400*day))
	p = e.user(t, "u1")
	if got := p.Traits["lifecycle_stage"].Value; got != "churned" {
		t.Errorf("stage at day 400 = %v, want churned", got)
	}
	var stages []string
	for _, h := range p.Traits["lifecycle_history"].Value.([]any) {
		stages = append(stages, h.(map[string]any)["stage"].(string))
	}
	if strings.Join(stages, ",") != "prospect,new,repeat,at_risk,churned" {
		t.Errorf("history %v", stages)
	}
	// A purchase brings the customer back.
	e.send(t, track("o4", "u1", "Order Completed", 400*day, `{"revenue":5}`))
	if got := e.user(t, "u1").Traits["lifecycle_stage"].Value; got != "loyal" {
		t.Errorf("stage after a 4th purchase = %v, want loyal", got)
	}
}

func TestRFMScoresAgainstBoundaries(t *testing.T) {
	e := open(t, t.TempDir())
	e.now = t0.Add(100 * day)
	// Five customers: customer i bought i times, the last time i*10 days
	// ago, for 10*i each.
	var evs []*portrait.Event
	for i := 1; i <= 5; i++ {
		for k := 0; k < i; k++ {
			evs = append(evs, track(fmt.Sprintf("c%d-%d", i, k), fmt.Sprintf("c%d", i), "Order Completed",
				(100-time.Duration(i*10))*day-time.Duration(k)*time.Hour, fmt.Sprintf(`{"revenue":%d}`, 10*i)))
		}
	}
	evs = append(evs, track("x", "prospect", "Product Viewed", 0, ""))
	e.send(t, evs...)
	b, err := traits.ComputeBoundaries(context.Background(), e.db.AllProfiles, e.now)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil || b.Customers != 5 {
		t.Fatalf("boundaries %+v, want 5 customers", b)
	}
	e.en.SetBoundaries(b)
	e.refresh(t, e.now)
	for i := 1; i <= 5; i++ {
		p := e.user(t, fmt.Sprintf("c%d", i))
		// c1 is the most recent and the least valuable.
		r, f, m := num(t, p, "rfm_r"), num(t, p, "rfm_f"), num(t, p, "rfm_m")
		if r != float64(6-i) || f != float64(i) || m != float64(i) {
			t.Errorf("c%d: r=%v f=%v m=%v, want %d %d %d", i, r, f, m, 6-i, i, i)
		}
	}
	if got := e.user(t, "c1").Traits["rfm_segment"].Value; got != traits.SegNewCustomer {
		t.Errorf("c1 (R5 F1) segment %v", got)
	}
	if got := e.user(t, "c5").Traits["rfm_segment"].Value; got != traits.SegCantLose {
		t.Errorf("c5 (R1 F5) segment %v", got)
	}
	if p := e.user(t, "prospect"); p.Traits["lifecycle_stage"].Value != "prospect" || p.Traits["rfm_r"].Value != nil {
		t.Errorf("prospect: stage %v rfm %v", p.Traits["lifecycle_stage"].Value, p.Traits["rfm_r"].Value)
	}
}

func TestBadDefinitions(t *testing.T) {
	for _, c := range []struct {
		d    traits.Definition
		want string
	}{
		{traits.Definition{Name: "x", Aggregate: "count", Window: "0d"}, "must be positive"},
		{traits.Definition{Name: "x", Aggregate: "count", Window: "-3d"}, "must be positive"},
		{traits.Definition{Name: "x", Aggregate: "count", Window: "soon"}, "window"},
		{traits.Definition{Name: "x", Aggregate: "median", Property: "a"}, "aggregate"},
		{traits.Definition{Name: "x", Aggregate: "sum"}, "needs a property"},
		{traits.Definition{Name: "Bad Name", Aggregate: "count"}, "name"},
		{traits.Definition{Name: "revenue", Aggregate: "count"}, "built-in"},
		{traits.Definition{Name: "x", Aggregate: "count", Filter: "properties.a >"}, "filter"},
		{traits.Definition{Name: "x", Aggregate: "count", Filter: "event + 1"}, "filter"},
		{traits.Definition{Name: "x", Aggregate: "count", Filter: "nosuch == 1"}, "filter"},
		{traits.Definition{Name: "x", Aggregate: "count", Type: "click"}, "event type"},
		{traits.Definition{Name: "x", Aggregate: "count", Dimension: "mood"}, "dimension"},
	} {
		_, err := c.d.Validate()
		if err == nil || portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), c.want) {
			t.Errorf("%+v: error %v, want invalid mentioning %q", c.d, err, c.want)
		}
	}
	if _, err := (traits.Definition{Name: "ok_1", Aggregate: "count", Window: "12h"}).Validate(); err != nil {
		t.Errorf("a good definition was rejected: %v", err)
	}
}

func TestSchemaTypesOnFirstSightAndReportsConflicts(t *testing.T) {
	e := open(t, t.TempDir())
	id := func(msg, traitsJSON string, at time.Duration) *portrait.Event {
		return &portrait.Event{MessageID: msg, Type: portrait.EventIdentify, Source: "crm", UserID: "u" + msg, Traits: json.RawMessage(traitsJSON), Timestamp: t0.Add(at), ReceivedAt: t0}
	}
	e.send(t, id("1", `{"age":30,"city":"上海","vip":true}`, 0))
	e.send(t, id("2", `{"age":"thirty"}`, time.Minute))
	sc := e.en.Schema
	for name, typ := range map[string]string{"age": "number", "city": "string", "vip": "boolean", "revenue": "number"} {
		if f, ok := sc.Lookup(name); !ok || f.Type != typ {
			t.Errorf("%s: %+v, want type %s", name, f, typ)
		}
	}
	cs := sc.Conflicts()
	if len(cs) != 1 || cs[0].Name != "age" || cs[0].Want != "number" || cs[0].Got != "string" {
		t.Errorf("conflicts %+v", cs)
	}
	if p := e.user(t, "u2"); p.Traits["age"].Value != "thirty" {
		t.Error("the conflicting value was not kept as sent")
	}
}

// Any arrival order, batching and merge order of the same events gives the
// same profiles, with every kind of computed trait active.
func TestArrivalOrderDoesNotMatter(t *testing.T) {
	if testing.Short() {
		t.Skip("property test")
	}
	defs := []traits.Definition{
		{Name: "n_orders", Aggregate: "count", Event: "Order Completed"},
		{Name: "spend", Aggregate: "sum", Event: "Order Completed", Property: "revenue"},
		{Name: "mean", Aggregate: "avg", Event: "Order Completed", Property: "revenue"},
		{Name: "lo", Aggregate: "min", Property: "revenue"},
		{Name: "hi", Aggregate: "max", Property: "revenue"},
		{Name: "fst", Aggregate: "first", Property: "category"},
		{Name: "lst", Aggregate: "last", Property: "category"},
		{Name: "top", Aggregate: "most_frequent", Property: "category"},
		{Name: "set", Aggregate: "unique", Property: "category"},
		{Name: "dc", Aggregate: "distinct_count", Property: "category"},
		{Name: "w_count", Aggregate: "count", Window: "20s"},
		{Name: "w_sum", Aggregate: "sum", Property: "revenue", Window: "30s", Filter: `properties.category != "c0"`},
		// Buckets of 1.5625s: the cut falls inside one.
		{Name: "w_hi", Aggregate: "max", Property: "revenue", Window: "100s"},
		{Name: "w_lo", Aggregate: "min", Property: "revenue", Window: "100s", Filter: `properties.revenue >= 1`},
		{Name: "w_avg", Aggregate: "avg", Property: "revenue", Window: "25s"},
		{Name: "w_fst", Aggregate: "first", Property: "category", Window: "35s"},
		{Name: "w_lst", Aggregate: "last", Property: "category", Window: "35s"},
		{Name: "w_top", Aggregate: "most_frequent", Property: "category", Window: "40s"},
		{Name: "w_set", Aggregate: "unique", Property: "category", Window: "50s"},
		{Name: "w_dc", Aggregate: "distinct_count", Property: "category", Window: "10s"},
	}
	base := t.TempDir()
	runs := 0
	cats := []string{"c0", "c1", "c2"}
	rapid.Check(t, func(rt *rapid.T) {
		runs++
		n := rapid.IntRange(1, 30).Draw(rt, "n")
		var events []*portrait.Event
		for i := range n {
			user := fmt.Sprintf("u%d", rapid.IntRange(0, 3).Draw(rt, "user"))
			anon := fmt.Sprintf("a%d", rapid.IntRange(0, 5).Draw(rt, "anon"))
			at := t0.Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "at")) * time.Second)
			e := &portrait.Event{MessageID: fmt.Sprintf("m%02d", i), Source: "web", AnonymousID: anon, Timestamp: at, ReceivedAt: at}
			if rapid.Bool().Draw(rt, "identified") {
				e.UserID = user
			}
			switch rapid.IntRange(0, 3).Draw(rt, "kind") {
			case 0:
				e.Type = portrait.EventPage
			case 1:
				e.Type, e.Name = portrait.EventTrack, "Survey Submitted"
				e.Properties, _ = json.Marshal(map[string]any{"nps": rapid.IntRange(0, 10).Draw(rt, "nps")})
			default:
				e.Type, e.Name = portrait.EventTrack, "Order Completed"
				e.Properties, _ = json.Marshal(map[string]any{"revenue": float64(rapid.IntRange(0, 1000).Draw(rt, "rev")) / 100,
					"category": cats[rapid.IntRange(0, 2).Draw(rt, "cat")]})
			}
			events = append(events, e)
		}
		sorted := append([]*portrait.Event(nil), events...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key().Less(sorted[j].Key()) })
		da, db := filepath.Join(base, fmt.Sprintf("a%d", runs)), filepath.Join(base, fmt.Sprintf("b%d", runs))
		a := open(t, da, defs...)
		a.now = t0.Add(45 * time.Second)
		a.en.SetBoundaries(traits.NewBoundaries([]traits.RFMInput{{Days: 0, Count: 1, Revenue: 1}, {Days: 0, Count: 2, Revenue: 5}}, a.now))
		withTags(t, a)
		a.send(t, sorted...)
		want := snapshot(t, a.db)

		perm := rapid.Permutation(events).Draw(rt, "order")
		b := open(t, db, defs...)
		b.now = a.now
		b.en.SetBoundaries(a.en.Boundaries())
		b.proc.BatchSize = rapid.IntRange(1, 6).Draw(rt, "batch")
		withTags(t, b)
		for len(perm) > 0 {
			k := rapid.IntRange(1, len(perm)).Draw(rt, "chunk")
			b.send(t, perm[:k]...)
			perm = perm[k:]
		}
		got := snapshot(t, b.db)
		if !reflect.DeepEqual(got, want) {
			for id, w := range want {
				if got[id] != w {
					rt.Logf("profile %s\n want %s\n  got %s", id, w, got[id])
				}
			}
			rt.Fatalf("arrival order changed the profiles (%d vs %d)", len(got), len(want))
		}
		a.db.Close()
		b.db.Close()
		os.RemoveAll(da)
		os.RemoveAll(db)
	})
}

// snapshot encodes every profile, except when tags were gained: a tag keeps
// the time it was first gained, and that depends on how the events were
// batched (see tag.Enricher.Finish).
func snapshot(t testing.TB, db *sqlite.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		for i := range p.Tags {
			p.Tags[i].Since = time.Time{}
		}
		b, err := json.Marshal(p)
		out[p.ID] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withTags adds rule tags over computed traits after the traits enricher.
func withTags(t testing.TB, e *env) {
	t.Helper()
	var cs []*tag.Compiled
	for i, x := range []string{"n_orders >= 2", "spend > 5 && w_count > 0", `top == "c1"`, `nps_category == "promoter"`,
		`lifecycle_stage in ["repeat", "loyal"]`, `rfm_segment == "champions" || sessions > 2`, "event_count > 3"} {
		c, err := tag.Compile(tag.Definition{Name: fmt.Sprintf("t%d", i), Dimension: "value", Expression: x}, e.en.Schema.Types())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	te := tag.NewEnricher()
	te.SetTags(cs, e.en.Schema.Types())
	e.proc.Enrichers = append(e.proc.Enrichers, te)
}

// A window is kept in 64 buckets aligned to the epoch: exact when its start
// falls on a bucket edge, and otherwise counting the whole bucket that
// straddles the start.
func TestWindowBuckets(t *testing.T) {
	// 640s: buckets of 10s; t0 is a multiple of 10s since the epoch.
	e := open(t, t.TempDir(), traits.Definition{Name: "w", Aggregate: "count", Window: "640s"},
		traits.Definition{Name: "w_sum", Aggregate: "sum", Property: "revenue", Window: "640s"})
	at := func(s int) time.Duration { return time.Duration(s) * time.Second }
	e.now = t0.Add(at(640))
	e.send(t,
		track("a", "u1", "Order Completed", at(0), `{"revenue":1}`),
		track("b", "u1", "Order Completed", at(5), `{"revenue":2}`),
		track("c", "u1", "Order Completed", at(12), `{"revenue":4}`),
		track("d", "u1", "Order Completed", at(25), `{"revenue":8}`))
	for _, c := range []struct {
		now        int // seconds after t0; the window starts 640s earlier
		count, sum float64
	}{
		{640, 4, 15}, // starts at 0, an edge: exact
		{647, 4, 15}, // starts at 7, inside [0, 10): a and b still count
		{650, 2, 12}, // starts at 10, an edge: exact
		{655, 2, 12}, // starts at 15, inside [10, 20): c still counts
		{660, 1, 8},  // starts at 20, an edge: exact
		{670, 0, 0},  // starts at 30: nothing
	} {
		e.refresh(t, t0.Add(at(c.now)))
		p := e.user(t, "u1")
		if got, gs := num(t, p, "w"), num(t, p, "w_sum"); got != c.count || gs != c.sum {
			t.Errorf("as of %ds: count %v sum %v, want %v %v", c.now, got, gs, c.count, c.sum)
		}
	}
	// An event long after the others pushes their buckets out as it
	// arrives: state stays bounded without waiting for the clock.
	e.now = t0.Add(at(2000))
	e.send(t, track("z", "u1", "Order Completed", at(1990), `{"revenue":16}`))
	if got := num(t, e.user(t, "u1"), "w_sum"); got != 16 {
		t.Errorf("w_sum = %v, want 16", got)
	}
}
