package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// A forwarded erasure is performed exactly once: the applier b erases,
// then stops before writing its answer (as if killed between the two);
// the next applier c finds the request unanswered and, instead of erasing
// again (the person is gone: not_found), answers with the receipt b's
// erasure committed. The asking node a gets that receipt; one receipt is
// stored.
func TestForwardedErasureIsDoneOnceWhenTheApplierDiesBeforeAnswering(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	b := openSharedApp(t, url, "b", "all")
	a := openSharedApp(t, url, "a", "api")
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*portrait.Event
	for i := range 2 {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at, Traits: json.RawMessage(`{"plan":"gold"}`)})
	}
	if _, err := b.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b applies the events", func() bool { n, _ := b.DB.CountProfiles(ctx); return n == 2 })
	var ids []string
	b.DB.AllProfiles(ctx, func(p *portrait.Profile) error { ids = append(ids, p.ID); return nil })

	var performed atomic.Int32
	dies := func(int64) bool { performed.Add(1); return false }
	b.rewritePerformed.Store(&dies)
	type answer struct {
		rc  *portrait.ErasureReceipt
		err error
	}
	got := make(chan answer, 1)
	ectx, ecancel := context.WithCancel(ctx)
	asked := make(chan struct{})
	t.Cleanup(func() { ecancel(); <-asked }) // before a closes
	go func() {
		defer close(asked)
		rc, err := a.HTTP.Erasure.Erase(ectx, ids[0], "admin@test", "asked")
		got <- answer{rc, err}
	}()
	within(t, 20*time.Second, "b performs the erasure", func() bool { return performed.Load() > 0 })
	b.Close() // b dies before answering
	if _, err := a.DB.Profile(ctx, ids[0]); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Fatalf("b's erasure did not commit: %v", err)
	}

	openSharedApp(t, url, "c", "all") // the next applier
	var ans answer
	select {
	case ans = <-got:
	case <-time.After(45 * time.Second):
		t.Fatal("a has no answer from the next applier")
	}
	if ans.err != nil {
		t.Fatalf("the erasure through a, performed by b, answered by c: %v (want b's receipt)", ans.err)
	}
	if ans.rc.ProfileID != ids[0] || ans.rc.Hash == "" {
		t.Errorf("receipt %+v", ans.rc)
	}
	rcs, err := a.DB.Erasures(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].ID != ans.rc.ID {
		t.Errorf("%d receipts stored (%v), want the one answered", len(rcs), rcs)
	}
	if _, err := a.DB.Profile(ctx, ids[1]); err != nil {
		t.Errorf("the other customer: %v", err)
	}
}
