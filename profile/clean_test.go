package profile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/profile"
)

// Traits are cleaned before they are set; a value that cannot be cleaned is
// not set, and the problem is kept for the quality report.
func TestTraitsStandardizedAndProblemsKept(t *testing.T) {
	e := open(t, t.TempDir())
	std := clean.DefaultTraitStandardizer()
	e.proc.Standardize = std.Standardize
	filler, err := clean.NewTraitFiller([]clean.FillRule{{Field: "gender", Kind: clean.FillDerive, From: "id_card", Derivation: clean.DeriveGenderFromID}})
	if err != nil {
		t.Fatal(err)
	}
	e.proc.Enrichers = []profile.Enricher{filler, clean.PinyinEnricher{}}
	e.send(t,
		ev("m1", "identify", "u1", "", 0, `{"phone":"１３８ ００１３ ８０００","email":" Zhang.San@Example.COM ","name":"张 三","id_card":"11010519491231002X"}`),
		ev("m2", "identify", "u1", "", time.Minute, `{"email":"not-an-email","birthday":"31/02/1990"}`),
	)
	e.catchUp(t)
	ctx := context.Background()
	p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Traits["phone"].Value != "+8613800138000" || p.Traits["email"].Value != "zhang.san@example.com" || p.Traits["name"].Value != "张三" {
		t.Errorf("traits not standardized: %+v", p.Traits)
	}
	if p.Traits["email"].MessageID != "m1" {
		t.Errorf("an invalid later email replaced a valid one: %+v", p.Traits["email"])
	}
	if _, ok := p.Traits["birthday"]; ok {
		t.Errorf("an impossible date was set: %+v", p.Traits["birthday"])
	}
	if g := p.Traits["gender"]; g.Value != "female" || g.Imputed == "" {
		t.Errorf("gender not imputed from the id card: %+v", g)
	}
	if p.Traits["name_pinyin"].Value == nil {
		t.Error("no pinyin for a Chinese name")
	}
	issues, err := e.db.TraitIssues(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, i := range issues {
		got[i.Trait] = i.Value
		if i.Reason == "" || i.MessageID != "m2" || i.ProfileID != p.ID {
			t.Errorf("issue %+v", i)
		}
	}
	if got["email"] != "not-an-email" || got["birthday"] != "31/02/1990" || len(got) != 2 {
		t.Errorf("issues %v", got)
	}
}

// A value Go cannot represent (1e309 is well-formed JSON) costs only its
// own trait, recorded as a problem; the event's other traits still apply.
func TestUnreadableValueCostsOnlyItsTrait(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t, ev("m1", "identify", "big", "", 0, `{"email":"big@example.com","n":1e309,"plan":"gold"}`))
	e.catchUp(t)
	ctx := context.Background()
	p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: "big@example.com"})
	if err != nil {
		t.Fatalf("the email identifier was lost with the bad number: %v", err)
	}
	if p.Traits["plan"].Value != "gold" {
		t.Errorf("traits %+v", p.Traits)
	}
	if _, ok := p.Traits["n"]; ok {
		t.Error("an unreadable value was set")
	}
	issues, _ := e.db.TraitIssues(ctx, "", 10)
	if len(issues) != 1 || issues[0].Trait != "n" || issues[0].Value != "1e309" {
		t.Errorf("issues %+v", issues)
	}
}

// A refused value of a secret or confidential trait is kept beside its
// issue (sealed, masked), never in the issue's reason, which is free text:
// the reason names the trait, its kind and the rule, whatever the trait is
// called (id_number is of kind id_card: the reason used to keep the value
// when the two names differed).
func TestIssueReasonsNameNoValue(t *testing.T) {
	e := open(t, t.TempDir())
	e.proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	e.send(t, ev("m1", "identify", "u1", "", 0, `{"id_number":"110101199002301236","mobile":"1380013","birthday":"1990-02-30","email":"zhang.wei@qqxyzzy"}`))
	e.catchUp(t)
	issues, err := e.db.TraitIssues(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(issues) != 4 {
		t.Fatalf("issues %+v", issues)
	}
	for _, i := range issues {
		if !strings.HasPrefix(i.Reason, i.Trait+" (") && !strings.HasPrefix(i.Reason, i.Trait+": ") {
			t.Errorf("the reason %q does not name the trait %s", i.Reason, i.Trait)
		}
		for _, part := range []string{"1990", "0230", "1101", "1380", "0013", "qqxyzzy", "zhang"} {
			if strings.Contains(i.Reason, part) {
				t.Errorf("%s: the reason %q holds %q of the value", i.Trait, i.Reason, part)
			}
		}
	}
}
