package segment_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// A segment built from others requires every consent purpose of its
// operands, however deep: in a union, an intersection and a difference,
// on creation, as consent changes, in explanations, after an operand is
// redefined and after a restart. Exports, webhooks and deliveries read
// Status.Purposes.
func TestSetOperationsInheritPurposes(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	refused := map[string]bool{"marketing/p2": true, "profiling/p3": true}
	consent := func(purpose, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return !refused[purpose+"/"+id]
	}
	ix := segment.NewIndex()
	for _, p := range []*portrait.Profile{tagged("p1", "a", "b"), tagged("p2", "a", "b"), tagged("p3", "a", "b"), tagged("p4", "b")} {
		ix.Upsert(p, nil)
	}
	store := newMemStore()
	s := segment.NewService(ix, store)
	s.Now = func() time.Time { return now }
	s.Consent = consent
	mk := func(d *segment.Definition) string {
		st, err := s.Create(ctx, d)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		return st.ID
	}
	a := mk(&segment.Definition{Name: "A", Expression: `"a" in tags`, Purpose: "marketing"})
	b := mk(&segment.Definition{Name: "B", Expression: `"b" in tags`})
	c := mk(&segment.Definition{Name: "C", Expression: `"b" in tags`, Purpose: "profiling"})
	u := mk(&segment.Definition{Name: "A or B", Union: []string{a, b}})
	i := mk(&segment.Definition{Name: "B and C", Intersect: []string{b, c}})
	d := mk(&segment.Definition{Name: "B not A", Difference: []string{b, a}})
	n := mk(&segment.Definition{Name: "(A or B) or (B and C)", Union: []string{u, i}})
	check := func(when string, want map[string][]string) {
		t.Helper()
		for id, w := range want {
			if got := members(t, s, id); !slices.Equal(got, w) {
				t.Errorf("%s: %s has %v, want %v", when, id, got, w)
			}
		}
	}
	purposes := func(id string) []string {
		st, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Purposes
	}
	// p2 refused marketing: out of everything built on A, though B alone
	// would take it into the union. p3 refused profiling: out of B and C.
	// A difference needs its subtracted operand's purpose too: none of
	// p1-p3 is in "B not A" by tag, and p4 consented to all.
	check("created", map[string][]string{u: {"p1", "p3", "p4"}, i: {"p1", "p2", "p4"}, d: {"p4"}, n: {"p1", "p4"}})
	for id, want := range map[string][]string{a: {"marketing"}, b: nil, u: {"marketing"}, i: {"profiling"}, d: {"marketing"}, n: {"marketing", "profiling"}} {
		if got := purposes(id); !slices.Equal(got, want) {
			t.Errorf("purposes of %s = %v, want %v", id, got, want)
		}
	}
	ex, in, err := s.Explain(n, "p2")
	if err != nil || in || !strings.Contains(ex.Reason, "marketing") || !strings.Contains(ex.Reason, "built on") {
		t.Errorf("explain p2 in the nested union: %+v %v %v", ex, in, err)
	}

	// p4 withdraws marketing: it leaves every segment built on A as it
	// changes, not at the next full evaluation.
	mu.Lock()
	refused["marketing/p4"] = true
	mu.Unlock()
	// (Consent is kept as a trait: its change is what re-evaluates.)
	p4 := tagged("p4", "b")
	p4.Traits["consent_marketing"] = portrait.Trait{Value: "withdrawn"}
	if err := s.Apply(ctx, []*portrait.Profile{p4}, nil, nil); err != nil {
		t.Fatal(err)
	}
	check("p4 withdrew marketing", map[string][]string{u: {"p1", "p3"}, i: {"p1", "p2", "p4"}, d: nil, n: {"p1"}})

	// A is redefined without a purpose: the segments built on it follow.
	if _, err := s.Update(ctx, a, &segment.Definition{Name: "A", Expression: `"a" in tags`}); err != nil {
		t.Fatal(err)
	}
	if got := purposes(u); got != nil {
		t.Errorf("union after its operand dropped its purpose: %v", got)
	}
	if got := purposes(n); !slices.Equal(got, []string{"profiling"}) {
		t.Errorf("nested union after A dropped its purpose: %v", got)
	}
	check("A without purpose", map[string][]string{u: {"p1", "p2", "p3", "p4"}, n: {"p1", "p2", "p4"}})

	// A restart loads the set operations after their operands, with the
	// same purposes.
	s2 := segment.NewService(ix, store)
	s2.Now = s.Now
	s2.Consent = consent
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s2.Get(n); err != nil || !slices.Equal(st.Purposes, []string{"profiling"}) {
		t.Errorf("after restart: %+v %v", st, err)
	}
}
