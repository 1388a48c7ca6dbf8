package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// EraseStore is a whole store, as an erasure goes through it: the log,
// the derived state the processor writes, the reads, and the erasure.
type EraseStore interface {
	profile.Store
	profile.EraseStore
	portrait.EventLog
	portrait.ProfileReader
	portrait.QuarantineStore
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	ResetState(ctx context.Context) error
	Erasures(ctx context.Context, limit int) ([]*portrait.ErasureReceipt, error)
	Suppressions(ctx context.Context) ([]*portrait.Suppression, error)
	CountEvents(ctx context.Context) (int64, error)
	EventCountsBySource(ctx context.Context) (map[string]int64, error)
}

// Erase checks an erasure through the processor, end to end: two people's
// events are appended and applied, one person is erased by a merged-away
// id; the person's profile, identities, events and quarantined record are
// gone, the other person is untouched, the identifiers are suppressed,
// and a rebuild from the log (which skips the tombstones) derives exactly
// the state the erasure left.
func Erase(t *testing.T, s EraseStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	newProc := func() *profile.Processor {
		rules := identity.DefaultRules()
		rules.Normalize = clean.Identifier
		p := profile.NewProcessor(s, rules)
		p.Linger, p.BusyLinger = 0, 0
		p.Now = func() time.Time { return t0.Add(72 * time.Hour) }
		return p
	}
	catchUp := func(p *profile.Processor) {
		t.Helper()
		last, err := s.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(msg, typ, user, anon string, at time.Duration, traits string) *portrait.Event {
		e := &portrait.Event{MessageID: msg, Type: typ, Source: "web", UserID: user, AnonymousID: anon, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
		if traits != "" {
			e.Traits = json.RawMessage(traits)
		}
		if typ == portrait.EventTrack {
			e.Name = "Order Completed"
		}
		return e
	}
	evs := []*portrait.Event{
		// The anonymous visitor and the signed-in user are two profiles
		// until m-a2 merges them.
		ev("m-a0", portrait.EventTrack, "u-erase-7781", "", 0, ""),
		ev("m-a1", portrait.EventIdentify, "", "anon-erase-4410", time.Minute, `{"email":"Zhang.Erasable@Example.com","name":"Zhang Erasable"}`),
		ev("m-a2", portrait.EventIdentify, "u-erase-7781", "anon-erase-4410", 2*time.Minute, `{"address":"Hangzhou Xihu Erasable Road 9"}`),
		ev("m-b1", portrait.EventIdentify, "u-keep-1", "", 3*time.Minute, `{"email":"li.kept@example.com","name":"Li Kept"}`),
		ev("m-b2", portrait.EventTrack, "u-keep-1", "", 4*time.Minute, ""),
	}
	rej := []*portrait.Rejected{
		{Source: "web", Index: 0, Reason: "bad timestamp", Raw: []byte(`{"userId":"u-erase-7781","timestamp":"yesterday"}`), ReceivedAt: t0},
		{Source: "web", Index: 1, Reason: "bad timestamp", Raw: []byte(`{"userId":"u-keep-1","timestamp":"yesterday"}`), ReceivedAt: t0},
	}
	if _, err := s.Append(ctx, evs, rej); err != nil {
		t.Fatal(err)
	}
	proc := newProc()
	catchUp(proc)
	victim, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	if len(victim.MergedFrom) == 0 {
		t.Fatalf("the person's two profiles did not merge: %+v", victim)
	}
	rc, err := proc.Erase(ctx, s, profile.Erasure{ID: "er-1", ProfileID: victim.MergedFrom[0], By: "admin", Reason: "art. 17", At: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rc.ProfileID != victim.ID || rc.Removed["events"] != 3 || rc.Removed["quarantined"] != 1 || rc.Removed["profiles"] < 2 || len(rc.Suppressed) < 3 {
		t.Errorf("receipt: %+v", rc)
	}
	for _, id := range append([]string{victim.ID}, victim.MergedFrom...) {
		if _, err := s.Profile(ctx, id); portrait.ErrorCode(err) != portrait.ENOTFOUND {
			t.Errorf("profile %s is still readable: %v", id, err)
		}
	}
	for _, id := range []portrait.Identifier{{Type: portrait.IDUserID, Value: "u-erase-7781"}, {Type: portrait.IDEmail, Value: "zhang.erasable@example.com"}} {
		if _, err := s.ProfileByIdentifier(ctx, id); portrait.ErrorCode(err) != portrait.ENOTFOUND {
			t.Errorf("%v still finds a profile: %v", id, err)
		}
	}
	kept, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-keep-1"})
	if err != nil || kept.Traits["name"].Value != "Li Kept" || kept.EventCount != 2 {
		t.Fatalf("the other person was harmed: %+v %v", kept, err)
	}
	q, err := s.ListQuarantine(ctx, portrait.QuarantineFilter{})
	if err != nil || len(q) != 1 || !strings.Contains(string(q[0].Raw), "u-keep-1") {
		t.Errorf("quarantine after erasure: %+v %v", q, err)
	}
	log, err := s.ReadLog(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.Type == portrait.EventErased || strings.Contains(e.UserID+e.AnonymousID, "erase") {
			t.Errorf("the log still serves %+v", e)
		}
	}
	if len(log) != 2 {
		t.Errorf("the log serves %d events, want the other person's 2", len(log))
	}
	// The tombstones keep sequence numbers, not events: counts (overview,
	// quality) do not show them.
	if n, err := s.CountEvents(ctx); err != nil || n != 2 {
		t.Errorf("CountEvents after the erasure = %d %v, want 2", n, err)
	}
	if by, err := s.EventCountsBySource(ctx); err != nil || !reflect.DeepEqual(by, map[string]int64{"web": 2}) {
		t.Errorf("EventCountsBySource after the erasure = %v %v, want web: 2", by, err)
	}
	if got, err := s.Erasures(ctx, 10); err != nil || len(got) != 1 || got[0].Hash != rc.Hash {
		t.Errorf("receipts: %+v %v", got, err)
	}
	if sups, err := s.Suppressions(ctx); err != nil || len(sups) != len(rc.Suppressed) {
		t.Errorf("suppressions: %d %v, receipt %d", len(sups), err, len(rc.Suppressed))
	}

	// A rebuild from the log derives exactly the live state.
	all := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		if err := s.AllProfiles(ctx, func(p *portrait.Profile) error {
			b, _ := json.Marshal(p)
			out[p.ID] = string(b)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	live := all()
	if len(live) != 1 {
		t.Fatalf("%d profiles after erasure, want 1", len(live))
	}
	if err := s.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	catchUp(newProc())
	if rebuilt := all(); !reflect.DeepEqual(rebuilt, live) {
		t.Errorf("rebuild differs from the live state:\n%v\n%v", rebuilt, live)
	}
}
