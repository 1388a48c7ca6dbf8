package tag_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

type env struct {
	db   *sqlite.DB
	proc *profile.Processor
	tr   *traits.Enricher
	svc  *tag.Service
	now  time.Time
}

func open(t testing.TB) *env {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tr, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, tr: tr, now: t0}
	e.proc = profile.NewProcessor(db, identity.DefaultRules().Compile())
	e.proc.Now = func() time.Time { return e.now }
	te := tag.NewEnricher()
	e.proc.Enrichers = []profile.Enricher{tr, te}
	e.svc = tag.NewService(db, te, tr.Schema)
	e.svc.Now = func() time.Time { return e.now }
	e.svc.Refresh = e.proc.Refresh
	e.svc.Count = db.CountProfiles
	if err := e.svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) send(t testing.TB, evs ...*portrait.Event) {
	t.Helper()
	if _, err := e.db.Append(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := e.db.LastSeq(context.Background())
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

func order(msg, user string, at time.Duration, revenue float64) *portrait.Event {
	return &portrait.Event{MessageID: msg, Type: portrait.EventTrack, Name: "Order Completed", Source: "web", UserID: user,
		Properties: json.RawMessage(fmt.Sprintf(`{"revenue":%v}`, revenue)), Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
}

func tagsOf(t testing.TB, e *env, user string) map[string]time.Time {
	t.Helper()
	p, err := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: user})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, g := range p.Tags {
		out[g.Name] = g.Since
	}
	return out
}

func TestInvalidExpressionsAreRejectedAtDefinition(t *testing.T) {
	e := open(t)
	for _, c := range []struct{ expr, want string }{
		{"revenue >", "invalid expression"},
		{"revnue > 100", "unknown name revnue"},
		{`revenue > "a lot"`, "mismatched types"},
		{"purchase_count + 1", "expected bool"},
		{`favourite_category * 2`, "invalid operation"},
		{"", "needs an expression"},
	} {
		_, err := e.svc.Define(context.Background(), tag.Definition{Name: "t", Dimension: "value", Expression: c.expr})
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), c.want) {
			t.Errorf("%q: %v, want invalid mentioning %q", c.expr, err, c.want)
		}
	}
	if _, err := e.svc.Define(context.Background(), tag.Definition{Name: "t", Dimension: "mood", Expression: "true"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("unknown dimension accepted: %v", err)
	}
	if len(e.svc.List()) != 0 {
		t.Error("a rejected tag was stored")
	}
}

func TestTagsFollowTraitsAndBackfill(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	hv, err := e.svc.Define(ctx, tag.Definition{Name: "高价值", NameEn: "high value", Dimension: "value", Category: "spend", Expression: "revenue >= 100"})
	if err != nil {
		t.Fatal(err)
	}
	if hv.Version != 1 || hv.NameZh != "高价值" {
		t.Errorf("definition %+v", hv)
	}
	e.now = t0.Add(2*day + time.Hour)
	e.send(t, order("a1", "alice", 0, 60), order("b1", "bob", day, 10))
	if got := tagsOf(t, e, "alice"); len(got) != 0 {
		t.Errorf("alice tags %v before reaching 100", got)
	}
	e.send(t, order("a2", "alice", 2*day, 50))
	if got := tagsOf(t, e, "alice"); !got["高价值"].Equal(t0.Add(2 * day)) {
		t.Errorf("alice tags %v, want 高价值 since the order that crossed 100", got)
	}
	// Changing the rule is a new version, and existing profiles are
	// re-evaluated in the background.
	e.now = t0.Add(3 * day)
	v2, err := e.svc.Define(ctx, tag.Definition{Name: "高价值", NameEn: "high value", Dimension: "value", Category: "spend", Expression: "revenue >= 10"})
	if err != nil || v2.Version != 2 {
		t.Fatalf("v2 %+v %v", v2, err)
	}
	if err := e.svc.BackfillNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf(t, e, "bob"); len(got) != 1 {
		t.Errorf("bob tags %v after the backfill, want 高价值", got)
	}
	if b := e.svc.Progress(); b.State != "done" || b.Done != 2 || b.Total != 2 || b.Changed < 1 {
		t.Errorf("backfill progress %+v", b)
	}
	vs, err := e.svc.Versions(ctx, "高价值")
	if err != nil || len(vs) != 2 || vs[0].Expression != "revenue >= 100" {
		t.Errorf("versions %+v %v", vs, err)
	}
	// Tags on time-based traits change with the clock alone.
	if _, err := e.svc.Define(ctx, tag.Definition{Name: "即将流失", NameEn: "about to churn", Dimension: "risk", Expression: `lifecycle_stage == "at_risk"`}); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(200 * day)
	if err := e.svc.BackfillNow(ctx, "clock"); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf(t, e, "alice"); !got["即将流失"].Equal(t0.Add(182 * day)) {
		t.Errorf("alice tags %v, want 即将流失 since day 182 (180 days after her last order)", got)
	}
	if err := e.svc.Delete(ctx, "即将流失"); err != nil {
		t.Fatal(err)
	}
	e.svc.BackfillNow(ctx, "delete")
	if got := tagsOf(t, e, "alice"); len(got) != 1 {
		t.Errorf("alice tags %v after deleting 即将流失", got)
	}
	tax := e.svc.Taxonomy()
	if len(tax) != len(traits.Dimensions) || tax[4].Name != "value" || len(tax[4].Categories) != 1 || tax[4].Categories[0].Name != "spend" {
		t.Errorf("taxonomy %+v", tax)
	}
}

