package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// The processor's properties (issue 17 §2), run against a real store: any
// arrival order of the same events, with retries, gives the profiles of
// the canonical order; commits that fail after the processor went on lose
// and double nothing; late events and retractions come out as in canonical
// order; a rebuild from the log gives the same profiles. These are the
// only copies: sqlite and postgres run them (TestProcessorProperties), and
// the profile package's tests keep the cases that need no store of their
// own (graph, splits, cleaning).

// LogStore is what the processor's properties need of a store: the
// processor's Store, and the log and profile reads around it.
type LogStore interface {
	profile.Store
	Append(ctx context.Context, events []*portrait.Event, rejected []*portrait.Rejected) (portrait.AppendResult, error)
	LastSeq(ctx context.Context) (int64, error)
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	ProfileByIdentifier(ctx context.Context, id portrait.Identifier) (*portrait.Profile, error)
	ProfileMerges(ctx context.Context, profileID string) ([]*portrait.MergeEntry, error)
	ResetState(ctx context.Context) error
	ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error)
}

// Harness opens the stores the properties use.
type Harness struct {
	// Open returns a new, empty store (it registers its own cleanup).
	Open func(t *testing.T) LogStore
	// Empty, when set, empties a store Open returned (log and derived
	// state), so that a property needing hundreds of stores reuses two;
	// unset, each is opened anew.
	Empty func(t *testing.T, s LogStore)
}

// RunProcessor checks the processor's properties against the store.
func RunProcessor(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"ArrivalOrderDoesNotMatter", arrivalOrderDoesNotMatter},
		{"FailedCommitsAreReapplied", failedCommitsAreReapplied},
		{"LateEventBeforeTheMergeItWouldHaveMade", lateEventBeforeTheMerge},
		{"RetractUndoesALinkMerge", retractUndoesALinkMerge},
		{"RebuildFromLogIsIdentical", rebuildFromLogIsIdentical},
		{"ExpiryKeepsProfilesAndRebuildIsExact", expiryKeepsProfilesAndRebuildIsExact},
		{"ExpiredDecisionsHold", expiredDecisionsHold},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

// env is a store and a processor over it, set up as the profile package's
// tests set theirs up.
type env struct {
	db   LogStore
	proc *profile.Processor
}

func newEnv(s LogStore) *env {
	rules := identity.DefaultRules()
	rules.Limits["email"] = 2 // low, so that generated histories hit it
	p := profile.NewProcessor(s, rules.Compile())
	p.Now = func() time.Time { return t0 }
	p.OnceTraits = map[string]bool{"signup_channel": true}
	return &env{db: s, proc: p}
}

