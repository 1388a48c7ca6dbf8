// Package storetest is the conformance suite of profile.Store: the rules of
// the state transaction that the processor relies on, checked against a
// real store, so that a second store is held to what the first one does
// rather than to comments. A store's own tests call Run.
//
// The rules checked here are those every store must keep. StateTx also
// permits a store to answer Identity and Profile without the transaction's
// own writes (SQLite does, as it writes behind); that is a permission, not
// a rule, so it is not asserted.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// Run checks the store open returns, a new empty one for each subtest
// (open registers its own cleanup).
func Run(t *testing.T, open func(t *testing.T) profile.Store) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s profile.Store)
	}{
		{"CommittedGraphIsRead", committedGraphIsRead},
		{"RollbackDiscards", rollbackDiscards},
		{"MoveRefusedSkipsOwnIdentifiers", moveRefusedSkipsOwn},
		{"ProfileEventSeqsSeeOwnWrites", profileEventSeqsSeeOwnWrites},
		{"NoReadsAfterFlush", noReadsAfterFlush},
		{"PutProfileConcurrent", putProfileConcurrent},
		{"DeletesAreCommitted", deletesAreCommitted},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func email(s string) portrait.Identifier { return portrait.Identifier{Type: "email", Value: s} }

func newProfile(id string, ids ...portrait.Identifier) *portrait.Profile {
	return &portrait.Profile{
		ID: id, Traits: map[string]portrait.Trait{}, Identifiers: ids,
		EventCount: 1, EventCounts: map[string]int{"track": 1},
		FirstSeen: t0, LastSeen: t0, UpdatedAt: t0,
		FirstKey: portrait.EventKey{Time: t0, MessageID: "m-" + id}, LastKey: portrait.EventKey{Time: t0, MessageID: "m-" + id},
	}
}

// commit runs fn in one transaction and waits until storage has it.
func commit(t *testing.T, s profile.Store, fn func(tx profile.StateTx) error) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
}

// read runs fn in a transaction it then rolls back.
func read(t *testing.T, s profile.Store, fn func(tx profile.StateTx)) {
	t.Helper()
	tx, err := s.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	fn(tx)
}

func refused(t *testing.T, s profile.Store) []profile.Ref {
	t.Helper()
	refs, err := s.LoadRefused(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].ID != refs[j].ID {
			return refs[i].ID.Value < refs[j].ID.Value
		}
		return refs[i].ProfileID < refs[j].ProfileID
	})
	return refs
}

func committedGraphIsRead(t *testing.T, s profile.Store) {
	ctx := context.Background()
	at := portrait.EventKey{Time: t0.Add(time.Second), MessageID: "m1"}
	commit(t, s, func(tx profile.StateTx) error {
		if err := tx.PutIdentity(email("a@x"), "p1", at); err != nil {
			return err
		}
		if err := tx.PutIdentity(email("b@x"), "p1", portrait.EventKey{}); err != nil {
			return err
		}
		if err := tx.PutRefused(profile.Ref{ID: email("a@x"), ProfileID: "p2"}); err != nil {
			return err
		}
		return tx.PutProfile(newProfile("p1", email("a@x"), email("b@x")))
	})
	read(t, s, func(tx profile.StateTx) {
		for id, want := range map[portrait.Identifier]string{email("a@x"): "p1", email("b@x"): "p1", email("c@x"): ""} {
			if got, err := tx.Identity(id); err != nil || got != want {
				t.Errorf("Identity(%v) = %q, %v; want %q", id, got, err, want)
			}
		}
		pr, err := tx.Profile("p1")
		if err != nil || pr == nil {
			t.Fatalf("Profile(p1) = %v, %v", pr, err)
		}
		if pr.ID != "p1" || pr.EventCount != 1 || !reflect.DeepEqual(pr.Identifiers, []portrait.Identifier{email("a@x"), email("b@x")}) {
			t.Errorf("Profile(p1) read back as %+v", pr)
		}
		if pr, err := tx.Profile("p9"); err != nil || pr != nil {
			t.Errorf("Profile of an absent id = %v, %v; want nil, nil", pr, err)
		}
	})
	ids, atk, complete, err := s.LoadIdentities(ctx, 10)
	if err != nil || !complete {
		t.Fatalf("LoadIdentities(10) complete=%v err=%v", complete, err)
	}
	if !reflect.DeepEqual(ids, map[portrait.Identifier]string{email("a@x"): "p1", email("b@x"): "p1"}) {
		t.Errorf("LoadIdentities owners %v", ids)
	}
	if k, ok := atk[email("a@x")]; !ok || !k.Time.Equal(at.Time) || k.MessageID != at.MessageID {
		t.Errorf("a@x's attaching key read back as %v %v, want %v", k, ok, at)
	}
	if _, ok := atk[email("b@x")]; ok {
		t.Errorf("an identifier put with a zero key has one: %v", atk[email("b@x")])
	}
	if _, _, complete, err := s.LoadIdentities(ctx, 1); err != nil || complete {
		t.Errorf("LoadIdentities below the graph's size: complete=%v err=%v", complete, err)
	}
	if got := refused(t, s); !reflect.DeepEqual(got, []profile.Ref{{ID: email("a@x"), ProfileID: "p2"}}) {
		t.Errorf("LoadRefused = %v", got)
	}
	if got, err := s.ProfileIDs(ctx, "", 10); err != nil || !reflect.DeepEqual(got, []string{"p1"}) {
		t.Errorf("ProfileIDs = %v, %v", got, err)
	}
}

