package journey_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/journey"
)

func feed(t *testing.T, en *journey.Enricher, p *portrait.Profile, evs ...*portrait.Event) {
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

// fresh finishes a new object holding p's state: what a full derive writes.
func fresh(en *journey.Enricher, p *portrait.Profile, at time.Time) map[string]portrait.Trait {
	q := &portrait.Profile{ID: p.ID, State: maps.Clone(p.State), Traits: map[string]portrait.Trait{}}
	en.Finish(q, at)
	return journeyTraits(q)
}

// A profile finished again without a matching event (most profiles of a
// live batch) keeps its journey traits as they are, the same objects, with
// only the current stage's days brought up to now; what it holds is what a
// full derive gives. Anything that changed them since (another writer, a
// replaced state) makes Finish write them all again (issue 12 §5).
func TestFinishUntouchedKeepsTraits(t *testing.T) {
	en, err := journey.New(journey.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := &portrait.Profile{ID: "p"}
	feed(t, en, p, stream("u")...)
	en.Finish(p, t0.Add(30*day))
	hist := p.Traits[journey.TraitHistory].Value.([]any)
	raw := p.State[journey.StateKey]

	later := t0.Add(35 * day)
	feed(t, en, p, track("x", "u", "Page Viewed", 34*day, ""))
	en.Finish(p, later)
	if got := p.Traits[journey.TraitHistory].Value.([]any); &got[0] != &hist[0] {
		t.Error("history written again for a profile whose journey did not change")
	}
	if &p.State[journey.StateKey][0] != &raw[0] {
		t.Error("state encoded again though it did not change")
	}
	if got := p.Traits[journey.DaysIn("consult")].Value; got != 18.0 {
		t.Errorf("days in consult 5 days later = %v, want 18", got)
	}
	if want := fresh(en, p, later); !reflect.DeepEqual(journeyTraits(p), want) {
		t.Errorf("kept traits differ from a full derive:\n got %v\nwant %v", journeyTraits(p), want)
	}

	// Another writer's trait of the same name is replaced by the journey's.
	p.Traits[journey.TraitStage] = portrait.Trait{Value: "lost", Source: "identify"}
	en.Finish(p, later)
	if tr := p.Traits[journey.TraitStage]; tr.Value != "consult" || tr.Source != journey.Source {
		t.Errorf("stage after another writer = %v from %s, want consult from the journey", tr.Value, tr.Source)
	}

	// A replaced state (a backfill, a rebuild) is derived again.
	short := &portrait.Profile{ID: "s"}
	feed(t, en, short, stream("u")[:4]...)
	en.Finish(short, later)
	p.State[journey.StateKey] = short.State[journey.StateKey]
	en.Finish(p, later)
	if got, want := journeyTraits(p), journeyTraits(short); !reflect.DeepEqual(got, want) {
		t.Errorf("after the state was replaced:\n got %v\nwant %v", got, want)
	}
	if got := p.Traits[journey.TraitStage].Value; got != "purchase" {
		t.Errorf("stage after the state was replaced = %v, want purchase", got)
	}

	// A matching event still moves the path.
	feed(t, en, p, track("t9", "u", "Ticket Created", 34*day, `{"channel":"phone"}`))
	en.Finish(p, later)
	if got := p.Traits[journey.TraitStage].Value; got != "after_sales" {
		t.Errorf("stage after a ticket = %v, want after_sales", got)
	}
	if want := fresh(en, p, later); !reflect.DeepEqual(journeyTraits(p), want) {
		t.Errorf("after a new hit, traits differ from a full derive:\n got %v\nwant %v", journeyTraits(p), want)
	}
}

// BenchmarkFinishUntouched: a held profile finished in a batch whose
// events matched no stage (most profiles of a live batch).
func BenchmarkFinishUntouched(b *testing.B) {
	en, err := journey.New(journey.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	p := &portrait.Profile{ID: "p"}
	for _, ev := range stream("u") {
		var props map[string]any
		if len(ev.Properties) > 0 {
			json.Unmarshal(ev.Properties, &props)
		}
		en.Event(p, ev, props)
	}
	at := t0.Add(30 * day)
	en.Finish(p, at)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		en.Finish(p, at.Add(time.Duration(i)*time.Second))
	}
}
