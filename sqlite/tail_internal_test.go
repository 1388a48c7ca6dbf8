package sqlite

import (
	"testing"

	"github.com/portrait-cdp/portrait"
)

// The tail answers reads of recent events exactly, says when it cannot
// (the events were trimmed), and stays bounded.
func TestTailReadsAndBounds(t *testing.T) {
	tl := tail{from: 0, max: 100}
	seq := int64(0)
	for range 500 {
		var evs []*portrait.Event
		for range 7 {
			seq++
			evs = append(evs, &portrait.Event{Seq: seq})
		}
		tl.add(evs)
		if len(tl.events) > tl.max+tl.max/2+7 {
			t.Fatalf("tail holds %d events (max %d)", len(tl.events), tl.max)
		}
		if len(tl.events) < tl.max {
			if tl.from != 0 {
				t.Fatalf("trimmed below max: %d events from %d", len(tl.events), tl.from)
			}
		}
		// Everything after from is there, in order.
		got, ok := tl.read(tl.from, 1000)
		if !ok || int64(len(got)) != seq-tl.from || got[0].Seq != tl.from+1 || got[len(got)-1].Seq != seq {
			t.Fatalf("read after %d: ok=%v, %d events; want %d", tl.from, ok, len(got), seq-tl.from)
		}
		if tl.from > 0 {
			if _, ok := tl.read(tl.from-1, 10); ok {
				t.Fatalf("read before the tail (after %d < from %d) answered", tl.from-1, tl.from)
			}
		}
		if got, ok := tl.read(seq-3, 2); !ok || len(got) != 2 || got[0].Seq != seq-2 {
			t.Fatalf("read of the last events: %v %v", ok, got)
		}
	}
}
