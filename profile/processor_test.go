package profile_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	db   *sqlite.DB
	proc *profile.Processor
}

func open(t testing.TB, dir string) *env {
	t.Helper()
	sqlitetest.Seed(t, dir) // an empty dir gets a migrated store
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rules := identity.DefaultRules()
	rules.Limits["email"] = 2 // low, so that generated histories hit it
	p := profile.NewProcessor(db, rules.Compile())
	p.Now = func() time.Time { return t0 }
	p.OnceTraits = map[string]bool{"signup_channel": true}
	return &env{db: db, proc: p}
}

func (e *env) send(t testing.TB, evs ...*portrait.Event) {
	t.Helper()
	// The log hands out Seq; give each append its own copies.
	cp := make([]*portrait.Event, len(evs))
	for i, ev := range evs {
		c := *ev
		c.Seq = 0
		cp[i] = &c
	}
	if _, err := e.db.Append(context.Background(), cp, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) catchUp(t testing.TB) {
	t.Helper()
	last, err := e.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every profile, as a client would see it, keyed by id.
func (e *env) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := e.db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		b, err := json.Marshal(p)
		out[p.ID] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ev(msg, typ, user, anon string, at time.Duration, traits string) *portrait.Event {
	e := &portrait.Event{MessageID: msg, Type: typ, Source: "web", UserID: user, AnonymousID: anon, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	if traits != "" {
		e.Traits = json.RawMessage(traits)
	}
	if typ == portrait.EventTrack {
		e.Name = "Order Completed"
	}
	return e
}

func TestAnonymousThenIdentifyMerges(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "page", "", "anon-1", 0, ""),
		ev("m2", "track", "", "anon-1", time.Minute, ""),
		ev("m3", "page", "", "anon-2", 2*time.Minute, ""), // another device
		ev("m4", "identify", "u1", "anon-1", 3*time.Minute, `{"email":" Zhang.San@Example.COM ","name":"张三"}`),
		ev("m5", "identify", "u1", "anon-2", 4*time.Minute, `{"name":"Zhang San"}`),
	)
	e.catchUp(t)
	p, err := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "email", Value: "zhang.san@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 5 {
		t.Errorf("event count %d, want 5", p.EventCount)
	}
	if got := p.Traits["name"].Value; got != "Zhang San" {
		t.Errorf("name %v, want the latest, Zhang San", got)
	}
	if got := p.Traits["email"]; got.Value != "zhang.san@example.com" || got.MessageID != "m4" || got.Source != "web" {
		t.Errorf("email trait %+v", got)
	}
	if p.ID != profile.ProfileID("m1") {
		t.Errorf("profile id %s, want the id of its first event %s", p.ID, profile.ProfileID("m1"))
	}
	if !reflect.DeepEqual(p.MergedFrom, []string{profile.ProfileID("m3")}) {
		t.Errorf("merged_from %v", p.MergedFrom)
	}
	// The merged-away id still answers.
	q, err := e.db.Profile(context.Background(), profile.ProfileID("m3"))
	if err != nil || q.ID != p.ID {
		t.Fatalf("alias lookup: %v %v", q, err)
	}
	n, _ := e.db.CountProfiles(context.Background())
	if n != 1 {
		t.Errorf("%d profiles, want 1", n)
	}
	merges, err := e.db.ProfileMerges(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(merges) != 1 || merges[0].Kind != portrait.MergeMerged || merges[0].MessageID != "m5" || merges[0].Identifier.Value != "anon-2" {
		t.Errorf("merges %+v", merges)
	}
}

func TestLimitRefusesMergeAndEventLandsOnStrongest(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "identify", "alice", "shared-tablet", 0, `{"name":"Alice"}`),
		ev("m2", "identify", "bob", "shared-tablet", time.Minute, `{"name":"Bob"}`),
	)
	e.catchUp(t)
	ctx := context.Background()
	a, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Fatal("alice and bob were merged through a shared anonymous id despite the user_id limit")
	}
	if a.Traits["name"].Value != "Alice" || b.Traits["name"].Value != "Bob" {
		t.Errorf("names: %v / %v", a.Traits["name"].Value, b.Traits["name"].Value)
	}
	if b.EventCount != 1 {
		t.Errorf("bob's event count %d", b.EventCount)
	}
	merges, _ := e.db.ProfileMerges(ctx, a.ID)
	if len(merges) != 1 || merges[0].Kind != portrait.MergeRefused || merges[0].Reason == "" {
		t.Errorf("want one recorded refusal, got %+v", merges)
	}
}

