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
	"github.com/portrait-cdp/portrait/erasure"
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

// AuditedEraseStore is an erasure's store that is also its audit log.
type AuditedEraseStore interface {
	EraseStore
	portrait.AuditLog
}

// diesAfterErasing commits an erasure and then fails, as a node killed
// right after the erasure's transaction would: what the caller meant to
// do next (record it) never happens.
type diesAfterErasing struct{ AuditedEraseStore }

var errDied = portrait.Errorf(portrait.EUNAVAILABLE, "the node died after the erasure committed")

func (d diesAfterErasing) EraseProfile(ctx context.Context, e profile.Erasure) (*portrait.ErasureReceipt, error) {
	if _, err := d.AuditedEraseStore.EraseProfile(ctx, e); err != nil {
		return nil, err
	}
	return nil, errDied
}

// ErasureAuditedWithItsReceipt checks that an erasure's audit record
// commits with its receipt: the erasure service's node "dies" right after
// the erasure's transaction, and the audit log still holds exactly one
// record naming the receipt (the receipt and its hash), the chain sound;
// an erasure that fails (no such profile) records nothing. A re-run that
// answers with the stored receipt (cmd/portrait's forwarded erasures)
// then has nothing left to write.
func ErasureAuditedWithItsReceipt(t *testing.T, s AuditedEraseStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i, u := range []string{"u-audit-1", "u-audit-2"} {
		evs = append(evs, &portrait.Event{MessageID: "m-audit-" + u, Type: portrait.EventIdentify, Source: "web", UserID: u,
			Traits: json.RawMessage(`{"name":"Chen Audited"}`), Timestamp: t0.Add(time.Duration(i) * time.Minute), ReceivedAt: t0})
	}
	if _, err := s.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	proc := profile.NewProcessor(s, rules)
	proc.Linger, proc.BusyLinger = 0, 0
	last, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	victim, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-audit-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, portrait.AuditRecord{Actor: "admin@test", Action: "key.create", Target: "k1"}); err != nil {
		t.Fatal(err)
	}
	svc := &erasure.Service{Proc: proc, Store: diesAfterErasing{s}, Audit: s, Now: func() time.Time { return t0.Add(time.Hour) }}
	if _, err := svc.EraseAs(ctx, "er_audited", victim.ID, "admin@test", "art. 17"); err != errDied {
		t.Fatalf("the erasure: %v, want the node's death after the commit", err)
	}
	if _, err := svc.EraseAs(ctx, "er_nobody", "p-nobody", "admin@test", "art. 17"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Fatalf("erasing no one: %v", err)
	}
	rcs, err := s.Erasures(ctx, 10)
	if err != nil || len(rcs) != 1 || rcs[0].ID != "er_audited" {
		t.Fatalf("receipts: %+v %v", rcs, err)
	}
	recs, err := s.ListAudit(ctx, portrait.AuditFilter{Action: "profile.erase"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d audit records of the erasure, want 1 (committed with its receipt)", len(recs))
	}
	if r := recs[0]; r.Actor != "admin@test" || r.Target != victim.ID || r.Detail["erasure_id"] != "er_audited" || r.Detail["hash"] != rcs[0].Hash || r.Seq != 2 {
		t.Errorf("the erasure's audit record: %+v (receipt %+v)", r, rcs[0])
	}
	// The chain goes on after it, and verifies.
	if err := s.Record(ctx, portrait.AuditRecord{Actor: "admin@test", Action: "key.revoke", Target: "k1"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 3 {
		t.Errorf("VerifyAudit = %d, %v; want 3 records, sound", n, err)
	}
}
