package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// A forwarded erasure is performed exactly once, and audited once: the
// applier b erases, then dies right after the erasure's transaction
// commits (before anything after it: the audit record, when it was
// written after the commit, and the answer); the next applier c finds the
// request unanswered and, instead of erasing again (the person is gone:
// not_found), answers with the receipt b's erasure committed. The asking
// node a gets that receipt; one receipt is stored, and one audit record of
// it, the chain sound.
func TestForwardedErasureIsDoneOnceWhenTheApplierDiesBeforeAnswering(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var dying *diesAfterErasing
	b := openSharedAppWith(t, url, "b", "all", func(b *App) {
		svc := b.eraseHere.(*erasure.Service)
		dying = &diesAfterErasing{Store: svc.Store, committed: make(chan struct{})}
		svc.Store = dying
	})
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
	select {
	case <-dying.committed:
	case <-time.After(20 * time.Second):
		t.Fatal("b did not perform the erasure")
	}
	b.Close() // b dies after the erasure's commit, before anything else
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
	recs, err := a.DB.ListAudit(ctx, portrait.AuditFilter{Action: "profile.erase"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Detail["erasure_id"] != ans.rc.ID || recs[0].Detail["hash"] != ans.rc.Hash || recs[0].Actor != "admin@test" {
		t.Errorf("audit records of the erasure: %d (%+v), want one naming receipt %s", len(recs), recs, ans.rc.ID)
	}
	if _, err := a.DB.VerifyAudit(ctx); err != nil {
		t.Errorf("the audit chain: %v", err)
	}
}

// diesAfterErasing commits an erasure and then hangs until its node
// stops, as a node killed right after the erasure's transaction would.
type diesAfterErasing struct {
	erasure.Store
	committed chan struct{}
}

func (d *diesAfterErasing) EraseProfile(ctx context.Context, e profile.Erasure) (*portrait.ErasureReceipt, error) {
	if _, err := d.Store.EraseProfile(ctx, e); err != nil {
		return nil, err
	}
	close(d.committed)
	<-ctx.Done()
	return nil, ctx.Err()
}

// openSharedAppWith is openSharedApp with set run on the app between its
// opening and its start.
func openSharedAppWith(t *testing.T, url, name, role string, set func(*App)) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: url, LogLevel: "error"}
	cfg.Role, cfg.Node, cfg.AnalyticsEvery = role, name, 0
	a, err := OpenApp(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { a.Close() })
	set(a)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}
