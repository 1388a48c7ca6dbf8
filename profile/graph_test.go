package profile

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// memGraphTx is the identity graph's part of a transaction held in maps,
// applied at once (no write-behind), with MoveRefused's rule as SQLite
// states it: refusals of identifiers the receiving profile owns are not
// moved.
type memGraphTx struct {
	owner    map[portrait.Identifier]string
	attached map[portrait.Identifier]portrait.EventKey
	refused  map[Ref]bool
	aliases  map[string]string
	fail     error // returned by every write when set
}

func newMemGraphTx() *memGraphTx {
	return &memGraphTx{
		owner:    map[portrait.Identifier]string{},
		attached: map[portrait.Identifier]portrait.EventKey{},
		refused:  map[Ref]bool{},
		aliases:  map[string]string{},
	}
}

func (m *memGraphTx) Identity(id portrait.Identifier) (string, error) { return m.owner[id], nil }

func (m *memGraphTx) PutIdentity(id portrait.Identifier, pid string, at portrait.EventKey) error {
	if m.fail != nil {
		return m.fail
	}
	m.owner[id] = pid
	if at == (portrait.EventKey{}) {
		delete(m.attached, id)
	} else {
		m.attached[id] = at
	}
	return nil
}

func (m *memGraphTx) DeleteIdentity(id portrait.Identifier) error {
	if m.fail != nil {
		return m.fail
	}
	delete(m.owner, id)
	delete(m.attached, id)
	return nil
}

func (m *memGraphTx) PutRefused(r Ref) error {
	if m.fail != nil {
		return m.fail
	}
	m.refused[r] = true
	return nil
}

func (m *memGraphTx) MoveRefused(from, to string) error {
	if m.fail != nil {
		return m.fail
	}
	for r := range m.refused {
		if r.ProfileID != from {
			continue
		}
		delete(m.refused, r)
		if m.owner[r.ID] != to {
			m.refused[Ref{ID: r.ID, ProfileID: to}] = true
		}
	}
	return nil
}

func (m *memGraphTx) DeleteRefused(pid string) error {
	if m.fail != nil {
		return m.fail
	}
	for r := range m.refused {
		if r.ProfileID == pid {
			delete(m.refused, r)
		}
	}
	return nil
}

func (m *memGraphTx) PutAlias(oldID, newID string) error {
	if m.fail != nil {
		return m.fail
	}
	if oldID == newID {
		delete(m.aliases, oldID)
	} else {
		m.aliases[oldID] = newID
	}
	return nil
}

func (m *memGraphTx) DropAlias(id string) error {
	if m.fail != nil {
		return m.fail
	}
	delete(m.aliases, id)
	return nil
}

// agree fails the test where the graph's cache says something the
// transaction does not: every cached owner (a cached "" means unowned),
// every cached attaching key, and the refusals both ways. With complete
// set, the transaction must also hold no owner the cache lacks.
func agree(t *testing.T, step string, g *graph, tx *memGraphTx) {
	t.Helper()
	for id, pid := range g.owner {
		if got := tx.owner[id]; got != pid {
			t.Errorf("%s: %v cached as owned by %q, stored as %q", step, id, pid, got)
		}
	}
	for id, k := range g.attached {
		if got, ok := tx.attached[id]; !ok || got != k {
			t.Errorf("%s: %v cached as attached at %v, stored as %v", step, id, k, got)
		}
	}
	if g.complete {
		for id, pid := range tx.owner {
			if g.owner[id] != pid {
				t.Errorf("%s: %v stored as owned by %q, cached as %q", step, id, pid, g.owner[id])
			}
		}
		for id := range tx.attached {
			if _, ok := g.attached[id]; !ok {
				t.Errorf("%s: %v stored with an attaching key the cache lacks", step, id)
			}
		}
	}
	cached := map[Ref]bool{}
	for id, m := range g.refused {
		if len(m) == 0 {
			t.Errorf("%s: empty refusal set kept for %v", step, id)
		}
		for pid := range m {
			cached[Ref{ID: id, ProfileID: pid}] = true
		}
	}
	if !reflect.DeepEqual(cached, tx.refused) {
		t.Errorf("%s: refusals cached %v, stored %v", step, cached, tx.refused)
	}
}

