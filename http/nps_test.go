package http_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// NPS overall, by tag and by segment is answered from the answers the
// segment index keeps; it equals the aggregate over every profile document.
func TestNPSFromIndexEqualsDocuments(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	gd := e.createSegment(t, "guangdong", `traits.province == "广东省"`)
	sh := e.createSegment(t, "shanghai", `traits.province == "上海市"`)
	members := map[string][]string{}
	for _, id := range []string{gd, sh} {
		bm, err := e.segs.MemberSet(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range e.segs.Index.IDs(bm, 0, int(bm.GetCardinality())) {
			members[pid] = append(members[pid], id)
		}
	}
	for _, c := range []struct {
		query string
		q     traits.NPSQuery
	}{
		{"interval=all", traits.NPSQuery{Interval: "all"}},
		{"interval=month", traits.NPSQuery{Interval: "month"}},
		{"by=tag&interval=all", traits.NPSQuery{By: "tag", Interval: "all"}},
		{"by=tag&interval=quarter", traits.NPSQuery{By: "tag", Interval: "quarter"}},
		{"segments=" + gd + "," + sh + "&interval=month", traits.NPSQuery{Interval: "month",
			Groups: func(p *portrait.Profile) []string { return members[p.ID] }}},
	} {
		want, err := traits.AggregateNPS(ctx, e.db.AllProfiles, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatalf("%s: no rows to compare", c.query)
		}
		code, out := e.get(t, "/v1/analytics/nps?"+c.query)
		if code != 200 {
			t.Fatalf("%s: %d %v", c.query, code, out)
		}
		var got, exp any
		b, _ := json.Marshal(out["rows"])
		json.Unmarshal(b, &got)
		b, _ = json.Marshal(want)
		json.Unmarshal(b, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s:\nfrom the index %v\nfrom documents %v", c.query, got, exp)
		}
	}
	// A tag everyone lacks and a segment nobody answered in give no rows,
	// not zero rows.
	empty := e.createSegment(t, "nobody", `traits.province == "西藏自治区"`)
	code, out := e.get(t, "/v1/analytics/nps?segments="+empty)
	if code != 200 || len(out["rows"].([]any)) != 0 {
		t.Errorf("empty segment: %d %v", code, out)
	}
}
