package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// scratch is an empty store of the harness's kind serving as the
// compaction's scratch store; the harness cleans it up.
type scratch struct{ LogStore }

func (scratch) Close() error { return nil }

// expiryKeepsProfilesAndRebuildIsExact: for any history, arrival order and
// limit, expiring the events before the limit changes no live profile, the
// log keeps no event before it, a rebuild from the compacted log gives the
// live profiles, and events arriving afterwards (late ones in the kept
// period included) give what they give on the uncompacted log; events of
// the expired period arriving afterwards keep the rebuild exact.
func expiryKeepsProfilesAndRebuildIsExact(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("property test")
	}
	ctx := context.Background()
	st := &stores{h: h, t: t}
	spec := rapid.Custom(func(t *rapid.T) evSpec {
		return evSpec{
			typ: rapid.IntRange(0, 3).Draw(t, "typ"), user: rapid.IntRange(0, 4).Draw(t, "user"),
			anon: rapid.IntRange(0, 9).Draw(t, "anon"), email: rapid.IntRange(0, 4).Draw(t, "email"),
			at: rapid.IntRange(0, 50).Draw(t, "at"), name: rapid.IntRange(0, 3).Draw(t, "name"), once: rapid.IntRange(0, 2).Draw(t, "once"),
		}
	})
	rapid.Check(t, func(rt *rapid.T) {
		events := genEvents(rapid.SliceOfN(spec, 1, 30).Draw(rt, "events"))
		cutoff := t0.Add(time.Duration(rapid.IntRange(0, 51).Draw(rt, "cutoff")) * time.Second)
		// Later arrivals: in the kept period only, or anywhere.
		later := genEvents(rapid.SliceOfN(spec, 0, 8).Draw(rt, "later"))
		for i, e := range later {
			e.MessageID = "late-" + e.MessageID[4:] + string(rune('a'+i%26))
		}
		anywhere := rapid.Bool().Draw(rt, "anywhere")
		if !anywhere {
			for _, e := range later {
				if e.Timestamp.Before(cutoff) {
					e.Timestamp = cutoff.Add(e.Timestamp.Sub(t0))
				}
			}
		}

		a := newEnv(st.get(0))
		perm := rapid.Permutation(events).Draw(rt, "order")
		for len(perm) > 0 {
			n := rapid.IntRange(1, len(perm)).Draw(rt, "chunk")
			a.send(t, perm[:n]...)
			a.catchUp(t)
			perm = perm[n:]
		}
		before := a.snapshot(t)
		cs, ok := a.db.(profile.CompactStore)
		if !ok {
			rt.Fatalf("%T does not expire events", a.db)
		}
		run, err := a.proc.Compact(ctx, cs, cutoff, func(context.Context) (profile.ScratchStore, error) { return scratch{st.get(2)}, nil })
		if err != nil {
			rt.Fatal(err)
		}
		expired := 0
		for _, e := range events {
			if e.Timestamp.Before(cutoff) {
				expired++
			}
		}
		if int(run.Deleted) != expired {
			rt.Fatalf("%d events deleted, %d were due", run.Deleted, expired)
		}
		if got := a.snapshot(t); !reflect.DeepEqual(got, before) {
			diff(rt.Logf, got, before)
			rt.Fatalf("the expiry changed live profiles")
		}
		last, _ := a.db.LastSeq(ctx)
		logged, err := a.db.ReadLog(ctx, 0, int(last)+1)
		if err != nil {
			rt.Fatal(err)
		}
		for _, e := range logged {
			if e.Type != portrait.EventRetained && e.Timestamp.Before(cutoff) {
				rt.Fatalf("event %s (%s) is still in the log", e.MessageID, e.Timestamp)
			}
		}
		rebuilt := func(what string) map[string]string {
			live := a.snapshot(t)
			if err := a.db.ResetState(ctx); err != nil {
				rt.Fatal(err)
			}
			a.proc = newEnv(a.db).proc
			a.catchUp(t)
			got := a.snapshot(t)
			if !reflect.DeepEqual(got, live) {
				diff(rt.Logf, got, live)
				rt.Fatalf("rebuild %s differs from the live profiles", what)
			}
			return got
		}
		rebuilt("after the expiry")

		if len(later) == 0 {
			return
		}
		a.send(t, later...)
		a.catchUp(t)
		if !anywhere {
			// The kept period replays exactly: as on the whole log.
			b := newEnv(st.get(1))
			b.send(t, canonical(append(append([]*portrait.Event(nil), events...), later...))...)
			b.catchUp(t)
			if got, want := a.snapshot(t), b.snapshot(t); !reflect.DeepEqual(got, want) {
				diff(rt.Logf, got, want)
				rt.Fatalf("later events on the compacted log differ from the whole log")
			}
		}
		rebuilt("with later events")
	})
}
