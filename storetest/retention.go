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

// expiredDecisionsHold: identity decisions outlive the events they were
// recorded by and the events they decided about. After a pass and a
// rebuild from the compacted log, a split older than the limit still keeps
// its sides apart against a kept event joining them, a kept split of an
// expired merge still does, a retraction older than the limit still undoes
// the kept event it names, and a kept retraction of an expired event still
// leaves that event out.
func expiredDecisionsHold(t *testing.T, h Harness) {
	ctx := context.Background()
	st := &stores{h: h, t: t}
	a := newEnv(st.get(0))
	min := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	a.send(t,
		// Split 1, decided in the expired period, of a merge there.
		ev("x1", "identify", "u1", "", min(1), `{"name":"Xu"}`),
		ev("y1", "identify", "", "d1", min(2), `{"city":"Hangzhou"}`),
		ev("bridge1", "track", "u1", "d1", min(3), ""),
		// Split 2, decided in the kept period, of a merge in the expired one.
		ev("x2", "identify", "u2", "", min(4), `{"name":"Yang"}`),
		ev("y2", "identify", "", "d2", min(5), `{"city":"Suzhou"}`),
		ev("bridge2", "track", "u2", "d2", min(6), ""),
		// Retraction 1, in the expired period, of a kept event (its clock
		// was ahead); retraction 2, kept, of an expired event.
		retractEvent("undo1", min(7), "ahead"),
		ev("old-name", "identify", "u3", "", min(8), `{"name":"Old"}`),
		ev("u3-page", "page", "u3", "", min(9), ""),
	)
	a.catchUp(t)
	split := func(msg, bridge string, at time.Duration) *portrait.Event {
		t.Helper()
		var m *portrait.MergeEntry
		err := a.db.AllProfiles(ctx, func(q *portrait.Profile) error {
			ms, err := a.db.ProfileMerges(ctx, q.ID)
			for _, x := range ms {
				if x.Kind == portrait.MergeMerged && x.MessageID == bridge {
					m = x
				}
			}
			return err
		})
		if err != nil || m == nil {
			t.Fatalf("no merge journalled for %s: %v", bridge, err)
		}
		s := profile.SplitEvent(msg, m, "ops", portrait.EventKey{Time: t0.Add(at)})
		return s
	}
	a.send(t, split("split1", "bridge1", min(10)))
	a.catchUp(t)
	a.send(t,
		split("split2", "bridge2", min(100)),
		retractEvent("undo2", min(101), "old-name"),
		ev("ahead", "identify", "u4", "", min(102), `{"name":"Ahead"}`),
		ev("join1", "track", "u1", "d1", min(103), ""),
		ev("join2", "track", "u2", "d2", min(104), ""),
	)
	a.catchUp(t)
	apart := func(when string) {
		t.Helper()
		for _, p := range [][2]string{{"u1", "d1"}, {"u2", "d2"}} {
			x, err1 := a.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: p[0]})
			y, err2 := a.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "anonymous_id", Value: p[1]})
			if err1 != nil || err2 != nil || x == nil || y == nil {
				t.Fatalf("%s: %s or %s has no profile: %v %v", when, p[0], p[1], err1, err2)
			}
			if x.ID == y.ID {
				t.Errorf("%s: %s and %s are on one profile: the split does not hold", when, p[0], p[1])
			}
		}
		for _, u := range []string{"u3", "u4"} {
			x, err := a.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: u})
			if err != nil && portrait.ErrorCode(err) != portrait.ENOTFOUND {
				t.Fatal(err)
			}
			if x != nil && x.Traits["name"].Value != nil {
				t.Errorf("%s: %s is named %v: a retracted event counts", when, u, x.Traits["name"].Value)
			}
		}
	}
	apart("live")
	live := a.snapshot(t)
	cs := a.db.(profile.CompactStore)
	if _, err := a.proc.Compact(ctx, cs, t0.Add(min(50)), func(context.Context) (profile.ScratchStore, error) { return scratch{st.get(1)}, nil }); err != nil {
		t.Fatal(err)
	}
	if got := a.snapshot(t); !reflect.DeepEqual(got, live) {
		diff(t.Logf, got, live)
		t.Fatal("the pass changed live profiles")
	}
	apart("after the pass")
	if err := a.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	a.proc = newEnv(a.db).proc
	a.catchUp(t)
	apart("after a rebuild")
	if got := a.snapshot(t); !reflect.DeepEqual(got, live) {
		diff(t.Logf, got, live)
		t.Error("the rebuild differs from the live profiles")
	}
}
