package segment_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/segment"
)

func tagged(id string, tags ...string) *portrait.Profile {
	p := &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{"n": {Value: 1.0}}}
	for _, t := range tags {
		p.Tags = append(p.Tags, portrait.ProfileTag{Name: t})
	}
	return p
}

func members(t *testing.T, s *segment.Service, id string) []string {
	t.Helper()
	ids, _, err := s.Members(id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// Union, intersection and difference follow their operands as profiles
// change and as an operand is redefined; an operand in use cannot be
// deleted, a cycle cannot be made, and a restart loads them again.
func TestSetOperationsStayCurrent(t *testing.T) {
	ctx := context.Background()
	ix := segment.NewIndex()
	for _, p := range []*portrait.Profile{tagged("p1", "a"), tagged("p2", "a", "b"), tagged("p3", "b"), tagged("p4")} {
		ix.Upsert(p, nil)
	}
	store := newMemStore()
	s := segment.NewService(ix, store)
	s.Now = func() time.Time { return now }
	mk := func(d *segment.Definition) string {
		st, err := s.Create(ctx, d)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		return st.ID
	}
	a := mk(&segment.Definition{Name: "A", Expression: `"a" in tags`})
	b := mk(&segment.Definition{Name: "B", Expression: `"b" in tags`})
	u := mk(&segment.Definition{Name: "A or B", Union: []string{a, b}})
	i := mk(&segment.Definition{Name: "A and B", Intersect: []string{a, b}})
	d := mk(&segment.Definition{Name: "A not B", Difference: []string{a, b}})
	dd := mk(&segment.Definition{Name: "(A or B) not (A and B)", Difference: []string{u, i}})
	check := func(when string, want map[string][]string) {
		t.Helper()
		for id, w := range want {
			if got := members(t, s, id); !slices.Equal(got, w) {
				t.Errorf("%s: %s has %v, want %v", when, id, got, w)
			}
		}
	}
	check("created", map[string][]string{u: {"p1", "p2", "p3"}, i: {"p2"}, d: {"p1"}, dd: {"p1", "p3"}})

	// p4 gains a, p1 loses a: the set operations follow
	if err := s.Apply(ctx, []*portrait.Profile{tagged("p4", "a"), tagged("p1")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	check("after changes", map[string][]string{u: {"p2", "p3", "p4"}, i: {"p2"}, d: {"p4"}, dd: {"p3", "p4"}})
	entered := false
	for _, e := range store.events {
		if e.Segment == d && e.Profile == "p4" && e.Kind == segment.Enter {
			entered = true
		}
	}
	if !entered {
		t.Error("p4 entering the difference was not recorded")
	}

	// redefining an operand recompiles what is built on it, transitively
	if _, err := s.Update(ctx, b, &segment.Definition{Name: "B", Expression: `"b" in tags || "a" in tags`}); err != nil {
		t.Fatal(err)
	}
	check("B redefined", map[string][]string{u: {"p2", "p3", "p4"}, i: {"p2", "p4"}, d: {}, dd: {"p3"}})

	if err := s.Delete(ctx, a); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("deleting an operand in use: %v, want a conflict", err)
	}
	if _, err := s.Update(ctx, a, &segment.Definition{Name: "A", Union: []string{dd, b}}); err == nil || !strings.Contains(err.Error(), "itself") {
		t.Errorf("a cycle through dd: %v", err)
	}
	for _, bad := range []*segment.Definition{
		{Name: "one", Union: []string{a}},
		{Name: "two ops", Union: []string{a, b}, Intersect: []string{a, b}},
		{Name: "with expr", Union: []string{a, b}, Expression: `"a" in tags`},
		{Name: "unknown", Intersect: []string{a, "seg_nope"}},
	} {
		if _, err := s.Create(ctx, bad); err == nil {
			t.Errorf("%s: accepted", bad.Name)
		}
	}

	// a restart loads set operations after their operands, whatever the
	// store's order
	s2 := segment.NewService(ix, store)
	s2.Now = s.Now
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{u, i, d, dd} {
		if got, want := members(t, s2, id), members(t, s, id); !slices.Equal(got, want) {
			t.Errorf("reloaded %s: %v, want %v", id, got, want)
		}
	}
	st, _ := s2.Get(dd)
	if !strings.Contains(st.Plan, `segment("`+u+`")`) {
		t.Errorf("plan %q does not name its operands", st.Plan)
	}
}

// A list segment holds the listed profiles that are live: one merged away
// leaves it, and it combines with other segments.
func TestListSegment(t *testing.T) {
	ctx := context.Background()
	ix := segment.NewIndex()
	for i := range 5 {
		ix.Upsert(tagged("p"+strconv.Itoa(i), "a"), nil)
	}
	s := segment.NewService(ix, newMemStore())
	s.Now = func() time.Time { return now }
	st, err := s.ListSegment(ctx, "uploaded", "", []string{"p1", "p2", "p9"})
	if err != nil {
		t.Fatal(err)
	}
	if got := members(t, s, st.ID); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Errorf("members %v", got)
	}
	if err := s.Apply(ctx, nil, []string{"p2"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := members(t, s, st.ID); !slices.Equal(got, []string{"p1"}) {
		t.Errorf("after p2 merged away: %v", got)
	}
	if _, err := s.ListSegment(ctx, "empty", "", nil); err == nil {
		t.Error("an empty list was saved")
	}
}

func TestReadIdentifierList(t *testing.T) {
	norm := clean.Identifier
	csvIn := "\ufeffName,Phone,Email\n张三,138 0013 8000,\n李四,,LI.Si@Example.com \n王五,12,not-an-email\n赵六,,\n"
	rows, rep, err := segment.ReadIdentifierList(strings.NewReader(csvIn), "csv", "", nil, norm)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 4 || rep.Invalid != 2 || len(rows) != 2 || !slices.Equal(rep.Columns, []string{"phone", "email"}) {
		t.Fatalf("report %+v rows %+v", rep, rows)
	}
	if rows[0].IDs[0] != (portrait.Identifier{Type: "phone", Value: "+8613800138000"}) || rows[1].IDs[0] != (portrait.Identifier{Type: "email", Value: "li.si@example.com"}) {
		t.Errorf("standardised rows %+v", rows)
	}
	if rep.Problems[0].Row != 4 || !strings.Contains(rep.Problems[0].Reason, "cannot be standardised") || rep.Problems[1].Reason != "no identifier" {
		t.Errorf("problems %+v", rep.Problems)
	}
	// one column without a header, typed by the caller
	rows, rep, err = segment.ReadIdentifierList(strings.NewReader("13800138000\n13900139000\n"), "csv", "phone", nil, norm)
	if err != nil || rep.Rows != 2 || len(rows) != 2 || rows[0].Row != 1 {
		t.Errorf("headerless column: %+v %+v %v", rep, rows, err)
	}
	if _, _, err := segment.ReadIdentifierList(strings.NewReader("name\nx\n"), "csv", "", nil, norm); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("no identifier column: %v", err)
	}
	// XLSX
	f := excelize.NewFile()
	f.SetSheetRow("Sheet1", "A1", &[]any{"email"})
	f.SetSheetRow("Sheet1", "A2", &[]any{"a@example.com"})
	var buf bytes.Buffer
	f.Write(&buf)
	rows, rep, err = segment.ReadIdentifierList(&buf, "xlsx", "", nil, norm)
	if err != nil || rep.Rows != 1 || len(rows) != 1 {
		t.Errorf("xlsx: %+v %+v %v", rep, rows, err)
	}
}
