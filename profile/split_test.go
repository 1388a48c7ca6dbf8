package profile_test

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// profileOf is the profile holding id, which must exist.
func (e *env) profileOf(t *testing.T, id portrait.Identifier) *portrait.Profile {
	t.Helper()
	p, err := e.db.ProfileByIdentifier(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("no profile holds %v: %v", id, err)
	}
	return p
}

// eventsOf lists the message ids of a profile's events, sorted.
func (e *env) eventsOf(t *testing.T, id string) []string {
	t.Helper()
	evs, _, err := e.db.ProfileEvents(context.Background(), id, portrait.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.MessageID)
	}
	sort.Strings(out)
	return out
}

// journalEntry finds the entry of a kind (and message, when given) in a
// profile's merge journal.
func (e *env) journalEntry(t *testing.T, pid, kind, msg string) *portrait.MergeEntry {
	t.Helper()
	ms, err := e.db.ProfileMerges(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	var found *portrait.MergeEntry
	for _, m := range ms {
		if m.Kind == kind && (msg == "" || m.MessageID == msg) {
			found = m
		}
	}
	return found
}

// replayed is the state a rebuild from e's log gives: every logged event,
// in log order, applied by a fresh processor on a fresh store.
func (e *env) replayed(t *testing.T) *env {
	t.Helper()
	evs, err := e.db.ReadLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, t.TempDir())
	r.send(t, evs...)
	r.catchUp(t)
	return r
}

// An identity merge (a device and a user joined by one event) is undone
// by a split event: the two customers come back with their own traits and
// events, a rebuild gives the same, later events carrying both
// identifiers land on the user's side (the stronger identifier) without
// merging, and undoing the split merges them again.
func TestSplitUndoesAnIdentityMerge(t *testing.T) {
	ctx := context.Background()
	dev := portrait.Identifier{Type: "anonymous_id", Value: "dev-1"}
	user := portrait.Identifier{Type: "user_id", Value: "u2"}
	history := []*portrait.Event{
		ev("m1", "identify", "", "dev-1", time.Minute, `{"name":"张三","city":"上海市"}`),
		ev("m2", "identify", "u2", "", 2*time.Minute, `{"name":"李四","city":"北京市"}`),
		ev("m3", "track", "u2", "dev-1", 3*time.Minute, ""), // a shared tablet: the wrong merge
	}
	e := open(t, t.TempDir())
	e.send(t, history...)
	e.catchUp(t)
	merged := e.profileOf(t, dev)
	if merged.ID != e.profileOf(t, user).ID {
		t.Fatal("m3 did not merge the device and the user")
	}
	m := e.journalEntry(t, merged.ID, portrait.MergeMerged, "m3")
	if m == nil || m.Identifier != dev && m.Identifier != user {
		t.Fatalf("the merge is not journalled with its identifier: %+v", m)
	}

	e.send(t, profile.SplitEvent("split-1", m, "ops@example.com", portrait.EventKey{Time: t0.Add(time.Hour)}))
	e.catchUp(t)
	a, b := e.profileOf(t, dev), e.profileOf(t, user)
	if a.ID == b.ID {
		t.Fatal("the split left the profiles merged")
	}
	if a.Traits["name"].Value != "张三" || b.Traits["name"].Value != "李四" || a.Traits["city"].Value != "上海市" || b.Traits["city"].Value != "北京市" {
		t.Errorf("traits not back on their sides: %v / %v", a.Traits, b.Traits)
	}
	if got := e.eventsOf(t, a.ID); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Errorf("device side events %v, want [m1]", got)
	}
	// The bridge lands on the side of its strongest identifier, user_id.
	if got := e.eventsOf(t, b.ID); !reflect.DeepEqual(got, []string{"m2", "m3"}) {
		t.Errorf("user side events %v, want [m2 m3]", got)
	}
	if a.ID != profile.ProfileID("m1") || b.ID != profile.ProfileID("m2") {
		t.Errorf("ids %s %s, want those of their first events", a.ID, b.ID)
	}
	s := e.journalEntry(t, a.ID, portrait.MergeSplit, "split-1")
	if s == nil || !strings.Contains(s.Reason, "ops@example.com") || s.From == "" || s.Into == "" {
		t.Fatalf("the split is not journalled with who decided it and both sides: %+v", s)
	}
	if e.journalEntry(t, b.ID, portrait.MergeSplit, "split-1") == nil {
		t.Error("the split is missing from the other side's journal")
	}

	// Later: the same tablet again, and the device alone.
	e.send(t,
		ev("m5", "track", "u2", "dev-1", 2*time.Hour, ""),
		ev("m6", "page", "", "dev-1", 3*time.Hour, ""),
	)
	e.catchUp(t)
	a, b = e.profileOf(t, dev), e.profileOf(t, user)
	if a.ID == b.ID {
		t.Fatal("a later event with both identifiers merged the split profiles again")
	}
	if got := e.eventsOf(t, b.ID); !reflect.DeepEqual(got, []string{"m2", "m3", "m5"}) {
		t.Errorf("user side events %v, want [m2 m3 m5]", got)
	}
	if got := e.eventsOf(t, a.ID); !reflect.DeepEqual(got, []string{"m1", "m6"}) {
		t.Errorf("device side events %v, want [m1 m6]", got)
	}
	if r := e.journalEntry(t, b.ID, portrait.MergeRefused, "m5"); r == nil || !strings.Contains(r.Reason, "kept apart by split split-1") {
		t.Errorf("the refusal of m5 does not name the split: %+v", r)
	}

	// A rebuild from the log gives the same profiles, and so does a late
	// event that makes the processor replay both sides.
	want := e.snapshot(t)
	if got := e.replayed(t).snapshot(t); !reflect.DeepEqual(got, want) {
		t.Errorf("rebuild differs:\n got %v\nwant %v", got, want)
	}
	if err := e.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	e.proc = open(t, t.TempDir()).proc // a fresh processor...
	e.proc.Store = e.db                // ...over the reset store
	e.catchUp(t)
	if got := e.snapshot(t); !reflect.DeepEqual(got, want) {
		t.Errorf("rebuild in place differs:\n got %v\nwant %v", got, want)
	}
	e.send(t, ev("m0", "page", "u2", "dev-1", 0, "")) // before everything: both sides replay
	e.catchUp(t)
	if e.profileOf(t, dev).ID == e.profileOf(t, user).ID {
		t.Fatal("a late event before the bridge merged the split profiles")
	}

	// Undoing the split merges them again, as if it had never been made.
	e.send(t, retractEvent("undo-split-1", 4*time.Hour, "split-1"))
	e.catchUp(t)
	if e.profileOf(t, dev).ID != e.profileOf(t, user).ID {
		t.Fatal("undoing the split did not merge the profiles again")
	}
	canon := open(t, t.TempDir())
	canon.send(t, append(history, ev("m5", "track", "u2", "dev-1", 2*time.Hour, ""), ev("m6", "page", "", "dev-1", 3*time.Hour, ""), ev("m0", "page", "u2", "dev-1", 0, ""))...)
	canon.catchUp(t)
	if got, want := e.snapshot(t), canon.snapshot(t); !reflect.DeepEqual(got, want) {
		t.Errorf("after re-merge the profiles differ from a history without the split:\n got %v\nwant %v", got, want)
	}
	if r := e.journalEntry(t, e.profileOf(t, dev).ID, portrait.MergeRetracted, "split-1"); r == nil {
		t.Error("the re-merge is not journalled")
	}
	if got := e.replayed(t).snapshot(t); !reflect.DeepEqual(got, e.snapshot(t)) {
		t.Error("rebuild after the re-merge differs")
	}
}

