package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// recordedFeed is a change feed written from a processor's commits, in
// commit order, one entry per id, as a shared store keeps one: the
// follower under test sees only it and the store.
type recordedFeed struct {
	mu      sync.Mutex
	entries []feedEntry
}

type feedEntry struct {
	id      string
	deleted bool
}

func (f *recordedFeed) record(changed []*portrait.Profile, deleted []string, _ map[string][]*portrait.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range changed {
		f.entries = append(f.entries, feedEntry{id: p.ID})
	}
	for _, id := range deleted {
		f.entries = append(f.entries, feedEntry{id: id, deleted: true})
	}
}

func (f *recordedFeed) ProfileChanges(_ context.Context, after int64, limit int) (changed, deleted []string, next int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next = after
	for i := after; i < int64(len(f.entries)) && len(changed)+len(deleted) < limit; i++ {
		if e := f.entries[i]; e.deleted {
			deleted = append(deleted, e.id)
		} else {
			changed = append(changed, e.id)
		}
		next = i + 1
	}
	return changed, deleted, next, nil
}

// view is what an in-memory index knows: profile id → event count.
type view map[string]int

func (v view) apply(changed []*portrait.Profile, deleted []string, _ map[string][]*portrait.Event) {
	for _, p := range changed {
		v[p.ID] = p.EventCount
	}
	for _, id := range deleted {
		delete(v, id)
	}
}

// TestFollowerKeepsIndexesFromTheFeed: one processor (another node's
// applier) applies events, merges among them, and records its commits in a
// change feed; a follower that sees only the feed and the store keeps an
// index equal to the one the processor's own hook keeps and to the store,
// in small pages and across a merge that deletes profiles. A follower that
// starts later skims to the end first and then reads only what follows.
func TestFollowerKeepsIndexesFromTheFeed(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	feed := &recordedFeed{}
	truth := view{}
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.OnChange = func(c []*portrait.Profile, d []string, a map[string][]*portrait.Event) {
		truth.apply(c, d, a)
		feed.record(c, d, a)
	}
	followed := view{}
	f := &follower{Feed: feed, Profiles: db, OnChange: followed.apply, Limit: 7}
	var calls int
	inner := f.OnChange
	f.OnChange = func(c []*portrait.Profile, d []string, a map[string][]*portrait.Event) {
		calls++
		if a != nil {
			t.Errorf("the follower invented applied events")
		}
		inner(c, d, a)
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var seq int
	send := func(evs ...*portrait.Event) {
		for _, e := range evs {
			seq++
			e.MessageID, e.Source, e.ReceivedAt = fmt.Sprintf("m-%d", seq), "web", at
			e.Timestamp = at.Add(time.Duration(seq) * time.Second)
		}
		res, err := db.Append(ctx, evs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := proc.CatchUp(ctx, res.LastSeq); err != nil {
			t.Fatal(err)
		}
	}
	catchUp := func(f *follower) {
		for range 1000 {
			n, err := f.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
		t.Fatal("the follower never caught up")
	}
	stored := func() view {
		v := view{}
		if err := db.AllProfiles(ctx, func(p *portrait.Profile) error { v[p.ID] = p.EventCount; return nil }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	same := func(what string, a, b view) {
		t.Helper()
		if len(a) != len(b) {
			t.Fatalf("%s: %d profiles, want %d", what, len(a), len(b))
		}
		for id, n := range b {
			if a[id] != n {
				t.Fatalf("%s: profile %s counts %d events, want %d", what, id, a[id], n)
			}
		}
	}

	// 20 anonymous visitors, then 20 users, each a profile of its own.
	for i := range 20 {
		send(&portrait.Event{Type: portrait.EventPage, AnonymousID: fmt.Sprintf("a-%d", i), Name: "home"},
			&portrait.Event{Type: portrait.EventTrack, UserID: fmt.Sprintf("u-%d", i), Name: "Viewed"})
	}
	catchUp(f)
	same("follower after 40 profiles", followed, truth)
	if len(truth) != 40 {
		t.Fatalf("%d profiles, want 40", len(truth))
	}
	// An identify ties each visitor to a user: half the profiles merge
	// away (deleted), the other half change.
	for i := range 20 {
		send(&portrait.Event{Type: portrait.EventIdentify, UserID: fmt.Sprintf("u-%d", i), AnonymousID: fmt.Sprintf("a-%d", i)})
	}
	late := &follower{Feed: feed, Profiles: db, OnChange: func([]*portrait.Profile, []string, map[string][]*portrait.Event) {
		t.Error("a follower that skimmed to the end read an earlier change")
	}}
	if err := late.Skim(ctx); err != nil {
		t.Fatal(err)
	}
	catchUp(late)
	catchUp(f)
	same("follower after the merges", followed, truth)
	same("follower against the store", followed, stored())
	if len(truth) != 20 {
		t.Fatalf("%d profiles after the merges, want 20", len(truth))
	}
	if calls < 2*40/7 {
		t.Errorf("%d calls of OnChange for pages of 7 over 80+ changes", calls)
	}
	// The late follower reads what comes after its skim.
	lateView := view{}
	late.OnChange = lateView.apply
	send(&portrait.Event{Type: portrait.EventTrack, UserID: "u-3", Name: "Bought"})
	catchUp(late)
	if len(lateView) != 1 || lateView[profileOf(t, db, "u-3")] != truth[profileOf(t, db, "u-3")] {
		t.Errorf("late follower: %v, want only u-3's profile with %d events", lateView, truth[profileOf(t, db, "u-3")])
	}
	// An id the feed lists as changed that the store no longer has is
	// handed on as deleted.
	feed.mu.Lock()
	feed.entries = append(feed.entries, feedEntry{id: "gone-profile"})
	feed.mu.Unlock()
	lateView["gone-profile"] = 1
	catchUp(late)
	if _, ok := lateView["gone-profile"]; ok {
		t.Error("a profile missing from the store stayed in the follower's index")
	}
}

func profileOf(t *testing.T, db *sqlite.DB, user string) string {
	t.Helper()
	p, err := db.ProfileByIdentifier(context.Background(), portrait.Identifier{Type: "user_id", Value: user})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}
