package account_test

import (
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
)

// memLog is a log in memory for the model's replays; gate, when set,
// holds the first replay until it is closed.
type memLog struct {
	mu      sync.Mutex
	evs     []*portrait.Event
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (l *memLog) add(e *portrait.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *memLog) replay(after, upto int64, fn func(*portrait.Event)) error {
	if l.gate != nil {
		l.once.Do(func() {
			close(l.entered)
			<-l.gate
		})
	}
	l.mu.Lock()
	evs := append([]*portrait.Event(nil), l.evs...)
	l.mu.Unlock()
	for _, e := range evs {
		if e.Seq > after && e.Seq <= upto {
			fn(e)
		}
	}
	return nil
}

// An undo reads the log without holding the model's lock: while its
// replay is held, the follower applies events, an edit goes in and readers
// answer; the undo then catches up with them, and the result equals the
// same history applied with nothing concurrent. Run under -race.
func TestUndoDoesNotHoldTheLockDuringTheLogRead(t *testing.T) {
	var s seq
	history := []*portrait.Event{
		s.ev("group", "u1", "g-a", "", t0, map[string]any{"name": "恒达医药", "industry": "C27", "employees": 600}, nil),
		s.ev("group", "u2", "g-b", "", t0.Add(time.Hour), map[string]any{"uscc": "914403001922038216", "name": "恒达"}, nil),
		s.ev("identify", "u1", "", "", t0.Add(time.Hour), map[string]any{"buying_role": "EB", "level": "决策层"}, nil),
		s.ev("group", "u3", "g-a", "", t0.Add(2*time.Hour), map[string]any{"uscc": "914403001922038216"}, nil), // joins g-a and g-b
	}
	during := []*portrait.Event{
		s.ev("track", "u1", "g-b", "Sales Visit", t0.Add(3*time.Hour), nil, map[string]any{"account": "g-b"}),
		s.ev("group", "u4", "g-c", "", t0.Add(3*time.Hour), map[string]any{"name": "华信科技", "employees": 80}, nil),
	}
	after := s.ev("track", "u4", "g-c", "Sales Call", t0.Add(4*time.Hour), nil, map[string]any{"account": "g-c"})

	log := &memLog{entered: make(chan struct{}), gate: make(chan struct{})}
	m := newModel()
	m.SetReplay(log.replay)
	for _, e := range history {
		log.add(e)
		m.Apply(e)
	}
	ms := m.Merges()
	if len(ms) != 1 {
		t.Fatalf("merges %+v", ms)
	}
	unmerge := &account.Edit{ID: 1, Kind: account.EditUnmerge, Account: ms[0].Survivor, Other: ms[0].Merged, By: "admin", At: t0.Add(3 * time.Hour)}
	done := make(chan error, 1)
	go func() { done <- m.ApplyEdit(unmerge) }()
	select {
	case <-log.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the undo never read the log")
	}

	// The replay is held: all of this would wait for it if the lock were.
	concurrent := make(chan struct{})
	var verify *account.Edit
	go func() {
		defer close(concurrent)
		for _, e := range during {
			log.add(e)
			m.Apply(e)
		}
		id, _ := m.Lookup(account.KeyGroup, "g-c")
		verify = &account.Edit{ID: 2, Kind: account.EditVerify, Account: id, Trait: "employees", Value: 85, By: "li", At: t0.Add(3 * time.Hour)}
		if err := m.ApplyEdit(verify); err != nil {
			t.Error(err)
		}
		if m.Len() != 2 {
			t.Errorf("%d accounts seen during the undo, want the merged one and g-c", m.Len())
		}
		if _, _, err := m.List(account.Filter{}, "icp_score", 0, 10); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-concurrent:
	case <-time.After(10 * time.Second):
		t.Fatal("events, edits and reads waited for the undo's log read: the lock is held during it")
	}
	close(log.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log.add(after)
	m.Apply(after)
	if m.Len() != 3 {
		t.Fatalf("after the undo %d accounts, want 3", m.Len())
	}
	id, _ := m.Lookup(account.KeyGroup, "g-c")
	if v, _ := m.Get(id); v.Traits["employees"].Status != account.StatusVerified {
		t.Fatalf("the edit made during the undo was lost: %+v", v.Traits["employees"])
	}

	// The same history, nothing concurrent.
	plain := &memLog{}
	want := newModel()
	want.SetReplay(plain.replay)
	for _, e := range append(history, during...) {
		plain.add(e)
		want.Apply(e)
		if e == history[len(history)-1] {
			u := *unmerge
			if err := want.ApplyEdit(&u); err != nil {
				t.Fatal(err)
			}
		}
	}
	v := *verify
	if err := want.ApplyEdit(&v); err != nil {
		t.Fatal(err)
	}
	plain.add(after)
	want.Apply(after)
	if a, b := digest(t, m), digest(t, want); a != b {
		t.Fatalf("undo with concurrent changes differs from the same history in order\nundo %s\nwant %s", a, b)
	}
}

// An erasure's forget that falls back to a rebuild (Service.Forget) reads
// the whole log; it does so aside, as an undo does: while its replay is
// held, the follower applies an event and readers answer (the rebuild held
// the model's lock for the whole read before: seconds on a log of a
// million events, every reader of the accounts waiting).
func TestForgetRebuildDoesNotHoldTheLock(t *testing.T) {
	var s seq
	log := &memLog{entered: make(chan struct{}), gate: make(chan struct{})}
	m := newModel()
	m.SetReplay(log.replay)
	for _, e := range []*portrait.Event{
		s.ev("group", "u1", "g-a", "", t0, map[string]any{"name": "恒达医药"}, nil),
		s.ev("group", "u2", "g-b", "", t0.Add(time.Hour), map[string]any{"name": "华信科技"}, nil),
	} {
		log.add(e)
		m.Apply(e)
	}
	done := make(chan error, 1)
	go func() { done <- m.RebuildAside() }()
	select {
	case <-log.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the rebuild never read the log")
	}
	concurrent := make(chan struct{})
	go func() {
		defer close(concurrent)
		e := s.ev("group", "u3", "g-c", "", t0.Add(2*time.Hour), map[string]any{"name": "恒信"}, nil)
		log.add(e)
		m.Apply(e)
		if _, _, err := m.List(account.Filter{}, "icp_score", 0, 10); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-concurrent:
	case <-time.After(5 * time.Second):
		close(log.gate)
		t.Fatal("an event and a read waited for the rebuild's log read: the lock is held during it")
	}
	close(log.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 {
		t.Errorf("%d accounts after the rebuild, want 3 (the one applied during it kept)", m.Len())
	}
}
