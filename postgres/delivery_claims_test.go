package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/profile"
)

// The rules of delivery.Claims: a slot is claimed once, only in its
// fence's latest term; a claim left before the point of no return by a
// term that is over is taken over by the next; a claim past it (sending)
// never is, and a stale term neither claims nor starts a send.
func TestDeliveryClaimsSendASlotAtMostOnce(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	const fence = "jobs:store:leases"
	begin := func(n uint64) {
		t.Helper()
		if err := db.ClaimTerm(ctx, profile.Term{Fence: fence, N: n}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(node string, term uint64, slot int64) *delivery.Claim {
		return &delivery.Claim{Delivery: "dlv_1", Slot: slot, Holder: node, Fence: fence, Term: term, At: time.Now()}
	}
	must := func(ok bool, err error, want bool, what string) {
		t.Helper()
		if err != nil || ok != want {
			t.Errorf("%s: %v %v, want %v", what, ok, err, want)
		}
	}
	if c, err := db.LastDeliveryClaim(ctx, "dlv_1"); c != nil || err != nil {
		t.Fatalf("a claim before any: %+v %v", c, err)
	}
	begin(1)
	a1 := claim("a", 1, 1)
	ok, err := db.ClaimDeliverySlot(ctx, a1)
	must(ok, err, true, "a claims slot 1 in term 1")
	ok, err = db.ClaimDeliverySlot(ctx, claim("b", 1, 1))
	must(ok, err, false, "slot 1 claimed again in the same term by another node")
	ok, err = db.ClaimDeliverySlot(ctx, claim("a", 1, 1))
	must(ok, err, true, "a claims its own unsent slot 1 again in its term")
	ok, err = db.ClaimDeliverySlot(ctx, claim("b", 2, 2))
	must(ok, err, false, "a claim in a term not begun")

	// Term 2 begins while a holds slot 1 before its point of no return:
	// a can no longer send it; b takes it over.
	begin(2)
	ok, err = db.StartDeliverySend(ctx, a1)
	must(ok, err, false, "a starts sending after term 2 began")
	b1 := claim("b", 2, 1)
	ok, err = db.ClaimDeliverySlot(ctx, b1)
	must(ok, err, true, "b takes over slot 1, abandoned by term 1")
	ok, err = db.StartDeliverySend(ctx, b1)
	must(ok, err, true, "b starts sending slot 1")
	if c, err := db.LastDeliveryClaim(ctx, "dlv_1"); err != nil || c == nil || c.Holder != "b" || c.Term != 2 || c.Status != delivery.ClaimSending || c.Slot != 1 {
		t.Errorf("last claim %+v %v, want b's slot 1 sending in term 2", c, err)
	}

	// Term 3: a slot past its point of no return is never taken over.
	begin(3)
	ok, err = db.ClaimDeliverySlot(ctx, claim("c", 3, 1))
	must(ok, err, false, "c takes over slot 1, which b may have sent")
	ok, err = db.ClaimDeliverySlot(ctx, claim("b", 2, 2))
	must(ok, err, false, "b claims slot 2 after term 3 began")
	if err := db.FinishDeliverySlot(ctx, b1, delivery.ClaimDone); err != nil {
		t.Fatal(err)
	}
	c2 := claim("c", 3, 2)
	ok, err = db.ClaimDeliverySlot(ctx, c2)
	must(ok, err, true, "c claims slot 2")
	ok, err = db.StartDeliverySend(ctx, c2)
	must(ok, err, true, "c starts sending slot 2")
	ok, err = db.ClaimDeliverySlot(ctx, claim("c", 3, 1))
	must(ok, err, false, "slot 1, done, claimed again")
	if c, err := db.LastDeliveryClaim(ctx, "dlv_1"); err != nil || c == nil || c.Slot != 2 || c.Status != delivery.ClaimSending {
		t.Errorf("last claim %+v %v, want slot 2 sending", c, err)
	}
}