func TestGraphWritesCacheAndTransactionTogether(t *testing.T) {
	email := func(s string) portrait.Identifier { return portrait.Identifier{Type: "email", Value: s} }
	key := func(sec int, msg string) portrait.EventKey {
		return portrait.EventKey{Time: time.Unix(int64(sec), 0).UTC(), MessageID: msg}
	}
	a, b, c := email("a@x"), email("b@x"), email("c@x")
	g, tx := newGraph(), newMemGraphTx()
	g.complete = true // a fresh store: the whole (empty) graph is held
	agree(t, "empty", g, tx)

	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		agree(t, step, g, tx)
	}
	must("attach a to p1", g.attach(tx, a, "p1", key(1, "m1")))
	must("attach b to p2", g.attach(tx, b, "p2", key(2, "m2")))
	must("attach c to p2 unknown key", g.attach(tx, c, "p2", portrait.EventKey{}))
	if _, ok := g.attachedAt(c); ok {
		t.Error("an identifier attached with a zero key has an attaching key")
	}
	if k, ok := g.attachedAt(a); !ok || k != key(1, "m1") {
		t.Errorf("attachedAt(a) = %v %v", k, ok)
	}
	must("refuse a from p2", g.refuse(tx, a, "p2"))
	must("refuse a from p2 again", g.refuse(tx, a, "p2"))
	must("refuse b from p3", g.refuse(tx, b, "p3"))
	must("refuse c from p3", g.refuse(tx, c, "p3"))

	// p3 merges into p2: b and c are p2's own now, so their refusals of
	// p3 don't become refusals of p2; a's refusal of p2 stays.
	must("refuse a from p3", g.refuse(tx, a, "p3"))
	must("reassign p3 to p2", g.reassign(tx, "p3", "p2", nil))
	if got := g.refused[a]; !reflect.DeepEqual(got, map[string]bool{"p2": true}) {
		t.Errorf("a's refusals after p3 merged into p2: %v", got)
	}
	if got := g.refused[b]; len(got) != 0 {
		t.Errorf("b is refused by its own profile after the merge: %v", got)
	}

	// p1 merges into p2: a moves with its attaching key, and the refusal
	// of p2 by a stays (it is keep's), as storage keeps it.
	must("reassign p1 to p2", g.reassign(tx, "p1", "p2", []portrait.Identifier{a}))
	if pid, _ := g.ownerOf(tx, a); pid != "p2" {
		t.Errorf("a owned by %q after the merge, want p2", pid)
	}
	if k, ok := g.attachedAt(a); !ok || k != key(1, "m1") {
		t.Errorf("a's attaching key after the merge: %v %v", k, ok)
	}

	// A rebuild forgets p2: its identifiers are unowned (cached so) and
	// no refusal names it.
	must("forget p2", g.forget(tx, "p2", []portrait.Identifier{a, b, c}))
	for _, id := range []portrait.Identifier{a, b, c} {
		if pid, ok := g.owner[id]; !ok || pid != "" {
			t.Errorf("%v after forget: cached %q %v, want cached unowned", id, pid, ok)
		}
	}
	if len(g.refused) != 0 {
		t.Errorf("refusals left after forgetting their profile: %v", g.refused)
	}

	must("alias p1 to p2", g.alias(tx, "p1", "p2"))
	must("unalias p1", g.unalias(tx, "p1"))
	if len(tx.aliases) != 0 {
		t.Errorf("aliases left: %v", tx.aliases)
	}
}

// TestGraphMissAsksTheTransaction: with part of the graph cached, a miss
// reads the transaction and caches what it read (unowned too); with the
// whole graph held, a miss means unowned without a read.
func TestGraphMissAsksTheTransaction(t *testing.T) {
	id := portrait.Identifier{Type: "email", Value: "a@x"}
	tx := newMemGraphTx()
	tx.owner[id] = "p1"
	g := newGraph()
	g.load(nil, nil, nil, false)
	if pid, err := g.ownerOf(tx, id); err != nil || pid != "p1" {
		t.Fatalf("ownerOf on a miss = %q, %v; want p1 from storage", pid, err)
	}
	other := portrait.Identifier{Type: "email", Value: "b@x"}
	if pid, _ := g.ownerOf(tx, other); pid != "" {
		t.Fatalf("unowned identifier answered %q", pid)
	}
	if pid, ok := g.owner[other]; !ok || pid != "" {
		t.Errorf("an unowned answer is not cached: %q %v", pid, ok)
	}
	agree(t, "after reads", g, tx)

	full := newGraph()
	full.load([]Ref{{ID: id, ProfileID: "p9"}}, map[portrait.Identifier]string{}, map[portrait.Identifier]portrait.EventKey{}, true)
	if pid, _ := full.ownerOf(tx, id); pid != "" {
		t.Errorf("a complete graph asked storage on a miss: %q", pid)
	}
	if !full.refused[id]["p9"] {
		t.Error("loaded refusal missing")
	}
}

// TestGraphTrim: past the bound a quarter of the owners go and the graph
// is no longer complete, so misses ask storage again.
func TestGraphTrim(t *testing.T) {
	g, tx := newGraph(), newMemGraphTx()
	g.complete = true
	for i := range 100 {
		id := portrait.Identifier{Type: "email", Value: fmt.Sprint(i)}
		if err := g.attach(tx, id, "p1", portrait.EventKey{MessageID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	g.trim(100)
	if !g.complete || len(g.owner) != 100 {
		t.Fatalf("trim within the bound changed the graph: complete=%v n=%d", g.complete, len(g.owner))
	}
	g.trim(80)
	if g.complete || len(g.owner) != 60 || len(g.attached) != 60 {
		t.Fatalf("after trim(80): complete=%v owners=%d attached=%d, want false 60 60", g.complete, len(g.owner), len(g.attached))
	}
	agree(t, "after trim", g, tx)
	for i := range 100 {
		id := portrait.Identifier{Type: "email", Value: fmt.Sprint(i)}
		if pid, err := g.ownerOf(tx, id); err != nil || pid != "p1" {
			t.Fatalf("%v after trim: %q %v", id, pid, err)
		}
	}
}

// TestGraphWriteErrorsReach: a failing transaction's error comes back from
// every write.
func TestGraphWriteErrorsReach(t *testing.T) {
	boom := errors.New("boom")
	g, tx := newGraph(), newMemGraphTx()
	tx.fail = boom
	id := portrait.Identifier{Type: "email", Value: "a@x"}
	for name, err := range map[string]error{
		"attach":   g.attach(tx, id, "p1", portrait.EventKey{}),
		"refuse":   g.refuse(tx, id, "p2"),
		"reassign": g.reassign(tx, "p1", "p3", []portrait.Identifier{id}),
		"forget":   g.forget(tx, "p3", []portrait.Identifier{id}),
		"alias":    g.alias(tx, "p1", "p3"),
		"unalias":  g.unalias(tx, "p1"),
	} {
		if !errors.Is(err, boom) {
			t.Errorf("%s: error %v, want boom", name, err)
		}
	}
}
