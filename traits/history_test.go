package traits_test

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// A computed trait defined after the events it counts covers them: the
// service computes it over every profile's history, with the same result as
// if it had been defined before any event.
func TestNewTraitCoversHistory(t *testing.T) {
	ctx := context.Background()
	def := traits.Definition{Name: "big_orders", Aggregate: "count", Event: "Order Completed", Filter: "properties.revenue > 100"}
	evs := []*portrait.Event{
		track("o1", "u1", "Order Completed", 0, `{"revenue":50}`),
		track("o2", "u1", "Order Completed", day, `{"revenue":500}`),
		track("o3", "u1", "Order Completed", 2*day, `{"revenue":900}`),
		track("o4", "u2", "Order Completed", 3*day, `{"revenue":150}`),
	}
	late := open(t, t.TempDir())
	before := open(t, t.TempDir(), def)
	for _, e := range []*env{late, before} {
		e.send(t, evs...)
	}
	svc := traits.NewService(late.db, late.en)
	svc.Now = func() time.Time { return t0 }
	svc.Reapply = late.proc.Reapply
	if _, err := svc.Define(ctx, def); err != nil {
		t.Fatal(err)
	}
	svc.CoverHistory(ctx, "big_orders")
	if st := svc.Progress(); st == nil || st.State != "done" || st.Profiles != 2 {
		t.Fatalf("progress %+v", st)
	}
	for _, u := range []string{"u1", "u2"} {
		if got, want := num(t, late.user(t, u), "big_orders"), num(t, before.user(t, u), "big_orders"); got != want {
			t.Errorf("%s: %v over history, %v when defined first", u, got, want)
		}
	}
	if got := num(t, late.user(t, "u1"), "big_orders"); got != 2 {
		t.Errorf("u1 big_orders %v, want 2", got)
	}
	// New events still count once.
	late.send(t, track("o5", "u1", "Order Completed", 4*day, `{"revenue":200}`))
	if got := num(t, late.user(t, "u1"), "big_orders"); got != 3 {
		t.Errorf("after a new order %v, want 3", got)
	}
}