func (e *env) send(t testing.TB, evs ...*portrait.Event) {
	t.Helper()
	// The log hands out Seq; each append gets its own copies.
	cp := make([]*portrait.Event, len(evs))
	for i, ev := range evs {
		c := *ev
		c.Seq = 0
		cp[i] = &c
	}
	if _, err := e.db.Append(context.Background(), cp, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) catchUp(t testing.TB) {
	t.Helper()
	last, err := e.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every profile, as a client sees it, keyed by id.
func (e *env) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := e.db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		b, err := json.Marshal(p)
		out[p.ID] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(log func(string, ...any), got, want map[string]string) {
	for id, w := range want {
		if got[id] != w {
			log("profile %s\n want %s\n  got %s", id, w, got[id])
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			log("extra profile %s: %s", id, g)
		}
	}
}

func ev(msg, typ, user, anon string, at time.Duration, traits string) *portrait.Event {
	e := &portrait.Event{MessageID: msg, Type: typ, Source: "web", UserID: user, AnonymousID: anon, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	if traits != "" {
		e.Traits = json.RawMessage(traits)
	}
	if typ == portrait.EventTrack {
		e.Name = "Order Completed"
	}
	return e
}

type evSpec struct{ typ, user, anon, email, at, name, once int }

var types = []string{"identify", "track", "page", "alias"}

func genEvents(specs []evSpec) []*portrait.Event {
	var out []*portrait.Event
	for i, s := range specs {
		user, anon := "", fmt.Sprintf("a%d", s.anon)
		if s.user > 0 {
			user = fmt.Sprintf("u%d", s.user)
		}
		typ := types[s.typ]
		e := ev(fmt.Sprintf("msg-%03d", i), typ, user, anon, time.Duration(s.at)*time.Second, "")
		if typ == "alias" {
			if user == "" {
				e.UserID = "u1"
			}
			e.PreviousID = fmt.Sprintf("a%d", (s.anon+3)%10)
		}
		if typ == "identify" {
			tr := map[string]any{"name": fmt.Sprintf("n%d", s.name)}
			if s.email > 0 {
				tr["email"] = fmt.Sprintf("e%d@example.com", s.email)
			}
			if s.once > 0 {
				tr["$set_once"] = map[string]any{"first_seen_on": fmt.Sprintf("c%d", s.once)}
			}
			e.Traits, _ = json.Marshal(tr)
		}
		out = append(out, e)
	}
	return out
}

// fixedSpecs draws a fixed pseudo-random event set without rapid.
func fixedSpecs(n int) []evSpec {
	out := make([]evSpec, n)
	x := uint64(42)
	next := func(m int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(m))
	}
	for i := range out {
		out[i] = evSpec{typ: next(4), user: next(6), anon: next(10), email: next(6), at: next(1000), name: next(5), once: next(3)}
	}
	return out
}

func canonical(events []*portrait.Event) []*portrait.Event {
	sorted := append([]*portrait.Event(nil), events...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key().Less(sorted[j].Key()) })
	return sorted
}

// stores hands out empty stores: two kept and emptied between uses when
// the harness can empty them, new ones otherwise.
type stores struct {
	h    Harness
	t    *testing.T
	kept []LogStore
}

func (s *stores) get(i int) LogStore {
	if s.h.Empty == nil {
		return s.h.Open(s.t)
	}
	for len(s.kept) <= i {
		s.kept = append(s.kept, s.h.Open(s.t))
	}
	s.h.Empty(s.t, s.kept[i])
	return s.kept[i]
}

// The invariant the whole design rests on: any arrival order of the same
// events, with retries, in chunks processed as they come, gives the same
// profiles as the canonical order in one batch.
func arrivalOrderDoesNotMatter(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("property test")
	}
	st := &stores{h: h, t: t}
	rapid.Check(t, func(rt *rapid.T) {
		spec := rapid.Custom(func(t *rapid.T) evSpec {
			return evSpec{
				typ: rapid.IntRange(0, 3).Draw(t, "typ"), user: rapid.IntRange(0, 4).Draw(t, "user"),
				anon: rapid.IntRange(0, 9).Draw(t, "anon"), email: rapid.IntRange(0, 4).Draw(t, "email"),
				at: rapid.IntRange(0, 50).Draw(t, "at"), name: rapid.IntRange(0, 3).Draw(t, "name"), once: rapid.IntRange(0, 2).Draw(t, "once"),
			}
		})
		events := genEvents(rapid.SliceOfN(spec, 1, 40).Draw(rt, "events"))

		a := newEnv(st.get(0))
		a.send(t, canonical(events)...)
		a.catchUp(t)
		want := a.snapshot(t)

		perm := rapid.Permutation(events).Draw(rt, "order")
		for _, d := range rapid.SliceOfN(rapid.IntRange(0, len(events)-1), 0, 10).Draw(rt, "dups") {
			perm = append(perm, events[d])
		}
		b := newEnv(st.get(1))
		b.proc.BatchSize = rapid.IntRange(1, 8).Draw(rt, "batch")
		for len(perm) > 0 {
			n := rapid.IntRange(1, len(perm)).Draw(rt, "chunk")
			b.send(t, perm[:n]...)
			b.catchUp(t)
			perm = perm[n:]
		}
		if got := b.snapshot(t); !reflect.DeepEqual(got, want) {
			diff(rt.Logf, got, want)
			rt.Fatalf("arrival order changed the profiles (%d vs %d profiles)", len(got), len(want))
		}
	})
}

// flakyStore makes some commits fail the way a background commit fails:
// Commit returns at once, the writes are lost, and the failure is
// reported later, by WaitState or the next BeginState.
type flakyStore struct {
	LogStore
	commits, every int
	pending        error
	failed         int
}

