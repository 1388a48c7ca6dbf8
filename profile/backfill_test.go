package profile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// A backfill of old events for a customer already identified replays the
// customer's history once per batch, not once per event: the journal shows
// how many re-orderings happened.
func TestBackfillReplaysOncePerBatch(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t, ev("live", "identify", "u1", "dev-1", 1000*time.Hour, `{"name":"王芳"}`))
	e.catchUp(t)
	var old []*portrait.Event
	for i := range 2000 {
		old = append(old, ev(fmt.Sprintf("old-%04d", i), "track", "", "dev-1", time.Duration(i)*time.Minute, ""))
	}
	e.send(t, old...)
	e.catchUp(t)
	p, err := e.db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.EventCount != 2001 {
		t.Fatalf("event count %d, want 2001", p.EventCount)
	}
	merges, _ := e.db.ProfileMerges(context.Background(), p.ID)
	rebuilds := 0
	for _, m := range merges {
		if m.Kind == portrait.MergeRebuilt {
			rebuilds++
		}
	}
	if rebuilds != 1 {
		t.Errorf("%d re-orderings for one batch of backfilled events, want 1", rebuilds)
	}
}
