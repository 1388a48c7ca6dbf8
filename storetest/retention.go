package storetest

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
)

// scratch is an empty store of the harness's kind serving as the
// compaction's scratch store; the harness cleans it up.
type scratch struct{ LogStore }

func (scratch) Close() error { return nil }

// The scratch store's own questions (profile.ScratchStore), which both
// stores answer.
type scratchQuestions interface {
	RankMessages(ctx context.Context) error
	MessageRanks(ctx context.Context, ids []string) (map[string]int64, error)
	IdentitiesOfProfiles(ctx context.Context, pids []string) (map[string][]profile.BaseIdentity, error)
}

func (s scratch) RankMessages(ctx context.Context) error {
	return s.LogStore.(scratchQuestions).RankMessages(ctx)
}

func (s scratch) MessageRanks(ctx context.Context, ids []string) (map[string]int64, error) {
	return s.LogStore.(scratchQuestions).MessageRanks(ctx, ids)
}

func (s scratch) IdentitiesOfProfiles(ctx context.Context, pids []string) (map[string][]profile.BaseIdentity, error) {
	return s.LogStore.(scratchQuestions).IdentitiesOfProfiles(ctx, pids)
}

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
		isExpired := map[string]bool{}
		for _, e := range events {
			if e.Timestamp.Before(cutoff) {
				isExpired[e.MessageID] = true
			}
		}
		if got, want := renamed(rt, a.snapshot(t), isExpired), renamed(rt, before, isExpired); !reflect.DeepEqual(got, want) {
			diff(rt.Logf, got, want)
			rt.Fatalf("the expiry changed live profiles (more than the expired events' message ids)")
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
			if got, want := renamed(rt, a.snapshot(t), isExpired), renamed(rt, b.snapshot(t), isExpired); !reflect.DeepEqual(got, want) {
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
	isExpired := map[string]bool{}
	for _, m := range []string{"x1", "y1", "bridge1", "x2", "y2", "bridge2", "undo1", "old-name", "u3-page", "split1"} {
		isExpired[m] = true
	}
	cs := a.db.(profile.CompactStore)
	if _, err := a.proc.Compact(ctx, cs, t0.Add(min(50)), func(context.Context) (profile.ScratchStore, error) { return scratch{st.get(1)}, nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := renamed(t, a.snapshot(t), isExpired), renamed(t, live, isExpired); !reflect.DeepEqual(got, want) {
		diff(t.Logf, got, want)
		t.Fatal("the pass changed live profiles")
	}
	live = a.snapshot(t)
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

var expiredName = regexp.MustCompile(`"message_id":"~expired:[0-9]+:[0-9]+"`)

// renamed is a snapshot with the expired events' message ids (before a
// pass) and the names a pass gives them (after) written alike; it fails
// when a snapshot taken after a pass (one holding such a name) still names
// an expired event.
func renamed(t interface{ Fatalf(string, ...any) }, snap map[string]string, expired map[string]bool) map[string]string {
	out := make(map[string]string, len(snap))
	for id, doc := range snap {
		after := expiredName.MatchString(doc)
		for m := range expired {
			q := `"message_id":"` + m + `"`
			if after && strings.Contains(doc, q) {
				t.Fatalf("profile %s still names the expired message %s: %s", id, m, doc)
			}
			doc = strings.ReplaceAll(doc, q, `"message_id":"~expired"`)
		}
		out[id] = expiredName.ReplaceAllString(doc, `"message_id":"~expired"`)
	}
	return out
}

// ExpiredMessageIDsGone: after a retention pass no stored byte names an
// expired event's message id: not the log (tombstones), not the trait
// provenance or the first/last/identity keys of the live profiles and of
// the carried-forward ones, not the identity graph's attaching events,
// while a kept event's id is found. The rewritten rows leave their old
// bytes in free pages, so the store is compacted first (as an operator
// does; docs/erasure.md). scratch opens an empty store for the pass.
func ExpiredMessageIDsGone(t *testing.T, h SealHarness, scratch func(t *testing.T) profile.ScratchStore) {
	ctx := context.Background()
	e := openSealEnv(t, h, &datakey.Sealer{})
	expired := []string{"gone-msg-q7x1", "gone-msg-q7x2", "gone-msg-q7x3", "gone-msg-q7x4"}
	e.send(t,
		SealEvent(expired[0], portrait.EventIdentify, "u-1", "", 0, `{"name":"Ret One","email":"one@example.com"}`, ""),
		SealEvent(expired[1], portrait.EventIdentify, "", "dev-1", 1, `{"city":"Ningbo"}`, ""),
		SealEvent(expired[2], portrait.EventTrack, "u-1", "dev-1", 2, "", `{"amount":5}`),
		SealEvent(expired[3], portrait.EventIdentify, "u-2", "", 3, `{"name":"Ret Two"}`, ""),
		SealEvent("kept-msg-k9z1", portrait.EventTrack, "u-1", "", 50, "", `{"amount":7}`),
	)
	e.catchUp(t)
	cs, ok := e.db.(profile.CompactStore)
	if !ok {
		t.Fatalf("%T does not expire events", e.db)
	}
	before := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	run, err := e.proc.Compact(ctx, cs, before, func(context.Context) (profile.ScratchStore, error) { return scratch(t), nil })
	if err != nil {
		t.Fatal(err)
	}
	if run.Deleted != int64(len(expired)) {
		t.Fatalf("%d events expired, want %d", run.Deleted, len(expired))
	}
	e.catchUp(t)
	if h.Compact != nil {
		h.Compact(t, e.db)
	} else if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	h.Scan(t, "after a retention pass", "kept-msg-k9z1", expired...)
}