type flakyTx struct {
	profile.StateTx
	s *flakyStore
}

func (s *flakyStore) BeginState(ctx context.Context) (profile.StateTx, error) {
	if err := s.pending; err != nil {
		s.pending = nil
		return nil, err
	}
	tx, err := s.LogStore.BeginState(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyTx{tx, s}, nil
}

func (s *flakyStore) WaitState(ctx context.Context) error {
	if err := s.pending; err != nil {
		s.pending = nil
		return err
	}
	return s.LogStore.WaitState(ctx)
}

func (t *flakyTx) Commit() error {
	t.s.commits++
	if t.s.commits%t.s.every == 0 {
		t.s.failed++
		t.s.pending = portrait.Errorf(portrait.EUNAVAILABLE, "disk full (commit %d)", t.s.commits)
		return t.StateTx.Rollback()
	}
	return t.StateTx.Commit()
}

// A commit that fails after the processor went on to the next batch must
// not lose or double-count anything: the processor goes back to what was
// committed and applies the log again from there. Tiny caches make it
// read identities and profiles back from the store.
func failedCommitsAreReapplied(t *testing.T, h Harness) {
	st := &stores{h: h, t: t}
	for _, c := range []struct {
		name         string
		every, cache int
	}{{"caches", 3, 0}, {"tiny caches", 3, 2}, {"tiny caches, no failures", 1 << 30, 2}} {
		t.Run(c.name, func(t *testing.T) {
			events := genEvents(fixedSpecs(300))
			a := newEnv(st.get(0))
			a.send(t, canonical(events)...)
			a.catchUp(t)
			want := a.snapshot(t)

			b := newEnv(st.get(1))
			fs := &flakyStore{LogStore: b.db, every: c.every}
			b.proc.Store = fs
			b.proc.BatchSize = 7
			if c.cache > 0 {
				b.proc.MaxProfiles, b.proc.MaxIdentities = c.cache, c.cache
			}
			rng := rand.New(rand.NewPCG(1, 2))
			rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			ctx := context.Background()
			for len(events) > 0 {
				n := min(len(events), 1+rng.IntN(40))
				b.send(t, events[:n]...)
				events = events[n:]
				last, err := b.db.LastSeq(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for try := 0; try < 50; try++ {
					if err = b.proc.CatchUp(ctx, last); err == nil {
						break
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if fs.failed == 0 && c.every < 1000 {
				t.Fatal("no commit failed: the test tests nothing")
			}
			if got := b.snapshot(t); !reflect.DeepEqual(got, want) {
				diff(t.Logf, got, want)
				t.Fatalf("after %d failed commits the profiles differ (%d vs %d)", fs.failed, len(got), len(want))
			}
		})
	}
}

// A late event that carries two identifiers, arriving after a later event
// merged their profiles, is where the merge happens in canonical order:
// the journal shows the merge moved to it, and the profiles come out as
// in canonical order.
func lateEventBeforeTheMerge(t *testing.T, h Harness) {
	ctx := context.Background()
	st := &stores{h: h, t: t}
	m1 := ev("m1", "page", "", "a1", 1*time.Minute, "")
	m2 := ev("m2", "page", "u1", "", 2*time.Minute, "")
	m3 := ev("m3", "track", "u1", "a1", 3*time.Minute, "") // late: it joins a1 and u1 first
	m5 := ev("m5", "identify", "u1", "a1", 5*time.Minute, `{"plan":"pro"}`)

	late := newEnv(st.get(0))
	late.send(t, m1, m2, m5)
	late.catchUp(t)
	late.send(t, m3)
	late.catchUp(t)

	canon := newEnv(st.get(1))
	canon.send(t, m1, m2, m3, m5)
	canon.catchUp(t)

	journal := func(e *env) []string {
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
		if err != nil || p == nil {
			t.Fatalf("no profile for u1: %v", err)
		}
		ms, err := e.db.ProfileMerges(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Kind+" "+m.MessageID)
		}
		return out
	}
	got, want := journal(late), journal(canon)
	if len(want) != 1 || want[0] != "merged m3" {
		t.Fatalf("canonical merge journal %v, want [merged m3]", want)
	}
	moved := false
	for _, m := range got {
		moved = moved || m == "merged m3"
	}
	if !moved {
		t.Fatalf("merge journal %v: the late event did not move the merge to m3 (canonical %v)", got, want)
	}
	if a, b := late.snapshot(t), canon.snapshot(t); !reflect.DeepEqual(a, b) {
		diff(t.Logf, a, b)
		t.Fatal("the late event's profiles differ from the canonical order's")
	}
}

func linkEvent(msg string, at time.Duration, a, b portrait.Identifier) *portrait.Event {
	ctx, _ := json.Marshal(map[string]any{"externalIds": []map[string]string{{"id": a.Value, "type": a.Type}, {"id": b.Value, "type": b.Type}}})
	return &portrait.Event{MessageID: msg, Type: portrait.EventIdentify, Source: "linkage", Context: ctx, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
}

func retractEvent(msg string, at time.Duration, target string) *portrait.Event {
	props, _ := json.Marshal(map[string]string{"message_id": target})
	return &portrait.Event{MessageID: msg, Type: portrait.EventRetract, Source: "linkage", Properties: props, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
}

// A retracted link event undoes its merge: the profiles are again those
// from before it, and the undo is journalled.
func retractUndoesALinkMerge(t *testing.T, h Harness) {
	ctx := context.Background()
	e := newEnv((&stores{h: h, t: t}).get(0))
	a := portrait.Identifier{Type: "crm_id", Value: "C-1"}
	b := portrait.Identifier{Type: "email", Value: "wang.fang@example.com"}
	e.send(t,
		ev("m1", "identify", "", "dev-1", 0, `{"crm_id":"C-1","name":"王芳"}`),
		ev("m2", "identify", "", "dev-2", time.Minute, `{"email":"wang.fang@example.com","city":"杭州市"}`),
	)
	e.catchUp(t)
	before := e.snapshot(t)
	e.send(t, linkEvent("link-1", time.Hour, a, b))
	e.catchUp(t)
	pa, erra := e.db.ProfileByIdentifier(ctx, a)
	pb, errb := e.db.ProfileByIdentifier(ctx, b)
	if erra != nil || errb != nil || pa.ID != pb.ID {
		t.Fatalf("the link event did not merge the two profiles: %v %v", erra, errb)
	}
	e.send(t, retractEvent("undo-1", 2*time.Hour, "link-1"))
	e.catchUp(t)
	pa, erra = e.db.ProfileByIdentifier(ctx, a)
	pb, errb = e.db.ProfileByIdentifier(ctx, b)
	if erra != nil || errb != nil || pa.ID == pb.ID {
		t.Fatalf("the retract did not split the profiles: %v %v", erra, errb)
	}
	if after := e.snapshot(t); !reflect.DeepEqual(after, before) {
		diff(t.Logf, after, before)
		t.Error("after the undo the profiles differ from before the link")
	}
	merges, err := e.db.ProfileMerges(ctx, pa.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range merges {
		found = found || (m.Kind == portrait.MergeRetracted && m.MessageID == "link-1")
	}
	if !found {
		t.Errorf("the undo is not journalled: %+v", merges)
	}
}

// ResetState and a replay of the log by a new processor give the same
// profiles.
func rebuildFromLogIsIdentical(t *testing.T, h Harness) {
	e := newEnv((&stores{h: h, t: t}).get(0))
	e.send(t, genEvents(fixedSpecs(200))...)
	e.catchUp(t)
	want := e.snapshot(t)
	if len(want) == 0 {
		t.Fatal("no profiles: the test tests nothing")
	}
	if err := e.db.ResetState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot(t); len(got) != 0 {
		t.Fatalf("%d profiles after ResetState", len(got))
	}
	e2 := newEnv(e.db)
	e2.catchUp(t)
	if got := e2.snapshot(t); !reflect.DeepEqual(got, want) {
		diff(t.Logf, got, want)
		t.Fatalf("rebuild differs: %d profiles vs %d", len(got), len(want))
	}
}
