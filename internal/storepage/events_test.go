package storepage

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// index is an in-memory profile event index: what both stores keep, with
// the bodies in a map (a missing body: an erased event).
type index struct {
	refs   []Ref // newest first
	bodies map[int64]*portrait.Event
	reads  int
}

func newIndex(n int, typeOf func(i int) string) *index {
	ix := &index{bodies: map[int64]*portrait.Event{}}
	for i := 0; i < n; i++ {
		// several events share an event time: the tie is broken by seq
		ts := int64(1000 - i/3)
		seq := int64(10_000 - i)
		ix.refs = append(ix.refs, Ref{TS: ts, Seq: seq})
		ix.bodies[seq] = &portrait.Event{Seq: seq, Type: typeOf(i)}
	}
	sort.Slice(ix.refs, func(a, b int) bool {
		ra, rb := ix.refs[a], ix.refs[b]
		return ra.TS > rb.TS || (ra.TS == rb.TS && ra.Seq > rb.Seq)
	})
	return ix
}

func (ix *index) read(_ context.Context, after bool, ts, seq int64, n int) ([]Ref, error) {
	ix.reads++
	var out []Ref
	for _, r := range ix.refs {
		if after && !(r.TS < ts || (r.TS == ts && r.Seq < seq)) {
			continue
		}
		if len(out) == n {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

func (ix *index) body(_ context.Context, seqs []int64) ([]*portrait.Event, error) {
	var out []*portrait.Event
	for _, s := range seqs {
		if e, ok := ix.bodies[s]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// all pages through the index and returns the seqs seen, in order.
func all(t *testing.T, ix *index, p portrait.Page) []int64 {
	t.Helper()
	var seen []int64
	for range 10_000 {
		evs, next, err := Events(context.Background(), p, ix.read, ix.body)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > max(p.Limit, 1) && p.Limit > 0 {
			t.Fatalf("page of %d events, limit %d", len(evs), p.Limit)
		}
		for _, e := range evs {
			seen = append(seen, e.Seq)
		}
		if next == "" {
			return seen
		}
		p.Cursor = next
	}
	t.Fatal("paging did not end")
	return nil
}

func TestPagesCoverTheIndexOnceInOrder(t *testing.T) {
	ix := newIndex(103, func(int) string { return "track" })
	seen := all(t, ix, portrait.Page{Limit: 10})
	if len(seen) != 103 {
		t.Fatalf("%d events paged, want 103", len(seen))
	}
	for i, r := range ix.refs {
		if seen[i] != r.Seq {
			t.Fatalf("event %d: seq %d, want %d (newest first, ties by seq)", i, seen[i], r.Seq)
		}
	}
}

func TestFilterReadsPastBatchesAndSkipsMissingBodies(t *testing.T) {
	// One identify in 200: a page of 5 needs several batches of the index.
	ix := newIndex(3000, func(i int) string {
		if i%200 == 7 {
			return "identify"
		}
		return "track"
	})
	delete(ix.bodies, ix.refs[7].Seq) // the first identify was erased
	seen := all(t, ix, portrait.Page{Limit: 5, Filter: portrait.EventFilter{Type: "identify"}})
	if len(seen) != 14 {
		t.Fatalf("%d identify events paged, want 14 (15 less the erased one)", len(seen))
	}
	for _, s := range seen {
		if ix.bodies[s].Type != "identify" {
			t.Fatalf("seq %d is a %s", s, ix.bodies[s].Type)
		}
	}
}

func TestLimitDefaultsAndBadCursor(t *testing.T) {
	ix := newIndex(60, func(int) string { return "track" })
	evs, next, err := Events(context.Background(), portrait.Page{}, ix.read, ix.body)
	if err != nil || len(evs) != 50 || next == "" {
		t.Fatalf("default page: %d events, next %q, %v; want 50 and a cursor", len(evs), next, err)
	}
	evs, _, _ = Events(context.Background(), portrait.Page{Limit: 5000}, ix.read, ix.body)
	if len(evs) != 50 {
		t.Fatalf("a limit above 1000 gave %d events, want the default 50", len(evs))
	}
	_, _, err = Events(context.Background(), portrait.Page{Cursor: "not a cursor"}, ix.read, ix.body)
	var pe *portrait.Error
	if !errors.As(err, &pe) || pe.Code != portrait.EINVALID {
		t.Fatalf("bad cursor: %v, want EINVALID", err)
	}
	ts, seq, err := DecodeCursor(EncodeCursor(-5, 1<<40))
	if err != nil || ts != -5 || seq != 1<<40 {
		t.Fatalf("cursor round trip: %d %d %v", ts, seq, err)
	}
}
