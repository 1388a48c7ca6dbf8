package segment_test

import (
	"fmt"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// Paging through a list page by page, each starting after the last key of
// the one before, gives every profile of the scope once, in the order a
// full sort gives (numbers, then strings, then none; ties by id).
func TestListPagesInSortOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 80).Draw(t, "profiles")
		ix := segment.NewIndex()
		type row struct {
			id   string
			kind int
			num  float64
			str  string
			vip  bool
		}
		var rows []row
		for i := 0; i < n; i++ {
			r := row{id: fmt.Sprintf("p%03d", i), kind: 2}
			p := &portrait.Profile{ID: r.id, Traits: map[string]portrait.Trait{}}
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0, 1:
				r.kind, r.num = 0, float64(rapid.IntRange(0, 10).Draw(t, "num")) // ties on purpose
				p.Traits["revenue"] = portrait.Trait{Value: r.num}
			case 2:
				r.kind, r.str = 1, rapid.SampledFrom([]string{"a", "b"}).Draw(t, "str")
				p.Traits["revenue"] = portrait.Trait{Value: r.str}
			}
			if r.vip = rapid.Bool().Draw(t, "vip"); r.vip {
				p.Tags = []portrait.ProfileTag{{Name: "vip"}}
			}
			ix.Upsert(p, nil)
			rows = append(rows, r)
		}
		desc := rapid.Bool().Draw(t, "desc")
		onlyVip := rapid.Bool().Draw(t, "onlyVip")
		var want []string
		var kept []row
		for _, r := range rows {
			if !onlyVip || r.vip {
				kept = append(kept, r)
			}
		}
		sort.Slice(kept, func(i, j int) bool {
			a, b := kept[i], kept[j]
			if a.kind != b.kind {
				return a.kind < b.kind
			}
			if a.kind == 0 && a.num != b.num {
				return (a.num < b.num) != desc
			}
			if a.kind == 1 && a.str != b.str {
				return (a.str < b.str) != desc
			}
			return a.id < b.id
		})
		for _, r := range kept {
			want = append(want, r.id)
		}
		tag := ""
		if onlyVip {
			tag = "vip"
		}
		scope := ix.Scope(nil, tag)
		limit := rapid.IntRange(1, 20).Draw(t, "limit")
		var got []string
		var after *segment.ListKey
		for range 1000 {
			page := ix.List(scope, "revenue", desc, after, limit)
			for _, k := range page {
				got = append(got, k.ID)
			}
			if len(page) < limit {
				break
			}
			after = &page[len(page)-1]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paged %v\nwant  %v", got, want)
		}
	})
}
