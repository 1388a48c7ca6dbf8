package profile

import (
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// The spill file gives back the carried-forward events and owners written
// to it, in order and a page at a time, every time it is read; a record
// altered on disk is refused, not misread.
func TestSpillRoundTrip(t *testing.T) {
	s, err := newSpill()
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.UTC)
	var want []Carried
	for i := 0; i < 2*spillPage+3; i++ {
		e := &portrait.Event{MessageID: RetainedID("p"+string(rune('a'+i%26)), t0.Add(time.Duration(i))), Type: portrait.EventRetained,
			Source: portrait.SourceRetention, Properties: []byte(`{"profile":"` + string(rune('a'+i%26)) + `"}`), Timestamp: t0.Add(time.Duration(i) * time.Second), ReceivedAt: t0}
		owner := ""
		if i%7 != 0 {
			owner = "p_owner"
		}
		if i == 5 {
			e.Timestamp = time.Time{}
		}
		if err := s.write(e, owner); err != nil {
			t.Fatal(err)
		}
		want = append(want, Carried{Event: e, Owner: owner})
	}
	if err := s.done(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		var got []Carried
		pages := 0
		if err := s.read(func(page []Carried) error {
			pages++
			got = append(got, page...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if pages != 3 || len(got) != len(want) {
			t.Fatalf("read %d records in %d pages, want %d in 3", len(got), pages, len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Owner != w.Owner || g.Event.MessageID != w.Event.MessageID || g.Event.Type != w.Event.Type || g.Event.Source != w.Event.Source ||
				string(g.Event.Properties) != string(w.Event.Properties) || !g.Event.Timestamp.Equal(w.Event.Timestamp) || !reflect.DeepEqual(g.Event.ReceivedAt, w.Event.ReceivedAt) {
				t.Fatalf("record %d: %+v %q, want %+v %q", i, g.Event, g.Owner, w.Event, w.Owner)
			}
		}
	}
	if _, err := s.f.WriteAt([]byte{0xff}, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.read(func([]Carried) error { return nil }); err == nil {
		t.Fatal("an altered spill file was read")
	}
}
