package profile_test

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// A late event that carries two identifiers, arriving after a later event
// merged their profiles, is where the merge happens in canonical order: it
// must not take the shortcut that applies late events in place (their
// identifiers were all attached before it, but the merge was not), and the
// profiles must come out as in canonical order, with the merge at m3.
func TestLateEventBeforeTheMergeItWouldHaveMade(t *testing.T) {
	ctx := context.Background()
	m1 := ev("m1", "page", "", "a1", 1*time.Minute, "")
	m2 := ev("m2", "page", "u1", "", 2*time.Minute, "")
	m3 := ev("m3", "track", "u1", "a1", 3*time.Minute, "") // late: it joins a1 and u1 first
	m5 := ev("m5", "identify", "u1", "a1", 5*time.Minute, `{"plan":"pro"}`)

	late := open(t, t.TempDir())
	late.send(t, m1, m2, m5)
	late.catchUp(t)
	late.send(t, m3)
	late.catchUp(t)

	canon := open(t, t.TempDir())
	canon.send(t, m1, m2, m3, m5)
	canon.catchUp(t)

	journal := func(e *env) []string {
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
		if err != nil || p == nil {
			t.Fatalf("no profile for u1: %v", err)
		}
		ms, err := e.db.ProfileMerges(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Kind+" "+m.MessageID)
		}
		return out
	}
	// The journal keeps history: the late run shows the merge m5 made,
	// then the replay that moved it to m3, where the canonical run has it.
	got, want := journal(late), journal(canon)
	if len(want) != 1 || want[0] != "merged m3" {
		t.Fatalf("canonical merge journal %v, want [merged m3]", want)
	}
	moved := false
	for _, m := range got {
		moved = moved || m == "merged m3"
	}
	if !moved {
		t.Fatalf("merge journal %v: the late event did not move the merge to m3 (canonical %v)", got, want)
	}
	if a, b := late.snapshot(t), canon.snapshot(t); len(a) != len(b) {
		t.Fatalf("%d profiles, canonical %d", len(a), len(b))
	} else {
		for id, doc := range b {
			if a[id] != doc {
				t.Fatalf("profile %s:\n got %s\nwant %s", id, a[id], doc)
			}
		}
	}
}
