package traits_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// RFM boundaries come as soon as someone buys, not at the next daily job,
// and are recomputed as the buyers double; visitors who never buy and a
// buyer's further orders do not trigger anything.
func TestRFMBoundariesFollowTheBuyers(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir())
	svc := traits.NewService(e.db, e.en)
	svc.Now = func() time.Time { return e.now }
	svc.Each = e.db.AllProfiles
	svc.Refresh = e.proc.Refresh
	customers := func() int {
		if b := e.en.Boundaries(); b != nil {
			return b.Customers
		}
		return 0
	}
	// The null case: visitors only.
	e.send(t, &portrait.Event{MessageID: "v1", Type: portrait.EventPage, Source: "web", UserID: "visitor", Timestamp: t0, ReceivedAt: t0})
	if ok, err := svc.RefreshRFM(ctx); ok || err != nil || customers() != 0 {
		t.Fatalf("no buyer yet: recomputed %v %v, %d customers", ok, err, customers())
	}
	buy := func(i int, user string) {
		e.send(t, track(fmt.Sprintf("o%d", i), user, "Order Completed", day*time.Duration(i), fmt.Sprintf(`{"revenue": %d}`, 100*i)))
	}
	// The first buyer: boundaries at once, and the profile is scored.
	buy(1, "u1")
	if ok, err := svc.RefreshRFM(ctx); !ok || err != nil || customers() != 1 {
		t.Fatalf("first buyer: recomputed %v %v, %d customers", ok, err, customers())
	}
	if _, ok := e.user(t, "u1").Traits["rfm_score"]; !ok {
		t.Fatal("the first buyer has no rfm_score after the boundaries were computed")
	}
	want := []struct {
		user      string
		recompute bool
		customers int
	}{
		{"u1", false, 1}, // a second order of the same buyer
		{"u2", true, 2},  // doubled
		{"u3", false, 2}, // 3 < 2×2
		{"u4", true, 4},
		{"u5", false, 4},
		{"u6", false, 4},
		{"u7", false, 4},
		{"u8", true, 8},
	}
	for i, w := range want {
		buy(i+2, w.user)
		ok, err := svc.RefreshRFM(ctx)
		if err != nil || ok != w.recompute || customers() != w.customers {
			t.Errorf("after %s bought: recomputed %v (want %v), %d customers (want %d), %v", w.user, ok, w.recompute, customers(), w.customers, err)
		}
	}
	if _, ok := e.user(t, "u8").Traits["rfm_segment"]; !ok {
		t.Error("the eighth buyer has no rfm_segment")
	}
}
