package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// EraseCarriedStore is a store an erasure goes through after a retention
// pass that carried the accounts forward.
type EraseCarriedStore interface {
	EraseStore
	profile.CompactStore
	account.Store
	CarriedAccounts(ctx context.Context) ([]byte, error)
}

// EraseCarried: a retention pass carries the accounts its expired events
// made forward as one "$accounts" event in the log; erasing a member of a
// carried account rewrites that event without the person, in the
// erasure's transaction (profile.Erasure.Carried), so that the accounts
// that forgot the person (a rebuild from the log) and a rebuild later
// agree, and the log holds the person nowhere. Before, the record kept
// them and every rebuild installed them again.
func EraseCarried(t *testing.T, s EraseCarriedStore, scratch func(ctx context.Context) (profile.ScratchStore, error)) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0.Add(72 * time.Hour) }
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	proc := profile.NewProcessor(s, rules)
	proc.Linger, proc.BusyLinger = 0, 0
	proc.Now = now
	ev := func(msg, typ, user string, at time.Duration, traits string) *portrait.Event {
		e := &portrait.Event{MessageID: msg, Type: typ, Source: "web", UserID: user, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
		if traits != "" {
			e.Traits = json.RawMessage(traits)
		}
		if typ == portrait.EventGroup {
			e.GroupID = "acme-1"
		}
		return e
	}
	if _, err := s.Append(ctx, []*portrait.Event{
		ev("m-a1", portrait.EventIdentify, "u-erase-7781", 0, `{"email":"zhang.erasable@acme.example.cn","buying_role":"decision_maker","title":"Erasable Procurement Head","company":{"name":"Acme Trading","domain":"acme.example.cn"}}`),
		ev("m-a2", portrait.EventGroup, "u-erase-7781", time.Minute, `{"name":"Acme Trading","domain":"acme.example.cn"}`),
		ev("m-b1", portrait.EventIdentify, "u-keep-1", 2*time.Minute, `{"email":"li.kept@acme.example.cn","buying_role":"user"}`),
		ev("m-b2", portrait.EventGroup, "u-keep-1", 3*time.Minute, `{"name":"Acme Trading","domain":"acme.example.cn"}`),
		ev("m-b3", portrait.EventIdentify, "u-keep-1", 30*time.Hour, `{"buying_role":"champion"}`),
	}, nil); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	acc := account.NewService(s, s, now)
	if err := acc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	proc.Accounts = acc.Model
	if _, err := proc.Compact(ctx, s, t0.Add(24*time.Hour), scratch); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.CarriedAccounts(ctx); err != nil || !bytes.Contains(rec, []byte("u-erase-7781")) {
		t.Fatalf("the pass did not carry the person's account forward: %v", err)
	}
	victim, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := proc.Erase(ctx, s, profile.Erasure{ID: "er-1", ProfileID: victim.ID, By: "admin", Reason: "art. 17", At: t0.Add(48 * time.Hour), Carried: account.ForgetCarried})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["carried_accounts"] != 1 {
		t.Errorf("receipt: %v, want one carried accounts record rewritten", rc.Removed)
	}
	if err := acc.Forget(ctx, victim.Identifiers); err != nil {
		t.Fatal(err)
	}
	rec, err := s.CarriedAccounts(ctx)
	if err != nil || bytes.Contains(rec, []byte("u-erase-7781")) || !bytes.Contains(rec, []byte("u-keep-1")) {
		t.Errorf("the carried record after the erasure: holds the person %v, the other member %v (%v)",
			bytes.Contains(rec, []byte("u-erase-7781")), bytes.Contains(rec, []byte("u-keep-1")), err)
	}
	for _, pk := range acc.Model.Persons() {
		if pk == "user_id:u-erase-7781" {
			t.Errorf("the accounts still hold the erased person")
		}
	}
	fresh := account.NewService(s, s, now)
	if err := fresh.Model.Rebuild(); err != nil {
		t.Fatal(err)
	}
	live, err1 := acc.Model.Digest()
	rebuilt, err2 := fresh.Model.Digest()
	if err1 != nil || err2 != nil || live != rebuilt {
		t.Errorf("a rebuild differs from the live accounts after the erasure (%v, %v)", err1, err2)
	}
	// A second erasure of no one the record holds leaves it as it is.
	if _, ok, err := account.ForgetCarried(rec, []portrait.Identifier{{Type: portrait.IDUserID, Value: "u-nobody"}}); ok || err != nil {
		t.Errorf("forgetting no one the record holds changed it (%v)", err)
	}
}
