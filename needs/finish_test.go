package needs_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/needs"
)

func feed(t *testing.T, en *needs.Enricher, p *portrait.Profile, evs ...*portrait.Event) {
	t.Helper()
	for _, ev := range evs {
		var props map[string]any
		if len(ev.Properties) > 0 {
			if err := json.Unmarshal(ev.Properties, &props); err != nil {
				t.Fatal(err)
			}
		}
		en.Event(p, ev, props)
	}
}

func needsTraits(p *portrait.Profile) map[string]portrait.Trait {
	out := map[string]portrait.Trait{}
	for k, v := range p.Traits {
		if v.Source == needs.Source {
			out[k] = v
		}
	}
	return out
}

// fresh finishes a new object holding p's state: what a full derive writes.
func fresh(en *needs.Enricher, p *portrait.Profile, at time.Time) map[string]portrait.Trait {
	q := &portrait.Profile{ID: p.ID, State: maps.Clone(p.State), Traits: map[string]portrait.Trait{}}
	en.Finish(q, at)
	return needsTraits(q)
}

func mapID(v any) uintptr { return reflect.ValueOf(v).Pointer() }

// A profile finished again without an event about needs (most profiles of
// a live batch) keeps its needs traits, the same objects, while its
// affinity scores round to those written; once they move, or another
// writer or a replaced state changed what was written, Finish writes them
// all again, as a full derive would (issue 12 §5).
func TestFinishUntouchedKeepsTraits(t *testing.T) {
	en, err := needs.New(needs.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := &portrait.Profile{ID: "p"}
	feed(t, en, p,
		track("v1", "u", "Product Viewed", 30*day, `{"category":"数码 Electronics"}`),
		track("b1", "u", "Order Completed", 0, `{"revenue":10,"products":[{"category":"数码 Electronics"}]}`),
		track("v2", "u", "Product Viewed", 60*day, `{"category":"美妆 Beauty"}`),
	)
	en.Finish(p, now)
	aff := p.Traits[needs.TraitAffinity].Value
	ev := p.Traits[needs.TraitNeedsEvidence].Value

	soon := now.Add(time.Minute)
	feed(t, en, p, track("x", "u", "Page Viewed", 0, ""))
	en.Finish(p, soon)
	if mapID(p.Traits[needs.TraitAffinity].Value) != mapID(aff) || mapID(p.Traits[needs.TraitNeedsEvidence].Value) != mapID(ev) {
		t.Error("needs traits written again for a profile whose needs did not change")
	}
	if want := fresh(en, p, soon); !reflect.DeepEqual(needsTraits(p), want) {
		t.Errorf("kept traits differ from a full derive:\n got %v\nwant %v", needsTraits(p), want)
	}

	// A half-life later every score has halved.
	later := now.Add(30 * day)
	en.Finish(p, later)
	if got := p.Traits[needs.TraitAffinity].Value.(map[string]any)["数码 Electronics"]; got != 1.75 {
		t.Errorf("electronics a half-life later = %v, want 1.75", got)
	}
	if want := fresh(en, p, later); !reflect.DeepEqual(needsTraits(p), want) {
		t.Errorf("after the scores moved, traits differ from a full derive:\n got %v\nwant %v", needsTraits(p), want)
	}

	// Another writer's trait of the same name is replaced.
	p.Traits[needs.TraitNeeds] = portrait.Trait{Value: []any{"none"}, Source: "identify"}
	en.Finish(p, later)
	if tr := p.Traits[needs.TraitNeeds]; !reflect.DeepEqual(tr.Value, []any{"electronics"}) || tr.Source != needs.Source {
		t.Errorf("needs after another writer = %v from %s, want [electronics] from needs", tr.Value, tr.Source)
	}

	// A replaced state is derived again.
	other := &portrait.Profile{ID: "o"}
	feed(t, en, other, track("v9", "o", "Product Viewed", 0, `{"category":"美妆 Beauty"}`))
	en.Finish(other, later)
	p.State[needs.StateKey] = other.State[needs.StateKey]
	en.Finish(p, later)
	if got, want := needsTraits(p), needsTraits(other); !reflect.DeepEqual(got, want) {
		t.Errorf("after the state was replaced:\n got %v\nwant %v", got, want)
	}
}

// BenchmarkFinishUntouched: a held profile finished in a batch whose
// events said nothing about needs (most profiles of a live batch).
func BenchmarkFinishUntouched(b *testing.B) {
	en, err := needs.New(needs.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	p := &portrait.Profile{ID: "p"}
	for _, ev := range []*portrait.Event{
		track("v1", "u", "Product Viewed", 30*day, `{"category":"数码 Electronics"}`),
		track("b1", "u", "Order Completed", 0, `{"revenue":10,"products":[{"category":"数码 Electronics"}]}`),
		track("v2", "u", "Product Viewed", 60*day, `{"category":"美妆 Beauty"}`),
		track("v3", "u", "Product Viewed", 2*day, `{"category":"图书 Books"}`),
	} {
		var props map[string]any
		json.Unmarshal(ev.Properties, &props)
		en.Event(p, ev, props)
	}
	en.Finish(p, now)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		en.Finish(p, now.Add(time.Duration(i)*time.Second))
	}
}