func TestMissingAndConflictingTraitsDoNotHold(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	e.send(t, &portrait.Event{MessageID: "i1", Type: portrait.EventIdentify, Source: "crm", UserID: "u1", Traits: json.RawMessage(`{"age":30}`), Timestamp: t0, ReceivedAt: t0})
	if _, err := e.svc.Define(ctx, tag.Definition{Name: "adult", Dimension: "basic", Expression: "age >= 18"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Define(ctx, tag.Definition{Name: "nps_low", Dimension: "feedback", Expression: "nps_score <= 6"}); err != nil {
		t.Fatal(err)
	}
	e.svc.BackfillNow(ctx, "test")
	if got := tagsOf(t, e, "u1"); len(got) != 1 || got["adult"].IsZero() {
		t.Errorf("tags %v: want adult only (no NPS answer: nps_low must not hold)", got)
	}
	e.send(t, &portrait.Event{MessageID: "i2", Type: portrait.EventIdentify, Source: "crm", UserID: "u1", Traits: json.RawMessage(`{"age":"unknown"}`), Timestamp: t0.Add(time.Hour), ReceivedAt: t0})
	if got := tagsOf(t, e, "u1"); len(got) != 0 {
		t.Errorf("tags %v: a string age must not satisfy age >= 18", got)
	}
}

// A tag that keeps holding keeps the time it was gained, however much new
// evidence arrives; lost and gained again, it takes the new evidence's time.
func TestSinceStaysWhileTheTagHolds(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	if _, err := e.svc.Define(ctx, tag.Definition{Name: "big", Dimension: "value", Expression: "revenue >= 100"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Define(ctx, tag.Definition{Name: "few", Dimension: "value", Expression: "purchase_count < 3"}); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(10 * day)
	e.send(t, order("o1", "u", day, 150))
	if got := tagsOf(t, e, "u"); !got["big"].Equal(t0.Add(day)) || !got["few"].Equal(t0.Add(day)) {
		t.Fatalf("tags %v, want big and few since day 1", got)
	}
	e.send(t, order("o2", "u", 2*day, 10))
	if got := tagsOf(t, e, "u"); !got["big"].Equal(t0.Add(day)) || !got["few"].Equal(t0.Add(day)) {
		t.Errorf("tags %v after more evidence, want both still since day 1", got)
	}
	e.send(t, order("o3", "u", 3*day, 10))
	if got := tagsOf(t, e, "u"); len(got) != 1 || !got["big"].Equal(t0.Add(day)) {
		t.Errorf("tags %v, want big since day 1 only", got)
	}
}
