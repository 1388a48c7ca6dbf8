package traits_test

import (
	"reflect"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// The processor calls Event and Finish from several goroutines, for
// different profiles: the results must be those of one goroutine.
func TestConcurrentProfilesMatchSequential(t *testing.T) {
	n := 4000
	if raceEnabled {
		n = 1500
	}
	evs := benchEvents(n)
	props := make([]map[string]any, len(evs))
	for i, e := range evs {
		json.Unmarshal(e.Properties, &props[i])
	}
	// Two batches with a Finish after each, as the processor does.
	run := func(ens []profile.Enricher, workers int) map[string]*portrait.Profile {
		profiles := map[string]*portrait.Profile{}
		byUser := map[string][]int{}
		for i, e := range evs {
			if profiles[e.UserID] == nil {
				profiles[e.UserID] = &portrait.Profile{ID: e.UserID}
			}
			byUser[e.UserID] = append(byUser[e.UserID], i)
		}
		users := make([]string, 0, len(byUser))
		for u := range byUser {
			users = append(users, u)
		}
		for half := range 2 {
			now := t0.Add(time.Duration(n*(half+1)/2) * time.Minute)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w; k < len(users); k += workers {
						p := profiles[users[k]]
						idx := byUser[users[k]]
						for _, i := range idx[half*len(idx)/2 : (half+1)*len(idx)/2] {
							e := evs[i]
							if p.FirstSeen.IsZero() {
								p.FirstSeen, p.FirstKey = e.Timestamp, e.Key()
							}
							p.LastSeen, p.LastKey = e.Timestamp, e.Key()
							p.EventCount++
							for _, en := range ens {
								en.Event(p, e, props[i])
							}
						}
						for _, en := range ens {
							en.Finish(p, now)
						}
					}
				}()
			}
			wg.Wait()
		}
		return profiles
	}
	want := run(enrichers(t), 1)
	got := run(enrichers(t), 4)
	if len(got) != len(want) {
		t.Fatalf("%d profiles, want %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if !reflect.DeepEqual(g.Traits, w.Traits) || !reflect.DeepEqual(g.Tags, w.Tags) ||
			string(g.State["traits"]) != string(w.State["traits"]) {
			t.Fatalf("profile %s differs when processed concurrently:\n got %v %v\nwant %v %v", id, g.Traits, g.Tags, w.Traits, w.Tags)
		}
	}
	if len(want["u2"].Tags) == 0 || len(want["u2"].Traits) < 20 {
		t.Fatalf("the test profile has too little to compare: %d tags, %d traits", len(want["u2"].Tags), len(want["u2"].Traits))
	}
}
