package segment

import (
	"encoding/json"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// The processor hook queues what the index keeps, taken from the whole
// profile, and not a copy of every enricher's state (kilobytes per changed
// profile per batch; issue 12 §5).
func TestOnChangeQueuesTheKeptValueNotTheState(t *testing.T) {
	ix := NewIndex()
	ix.SetKeep(func(p *portrait.Profile) any {
		if raw := p.State["survey"]; len(raw) > 0 {
			return string(raw)
		}
		return nil
	})
	svc := NewService(ix, nil)
	big := json.RawMessage(`{"purchases":[1,2,3]}`)
	with := &portrait.Profile{ID: "a", State: map[string]json.RawMessage{"survey": []byte(`{"nps":9}`), "traits": big}}
	without := &portrait.Profile{ID: "b", State: map[string]json.RawMessage{"traits": big}}
	svc.OnChange([]*portrait.Profile{with, without}, nil, nil)
	b := <-svc.queue
	for _, c := range b.changed {
		if c.State != nil {
			t.Errorf("profile %s queued with its state copied: %v", c.ID, c.State)
		}
	}
	if len(b.kept) != 2 || b.kept["a"] != `{"nps":9}` || b.kept["b"] != nil {
		t.Errorf("kept values queued: %v", b.kept)
	}

	// An index keeping nothing queues no kept values either.
	plain := NewService(NewIndex(), nil)
	plain.OnChange([]*portrait.Profile{with}, nil, nil)
	if b := <-plain.queue; b.kept != nil || b.changed[0].State != nil {
		t.Errorf("without SetKeep: kept %v, state %v", b.kept, b.changed[0].State)
	}
}

// The hook queues a profile's trait values alone (not a copy of every
// trait's source, time and message id), and the index built from them is
// the one Apply builds from the whole profile.
func TestOnChangeQueuesTraitValues(t *testing.T) {
	p := &portrait.Profile{ID: "a", Traits: map[string]portrait.Trait{
		"age":  {Value: 30.0, Source: "computed", MessageID: "m1"},
		"city": {Value: "Paris", Source: "identify"},
		"tags": {Value: []any{"x", "y"}},
	}, Tags: []portrait.ProfileTag{{Name: "vip"}}, Identifiers: []portrait.Identifier{{Type: "email", Value: "a@x"}}}
	queued := NewService(NewIndex(), nil)
	queued.OnChange([]*portrait.Profile{p}, nil, nil)
	b := <-queued.queue
	if b.changed[0].Traits != nil {
		t.Errorf("queued profile carries its traits: %v", b.changed[0].Traits)
	}
	if len(b.values) != 1 || len(b.values[0]) != 3 || b.values[0]["age"] != 30.0 || b.values[0]["city"] != "Paris" {
		t.Fatalf("queued values = %v", b.values)
	}
	if err := queued.apply(t.Context(), b.changed, b.values, b.deleted, b.applied, b.kept); err != nil {
		t.Fatal(err)
	}
	direct := NewService(NewIndex(), nil)
	if err := direct.Apply(t.Context(), []*portrait.Profile{p}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"age", "city", "tags"} {
		q, d := queued.Index.traits[name].valueAt(0), direct.Index.traits[name].valueAt(0)
		if !sameValue(q, d) || q == nil {
			t.Errorf("trait %s: queued path holds %v, Apply %v", name, q, d)
		}
	}
	// A value that stays the same is no change; one that goes is.
	p.Traits["age"] = portrait.Trait{Value: 30.0, Source: "computed", MessageID: "m2"}
	delete(p.Traits, "city")
	c, vals := snapshot(p)
	keys := queued.Index.upsertValues(c, vals, nil, nil, false)
	if len(keys) != 1 || keys[0] != "trait:city" {
		t.Errorf("changed keys = %v, want [trait:city]", keys)
	}
}
