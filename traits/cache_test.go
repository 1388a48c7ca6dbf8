package traits_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// A profile's events of a batch are held decoded until its Finish, however
// many other profiles the enricher sees in between: the cache used to
// restart at 400,000 entries, dropping states still to be finished, so
// that the profile's Finish decoded its stored state afresh and lost the
// batch's events (here: a purchase_count of 0 instead of 1). Profiles that
// never reach Finish (a failed batch's) are collected, not kept until a
// size.
func TestUnfinishedStateKeptPastManyProfiles(t *testing.T) {
	n := 400_001
	if raceEnabled {
		n = 50_000 // too slow under -race; the race build checks the rest
	}
	en, err := traits.New(traits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	buy := &portrait.Event{MessageID: "buy", Type: portrait.EventTrack, Name: "Order Completed", UserID: "live", Timestamp: t0}
	live := &portrait.Profile{ID: "live", FirstSeen: t0, LastSeen: t0}
	en.Event(live, buy, map[string]any{"revenue": 42.0})
	view := &portrait.Event{Type: portrait.EventPage, Name: "Home", Timestamp: t0}
	start := time.Now()
	for i := range n {
		if i%100_000 == 0 {
			runtime.GC() // the abandoned profiles below are garbage from here on
		}
		// The old cache also scanned all its entries on every insertion
		// past 200,000 when they were unfinished: quadratic, hours for
		// this loop. A few seconds here, minutes on a loaded machine.
		if i%10_000 == 0 && time.Since(start) > 3*time.Minute {
			t.Fatalf("%d profiles took %v: the cache's cost per profile grows with its size", i, time.Since(start))
		}
		p := &portrait.Profile{ID: fmt.Sprint("gone", i), FirstSeen: t0, LastSeen: t0}
		en.Event(p, view, nil)
	}
	en.Finish(live, t0.Add(time.Hour))
	if got := live.Traits["purchase_count"].Value; got != 1.0 {
		t.Fatalf("purchase_count = %v after %d unfinished profiles, want 1 (the batch's purchase)", got, n)
	}
}
