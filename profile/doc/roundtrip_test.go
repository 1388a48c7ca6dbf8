package doc

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// A profile comes back from its stored form as it went in, enricher state
// (appended unvalidated) included.
func TestProfileDocumentRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	p := &portrait.Profile{ID: "p_1", Traits: map[string]portrait.Trait{"name": {Value: "王芳", Source: "web", Time: at, MessageID: "m1"}},
		Identifiers: []portrait.Identifier{{Type: "user_id", Value: "u1"}}, EventCounts: map[string]int{"track": 2},
		FirstKey: portrait.EventKey{Time: at, MessageID: "m0"}, LastKey: portrait.EventKey{Time: at.Add(time.Hour), MessageID: "m9"},
		IdentityKey: portrait.EventKey{Time: at, MessageID: "m1"},
		State:       map[string]json.RawMessage{"traits": json.RawMessage(`{"p":[{"t":1,"m":"x","a":2}]}`), "b": json.RawMessage(`[1,2]`)}}
	b, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("round trip:\n%+v\n%+v", p, q)
	}
	p.State = nil
	b, _ = Encode(p)
	if q, _ := Decode(b); q.State != nil {
		t.Errorf("no state came back as %v", q.State)
	}
}
