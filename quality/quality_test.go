package quality_test

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/quality"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// The report counts, per source and trait, what the standardizers refused
// on the way into profiles, what a rule imputed, and what was quarantined.
func TestReportCountsRefusedAndImputedValues(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ev := func(msg, user, traits, context string) *portrait.Event {
		e := &portrait.Event{MessageID: msg, Type: "identify", Source: "crm", UserID: user, Traits: []byte(traits), Timestamp: at, ReceivedAt: at}
		if context != "" {
			e.Context = []byte(context)
		}
		return e
	}
	_, err = db.Append(ctx, []*portrait.Event{
		ev("m1", "u1", `{"email":"good@example.com","phone":"13800138000"}`, ""),
		ev("m2", "u2", `{"email":"broken@","phone":"not a phone"}`, ""),
		ev("m3", "u3", `{"email":"x@example.com","gender":"female"}`, `{"import":{"imputed":[{"field":"gender","rule":"derive:gender:gender_from_id_card"}]}}`),
	}, []*portrait.Rejected{{Source: "crm", Index: 3, Reason: "event has neither userId nor anonymousId", Raw: []byte(`{}`), ReceivedAt: at}})
	if err != nil {
		t.Fatal(err)
	}
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	if err := proc.CatchUp(ctx, 3); err != nil {
		t.Fatal(err)
	}
	r, err := quality.Build(ctx, db, at, 5)
	if err != nil {
		t.Fatal(err)
	}
	var crm *quality.Source
	for _, s := range r.Sources {
		if s.Source == "crm" {
			crm = s
		}
	}
	if crm == nil || crm.TraitIssues != 2 || len(crm.TraitIssuesTop) != 2 || crm.Quarantined != 1 || crm.Events != 3 {
		t.Fatalf("crm source: %+v", crm)
	}
	traits := map[string]*quality.TraitStats{}
	for _, ts := range r.Traits {
		traits[ts.Trait] = ts
	}
	if e := traits["email"]; e == nil || e.Profiles != 2 || e.Invalid != 1 || e.Validity < 0.66 || e.Validity > 0.67 {
		t.Errorf("email: %+v", e)
	}
	if g := traits["gender"]; g == nil || g.Imputed != 1 {
		t.Errorf("gender: %+v", g)
	}
	if r.Profiles != 3 {
		t.Errorf("profiles %d", r.Profiles)
	}
}