func rollbackDiscards(t *testing.T, s profile.Store) {
	tx, err := s.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutIdentity(email("a@x"), "p1", portrait.EventKey{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutProfile(newProfile("p1", email("a@x"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitState(context.Background()); err != nil {
		t.Fatal(err)
	}
	read(t, s, func(tx profile.StateTx) {
		if got, err := tx.Identity(email("a@x")); err != nil || got != "" {
			t.Errorf("rolled back identity read as %q, %v", got, err)
		}
		if pr, err := tx.Profile("p1"); err != nil || pr != nil {
			t.Errorf("rolled back profile read as %v, %v", pr, err)
		}
	})
}

// moveRefusedSkipsOwn: a merge moves the refusals naming the merged
// profile to the kept one, except those of identifiers the kept one owns,
// including one given to it earlier in the same transaction (a profile
// is not kept apart from its own identifiers).
func moveRefusedSkipsOwn(t *testing.T, s profile.Store) {
	commit(t, s, func(tx profile.StateTx) error {
		for _, r := range []profile.Ref{{ID: email("a@x"), ProfileID: "p3"}, {ID: email("b@x"), ProfileID: "p3"}, {ID: email("c@x"), ProfileID: "p3"}} {
			if err := tx.PutRefused(r); err != nil {
				return err
			}
		}
		return tx.PutIdentity(email("c@x"), "p2", portrait.EventKey{})
	})
	commit(t, s, func(tx profile.StateTx) error {
		if err := tx.PutIdentity(email("b@x"), "p2", portrait.EventKey{}); err != nil {
			return err
		}
		return tx.MoveRefused("p3", "p2")
	})
	if got := refused(t, s); !reflect.DeepEqual(got, []profile.Ref{{ID: email("a@x"), ProfileID: "p2"}}) {
		t.Errorf("after MoveRefused(p3, p2): %v, want only a@x refused by p2", got)
	}
}

// profileEventSeqsSeeOwnWrites: unlike Identity and Profile,
// ProfileEventSeqs includes the transaction's own additions and moves.
func profileEventSeqsSeeOwnWrites(t *testing.T, s profile.Store) {
	ev := func(seq int64) *portrait.Event {
		return &portrait.Event{Seq: seq, MessageID: fmt.Sprint("m", seq), Type: "track", Timestamp: t0.Add(time.Duration(seq) * time.Second)}
	}
	commit(t, s, func(tx profile.StateTx) error { return tx.AddProfileEvent("p1", ev(1)) })
	tx, err := s.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	seqs := func(pid string) []int64 {
		t.Helper()
		s, err := tx.ProfileEventSeqs(pid)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s
	}
	if err := tx.AddProfileEvent("p1", ev(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.AddProfileEvent("p2", ev(3)); err != nil {
		t.Fatal(err)
	}
	if got := seqs("p1"); !reflect.DeepEqual(got, []int64{1, 2}) {
		t.Errorf("p1's events with one committed and one added: %v", got)
	}
	if err := tx.MoveProfileEvents("p1", "p2"); err != nil {
		t.Fatal(err)
	}
	if got := seqs("p2"); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
		t.Errorf("p2's events after p1's moved to it: %v", got)
	}
}

// noReadsAfterFlush: once a transaction handed its writes over, a read is
// refused with an error rather than answered from a state that may be
// half written.
func noReadsAfterFlush(t *testing.T, s profile.Store) {
	tx, err := s.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.PutIdentity(email("a@x"), "p1", portrait.EventKey{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Identity(email("a@x")); err == nil {
		t.Error("Identity after Flush answered")
	}
	if _, err := tx.Profile("p1"); err == nil {
		t.Error("Profile after Flush answered")
	}
	if _, err := tx.ProfileEventSeqs("p1"); err == nil {
		t.Error("ProfileEventSeqs after Flush answered")
	}
	// Writes after a Flush follow it.
	if err := tx.PutProfile(newProfile("p1", email("a@x"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitState(context.Background()); err != nil {
		t.Fatal(err)
	}
	read(t, s, func(tx profile.StateTx) {
		if got, err := tx.Identity(email("a@x")); err != nil || got != "p1" {
			t.Errorf("identity written before the Flush read as %q, %v", got, err)
		}
		if pr, err := tx.Profile("p1"); err != nil || pr == nil {
			t.Errorf("profile written after the Flush read as %v, %v", pr, err)
		}
	})
}

// putProfileConcurrent: PutProfile, alone of the methods, may be called
// from several goroutines at once (run under -race), before and after a
// Flush.
func putProfileConcurrent(t *testing.T, s profile.Store) {
	const n, workers = 400, 8
	tx, err := s.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put := func(from, to int) {
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from + w; i < to; i += workers {
					if err := tx.PutProfile(newProfile(fmt.Sprintf("p%04d", i))); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, n/2)
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	put(n/2, n)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitState(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ProfileIDs(context.Background(), "", 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n {
		t.Fatalf("%d profiles stored, want %d", len(ids), n)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("p%04d", i); id != want {
			t.Fatalf("profile %d is %s, want %s (ProfileIDs in order)", i, id, want)
		}
	}
}

func deletesAreCommitted(t *testing.T, s profile.Store) {
	commit(t, s, func(tx profile.StateTx) error {
		if err := tx.PutIdentity(email("a@x"), "p1", portrait.EventKey{}); err != nil {
			return err
		}
		if err := tx.PutRefused(profile.Ref{ID: email("b@x"), ProfileID: "p1"}); err != nil {
			return err
		}
		if err := tx.PutRefused(profile.Ref{ID: email("b@x"), ProfileID: "p2"}); err != nil {
			return err
		}
		return tx.PutProfile(newProfile("p1", email("a@x")))
	})
	commit(t, s, func(tx profile.StateTx) error {
		if err := tx.DeleteIdentity(email("a@x")); err != nil {
			return err
		}
		if err := tx.DeleteRefused("p1"); err != nil {
			return err
		}
		return tx.DeleteProfile("p1")
	})
	read(t, s, func(tx profile.StateTx) {
		if got, err := tx.Identity(email("a@x")); err != nil || got != "" {
			t.Errorf("deleted identity read as %q, %v", got, err)
		}
		if pr, err := tx.Profile("p1"); err != nil || pr != nil {
			t.Errorf("deleted profile read as %v, %v", pr, err)
		}
	})
	if got := refused(t, s); !reflect.DeepEqual(got, []profile.Ref{{ID: email("b@x"), ProfileID: "p2"}}) {
		t.Errorf("refusals after DeleteRefused(p1): %v", got)
	}
}
