package traits_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// A state read back gives the same traits and is written the same.
func TestStateRoundTrip(t *testing.T) {
	evs := benchEvents(8000)
	ens := enrichers(t)
	en := ens[0].(*traits.Enricher)
	profiles := map[string]*portrait.Profile{}
	for i, e := range evs {
		p := profileOf(profiles, e)
		var props map[string]any
		json.Unmarshal(e.Properties, &props)
		if i%3 == 0 { // some surveys, with text that needs escaping
			props["nps"], props["comment"] = float64(i%11), "\"très\" bien\n"
			e = &portrait.Event{Type: portrait.EventTrack, Name: "Survey Submitted", MessageID: e.MessageID + "s", Timestamp: e.Timestamp, Source: "web"}
		}
		en.Event(p, e, props)
	}
	now := t0.Add(8000 * time.Minute)
	for _, p := range profiles {
		en.Finish(p, now)
	}
	again := enrichers(t)[0]
	for id, p := range profiles {
		q := &portrait.Profile{ID: id, FirstSeen: p.FirstSeen, FirstKey: p.FirstKey, LastSeen: p.LastSeen, LastKey: p.LastKey,
			State: map[string]json.RawMessage{traits.StateKey: p.State[traits.StateKey]}}
		again.Event(q, &portrait.Event{Type: portrait.EventIdentify, MessageID: "zz", Timestamp: p.FirstSeen}, nil)
		// p goes on from its decoded state in memory, q from the encoding.
		r := p
		en.Event(r, &portrait.Event{Type: portrait.EventIdentify, MessageID: "zz", Timestamp: p.FirstSeen}, nil)
		again.Finish(q, now)
		en.Finish(r, now)
		if !reflect.DeepEqual(q.Traits, r.Traits) {
			t.Fatalf("%s: traits after a round trip\n%v\nwant\n%v", id, q.Traits, r.Traits)
		}
		if string(q.State[traits.StateKey]) != string(r.State[traits.StateKey]) {
			t.Fatalf("%s: state after a round trip\n%s\nwant\n%s", id, q.State[traits.StateKey], r.State[traits.StateKey])
		}
	}
}
