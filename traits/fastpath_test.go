package traits_test

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// Event finds definitions through the index by event name and reads each
// property once; Backfill visits every definition and reads properties
// afresh. Both must give the same computed traits.
func TestIndexedEventsMatchBackfill(t *testing.T) {
	en, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var defs []traits.Definition
	names := map[string]bool{}
	aggs := []string{"count", "sum", "avg", "min", "max", "first", "last", "most_frequent", "unique", "distinct_count"}
	for i, a := range aggs {
		for j, event := range []string{"", "Order Completed", "Product Viewed"} {
			d := traits.Definition{Name: fmt.Sprintf("d%d_%d", i, j), Aggregate: a, Event: event, Property: []string{"revenue", "category", "v"}[(i+j)%3]}
			if a == "count" {
				d.Property = ""
			}
			if (i+j)%2 == 0 {
				d.Filter = []string{"properties.revenue > 50", `properties.category == "a"`, "properties.v >= 2"}[(i+j)%3]
			}
			if j == 1 {
				d.Window = "10d"
			}
			names[d.Name] = true
			defs = append(defs, d)
		}
	}
	if err := en.SetDefinitions(defs); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(3))
	var evs []*portrait.Event
	for i := range 400 {
		at := t0.Add(time.Duration(r.Intn(30*24)) * time.Hour)
		ev := &portrait.Event{MessageID: fmt.Sprint("m", i), Type: portrait.EventTrack, Name: []string{"Order Completed", "Product Viewed", "Signed Up"}[r.Intn(3)], UserID: "u", Timestamp: at}
		if r.Intn(4) == 0 {
			ev.Type, ev.Name = portrait.EventPage, "Home"
		}
		ev.Properties = []byte(fmt.Sprintf(`{"revenue":%d,"category":%q,"v":%s}`, r.Intn(100), []string{"a", "b", "c"}[r.Intn(3)], []string{"1", "2.5", `"x"`, "true"}[r.Intn(4)]))
		evs = append(evs, ev)
	}
	now := t0.Add(31 * 24 * time.Hour)
	a := &portrait.Profile{ID: "a"}
	for _, ev := range evs {
		var props map[string]any
		if err := jsonUnmarshal(string(ev.Properties), &props); err != nil {
			t.Fatal(err)
		}
		en.Event(a, ev, props)
	}
	en.Finish(a, now)
	b := &portrait.Profile{ID: "b"}
	en.Backfill(b, evs, names)
	en.Finish(b, now)
	present := 0
	for name := range names {
		if _, ok := a.Traits[name]; ok {
			present++
		}
		if !reflect.DeepEqual(a.Traits[name], b.Traits[name]) {
			t.Errorf("%s: events give %+v, backfill %+v", name, a.Traits[name], b.Traits[name])
		}
	}
	if present < len(names)*2/3 { // min and max of a string property give none
		t.Fatalf("only %d of %d traits computed", present, len(names))
	}
}
