package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// Fencing (profile.Fenced): two appliers over one store. The old one's
// commit after a new term began is refused, and nothing it wrote is
// visible; a commit already in flight when the new term is claimed lands
// first, and the claim waits for it.
func TestStaleApplierTermIsRefused(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	old, next := profile.Term{Fence: "leases@1", N: 5}, profile.Term{Fence: "leases@1", N: 7}
	if err := db.ClaimTerm(ctx, old); err != nil {
		t.Fatal(err)
	}
	write := func(tx profile.StateTx, pid, email string, seq int64) {
		t.Helper()
		if err := tx.PutIdentity(portrait.Identifier{Type: "email", Value: email}, pid, portrait.EventKey{}); err != nil {
			t.Fatal(err)
		}
		if err := tx.PutProfile(prof(pid)); err != nil {
			t.Fatal(err)
		}
		if err := tx.SetCheckpoint(profile.CheckpointName, seq); err != nil {
			t.Fatal(err)
		}
	}
	// The old applier's batch is computed; the new applier claims its term
	// before the old one commits.
	stale, err := db.BeginStateTerm(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	write(stale, "p-old", "old@x", 10)
	if err := db.ClaimTerm(ctx, next); err != nil {
		t.Fatal(err)
	}
	err = stale.Commit()
	if portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Fatalf("the old term's commit after a new term began: %v, want ECONFLICT", err)
	}
	stale.Rollback()
	if _, err := db.Profile(ctx, "p-old"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the refused commit's profile is visible: %v", err)
	}
	if ids, _, _, err := db.LoadIdentities(ctx, 100); err != nil || len(ids) != 0 {
		t.Errorf("the refused commit's identities are visible: %v %v", ids, err)
	}
	if cp, err := db.Checkpoint(ctx, profile.CheckpointName); err != nil || cp != 0 {
		t.Errorf("checkpoint %d %v after a refused commit, want 0", cp, err)
	}
	if c, _, _, err := db.ProfileChanges(ctx, 0, 100); err != nil || slices.Contains(c, "p-old") {
		t.Errorf("the refused commit is in the change feed: %v %v", c, err)
	}
	// Refused at the first write too, once flushed.
	stale, _ = db.BeginStateTerm(ctx, old)
	write(stale, "p-old", "old@x", 10)
	if err := stale.Flush(); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("the old term's flush: %v, want ECONFLICT", err)
	}
	stale.Rollback()
	if err := db.ClaimTerm(ctx, old); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("claiming an earlier term again: %v, want ECONFLICT", err)
	}

	// The current term commits, as often as it likes.
	for i, pid := range []string{"p-new", "p-new2"} {
		tx, err := db.BeginStateTerm(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		write(tx, pid, pid+"@x", int64(20+i))
		if err := tx.Commit(); err != nil {
			t.Fatalf("the current term's commit %d: %v", i, err)
		}
	}
	// A transaction of the current term in flight (flushed: its first
	// statement holds the fence's row) when a later term is claimed: the
	// claim waits for it, so the later applier reads the state after it.
	inFlight, _ := db.BeginStateTerm(ctx, next)
	write(inFlight, "p-flight", "flight@x", 30)
	if err := inFlight.Flush(); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan error, 1)
	go func() { claimed <- db.ClaimTerm(ctx, profile.Term{Fence: "leases@1", N: 9}) }()
	select {
	case err := <-claimed:
		t.Fatalf("a later term was claimed while a commit of the term before was in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := inFlight.Commit(); err != nil {
		t.Fatalf("the commit in flight before the claim: %v", err)
	}
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	if cp, _ := db.Checkpoint(ctx, profile.CheckpointName); cp != 30 {
		t.Errorf("checkpoint %d, want the in-flight commit's 30", cp)
	}
	tx, _ := db.BeginStateTerm(ctx, next)
	write(tx, "p-late", "late@x", 40)
	if err := tx.Commit(); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("term 7's commit after term 9 began: %v, want ECONFLICT", err)
	}
	// Another fence (a lease bucket created again: revisions from 1) is
	// counted apart; unfenced transactions (one node, a rebuild) are not
	// checked.
	tx, _ = db.BeginStateTerm(ctx, profile.Term{Fence: "leases@2", N: 1})
	write(tx, "p-other", "other@x", 50)
	if err := tx.Commit(); err != nil {
		t.Errorf("a new fence's first term: %v", err)
	}
	tx, _ = db.BeginState(ctx)
	write(tx, "p-plain", "plain@x", 60)
	if err := tx.Commit(); err != nil {
		t.Errorf("an unfenced transaction: %v", err)
	}
	if _, err := db.BeginStateTerm(ctx, profile.Term{Fence: "leases@1"}); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("term 0: %v, want EINVALID", err)
	}
}