// Two profiles joined through a shared e-mail and phone (no user ids):
// the split keeps every identifier each side held apart, so an event that
// carries the e-mail of one side and the phone of the other is refused
// too, not only the bridge's own pair.
func TestSplitKeepsWholeSidesApart(t *testing.T) {
	email := portrait.Identifier{Type: "email", Value: "a@example.com"}
	phone := portrait.Identifier{Type: "phone", Value: "+8613800000001"}
	e := open(t, t.TempDir())
	e.send(t,
		ev("m1", "identify", "", "dev-a", time.Minute, `{"email":"a@example.com"}`),
		ev("m2", "identify", "", "dev-b", 2*time.Minute, `{"phone":"+8613800000001"}`),
		ev("m3", "identify", "", "dev-c", 3*time.Minute, `{"email":"a@example.com","phone":"+8613800000001"}`),
	)
	e.catchUp(t)
	pr := e.profileOf(t, email)
	m := e.journalEntry(t, pr.ID, portrait.MergeMerged, "m3")
	if m == nil || pr.ID != e.profileOf(t, phone).ID {
		t.Fatalf("m3 did not merge: %+v", m)
	}
	e.send(t, profile.SplitEvent("split-2", m, "ops", portrait.EventKey{Time: t0.Add(time.Hour)}))
	e.send(t, ev("m4", "track", "", "dev-a", 2*time.Hour, `{"phone":"+8613800000001"}`))
	e.catchUp(t)
	a, b := e.profileOf(t, email), e.profileOf(t, phone)
	if a.ID == b.ID {
		t.Fatal("an event joining dev-a and the phone merged the split sides")
	}
	if e.profileOf(t, portrait.Identifier{Type: "anonymous_id", Value: "dev-a"}).ID != a.ID {
		t.Error("dev-a left the e-mail's side")
	}
}

// A late event whose replay makes a merge journals the merge like a live
// one: the identifier and the event that made it, and why it was
// re-derived.
func TestReplayedMergeIsJournalled(t *testing.T) {
	e := open(t, t.TempDir())
	e.send(t, ev("m1", "page", "", "a1", time.Minute, ""), ev("m2", "page", "u1", "", 2*time.Minute, ""), ev("m5", "page", "u1", "", 5*time.Minute, ""))
	e.catchUp(t)
	e.send(t, ev("m3", "track", "u1", "a1", 3*time.Minute, "")) // late: it joins them
	e.catchUp(t)
	pr := e.profileOf(t, portrait.Identifier{Type: "user_id", Value: "u1"})
	m := e.journalEntry(t, pr.ID, portrait.MergeMerged, "m3")
	if m == nil || m.From == "" || m.Identifier.Value == "" || !strings.Contains(m.Reason, "replay") {
		t.Fatalf("the replayed merge is not journalled with what and why: %+v", m)
	}
	if e.journalEntry(t, pr.ID, portrait.MergeRebuilt, "m3") == nil {
		t.Error("the replay itself is not journalled")
	}
}