// A strong identifier nobody holds yet belongs to the event from the start:
// a shared email cannot pull a new customer's own device history onto the
// customer who used the email first.
func TestSharedEmailDoesNotStealHistory(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "identify", "alice", "", 0, `{"email":"family@example.com"}`),
		ev("m2", "page", "", "bobs-phone", time.Minute, ""),
		ev("m3", "identify", "bob", "bobs-phone", 2*time.Minute, `{"email":"family@example.com"}`),
	)
	e.catchUp(t)
	ctx := context.Background()
	bob, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "anonymous_id", Value: "bobs-phone"})
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID != dev.ID || bob.EventCount != 2 {
		t.Errorf("bob's device history is not on bob's profile: bob %s (%d events), device %s", bob.ID, bob.EventCount, dev.ID)
	}
	alice, _ := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: "family@example.com"})
	if alice == nil || alice.ID == bob.ID || alice.EventCount != 1 {
		t.Errorf("alice's profile: %+v", alice)
	}
	merges, _ := e.db.ProfileMerges(ctx, bob.ID)
	found := false
	for _, m := range merges {
		found = found || (m.Kind == portrait.MergeRefused && m.From == alice.ID && m.Identifier.Type == "email")
	}
	if !found {
		t.Errorf("the refused merge through the shared email is not journalled: %+v", merges)
	}
}

func TestBlockedValuesNeverMerge(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "identify", "u1", "", 0, `{"email":"test@test.com"}`),
		ev("m2", "identify", "u2", "", time.Minute, `{"email":"TEST@test.com"}`),
		ev("m3", "identify", "u3", "", 2*time.Minute, `{"phone":"null"}`),
	)
	e.catchUp(t)
	if n, _ := e.db.CountProfiles(context.Background()); n != 3 {
		t.Errorf("%d profiles, want 3: a blocked email merged people", n)
	}
}

func TestBackfillDoesNotOverwriteNewer(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t, ev("new", "identify", "u1", "", time.Hour, `{"city":"上海","signup_channel":"app"}`))
	e.catchUp(t)
	e.send(t, ev("old", "identify", "u1", "", 0, `{"city":"北京","plan":"gold","signup_channel":"web"}`))
	e.catchUp(t)
	p, err := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Traits["city"].Value != "上海" {
		t.Errorf("city %v: an old backfill overwrote newer data", p.Traits["city"].Value)
	}
	if p.Traits["plan"].Value != "gold" {
		t.Errorf("plan %v", p.Traits["plan"].Value)
	}
	if p.Traits["signup_channel"].Value != "web" {
		t.Errorf("signup_channel %v: a first-value-wins trait must keep the earliest", p.Traits["signup_channel"].Value)
	}
	if p.ID != profile.ProfileID("old") {
		t.Errorf("id %s: want the id of the earliest event after re-ordering", p.ID)
	}
	// The id handed out before the backfill still answers.
	if q, err := e.db.Profile(context.Background(), profile.ProfileID("new")); err != nil || q.ID != p.ID {
		t.Errorf("old id no longer answers: %v", err)
	}
}

func TestSetOnce(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "identify", "u1", "", 0, `{"$set_once":{"first_utm":"baidu"}}`),
		ev("m2", "identify", "u1", "", time.Minute, `{"$set_once":{"first_utm":"wechat"}}`),
	)
	e.catchUp(t)
	p, _ := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: "u1"})
	if p == nil || p.Traits["first_utm"].Value != "baidu" {
		t.Fatalf("first_utm: %+v", p)
	}
}

// The processor's properties over a real store (arrival order with retries,
// failed background commits, late events, retracted links, rebuild from the
// log) are storetest.RunProcessor's: sqlite and postgres run them on both
// stores (TestProcessorProperties), so they are not repeated here.
