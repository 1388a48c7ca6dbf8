package storetest

// The configuration and history a store keeps beside the event log —
// linkage candidates and decisions, analytics runs, computed traits, the
// trait schema, RFM boundaries, tags, segments with their history,
// webhooks, dead letters, deliveries, account edits — and the behaviour
// summaries segments read from the log. Every store answers these the same
// way: the same order, the same errors, the same ids.

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/analytics/jobs"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// ConfigStore is what RunConfig checks.
type ConfigStore interface {
	linkage.CandidateStore
	jobs.RunStore
	tag.Store
	segment.Store
	delivery.Store

	SaveTraitDefinition(ctx context.Context, d traits.Definition) error
	TraitDefinitions(ctx context.Context) ([]traits.Definition, error)
	DeleteTraitDefinition(ctx context.Context, name string) error
	SaveSchemaFields(ctx context.Context, fields []traits.Field) error
	SchemaFields(ctx context.Context) ([]traits.Field, error)
	SaveBoundaries(ctx context.Context, b *traits.Boundaries) error
	LatestBoundaries(ctx context.Context) (*traits.Boundaries, error)

	AppendAccountEdit(ctx context.Context, ed *account.Edit) (int64, error)
	AccountEdits(ctx context.Context) ([]*account.Edit, error)
}

// RunConfig checks the store open returns, a new empty one for each
// subtest.
func RunConfig(t *testing.T, open func(t *testing.T) ConfigStore) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s ConfigStore)
	}{
		{"LinkageCandidates", linkageCandidates},
		{"LinkageModel", linkageModel},
		{"AnalyticsRuns", analyticsRuns},
		{"TraitDefinitions", traitDefinitions},
		{"SchemaAndBoundaries", schemaAndBoundaries},
		{"TagVersions", tagVersions},
		{"SegmentsAndHistory", segmentsAndHistory},
		{"HistoryOnceAndOutbox", historyOnceAndOutbox},
		{"WebhooksAndDeadLetters", webhooksAndDeadLetters},
		{"Deliveries", deliveries},
		{"AccountEdits", accountEdits},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func cfgMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func cfgWantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if portrait.ErrorCode(err) != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func cfgCandidate(id string, prob float64) *linkage.Candidate {
	return &linkage.Candidate{ID: id, A: email(id + "-a@x"), B: email(id + "-b@x"), AProfile: "pa-" + id, BProfile: "pb-" + id,
		Probability: prob, Weight: prob * 10, Status: linkage.Pending, FoundAt: t0}
}

func cfgCandidateIDs(cs []*linkage.Candidate) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func linkageCandidates(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if cs, err := s.Candidates(ctx, "", 0); err != nil || cs == nil || len(cs) != 0 {
		t.Fatalf("no candidates yet: %v %v (want an empty, non-nil list)", cs, err)
	}
	// Ties in probability are listed by id, bytewise (uppercase first).
	cfgMust(t, s.SaveCandidates(ctx, []*linkage.Candidate{cfgCandidate("c", 0.5), cfgCandidate("a", 0.9), cfgCandidate("b", 0.5), cfgCandidate("B", 0.5), cfgCandidate("d", 0.1)}))
	cs, err := s.Candidates(ctx, "", 0)
	cfgMust(t, err)
	if got := cfgCandidateIDs(cs); !reflect.DeepEqual(got, []string{"a", "B", "b", "c", "d"}) {
		t.Errorf("candidates in order %v", got)
	}
	if cs[0].AProfile != "pa-a" || cs[0].Fields != nil && len(cs[0].Fields) != 0 || !cs[0].FoundAt.Equal(t0) || cs[0].DecidedAt != nil {
		t.Errorf("candidate read back as %+v", cs[0])
	}
	if cs, _ := s.Candidates(ctx, "", 2); len(cs) != 2 {
		t.Errorf("limit 2 listed %d", len(cs))
	}

	at := t0.Add(time.Hour)
	cfgMust(t, s.Decide(ctx, "b", "rejected", "ops@x", at, ""))
	cfgMust(t, s.Decide(ctx, "c", "accepted", "ops@x", at, ""))
	cfgMust(t, s.Decide(ctx, "c", "linked", "linker", at.Add(time.Minute), "msg-1")) // a decision is replaced
	c, err := s.Candidate(ctx, "c")
	cfgMust(t, err)
	if c.Status != "linked" || c.DecidedBy != "linker" || c.LinkMessage != "msg-1" || c.DecidedAt == nil || !c.DecidedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("decided candidate read back as %+v", c)
	}
	for status, want := range map[string][]string{linkage.Pending: {"a", "B", "d"}, "rejected": {"b"}, "linked": {"c"}, "accepted": {}} {
		cs, err := s.Candidates(ctx, status, 10)
		cfgMust(t, err)
		if got := cfgCandidateIDs(cs); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", status, got, want)
		}
	}
	d, err := s.Decisions(ctx)
	cfgMust(t, err)
	if !reflect.DeepEqual(d, map[string]string{"b": "rejected", "c": "linked"}) {
		t.Errorf("decisions %v", d)
	}

	// A new run replaces the pending pairs; decided pairs stay, with the
	// new run's score when it found them again. A pair listed twice: the
	// last listing counts.
	later := t0.Add(24 * time.Hour)
	e, b2, b3 := cfgCandidate("e", 0.7), cfgCandidate("b", 0.95), cfgCandidate("b", 0.99)
	e.FoundAt, b2.FoundAt = later, later
	cfgMust(t, s.SaveCandidates(ctx, []*linkage.Candidate{e, b2, b3}))
	cs, err = s.Candidates(ctx, "", 0)
	cfgMust(t, err)
	if got := cfgCandidateIDs(cs); !reflect.DeepEqual(got, []string{"b", "e", "c"}) {
		t.Errorf("after a new run: %v", got)
	}
	if cs[0].Probability != 0.99 || cs[0].Status != "rejected" {
		t.Errorf("re-found decided pair: %+v", cs[0])
	}
	if _, err := s.Candidate(ctx, "a"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a replaced pending pair: %v", err)
	}
	cfgMust(t, s.SaveCandidates(ctx, nil))
	if cs, _ := s.Candidates(ctx, linkage.Pending, 0); len(cs) != 0 {
		t.Errorf("an empty run left pending pairs %v", cfgCandidateIDs(cs))
	}
}

func linkageModel(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if m, err := s.LoadModel(ctx); m != nil || err != nil {
		t.Fatalf("no model yet: %v %v", m, err)
	}
	m := &linkage.Model{M: [][]float64{{0.9, 0.1}}, U: [][]float64{{0.2, 0.8}}, Prior: 0.001, Iterations: 7, Version: 3}
	cfgMust(t, s.SaveModel(ctx, m))
	m.Prior = 0.002
	cfgMust(t, s.SaveModel(ctx, m))
	got, err := s.LoadModel(ctx)
	cfgMust(t, err)
	if !reflect.DeepEqual(got, m) {
		t.Errorf("model read back as %+v, want %+v", got, m)
	}
}

func analyticsRuns(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if rs, err := s.Runs(ctx, "", 0); err != nil || rs == nil || len(rs) != 0 {
		t.Fatalf("no runs yet: %v %v (want an empty, non-nil list)", rs, err)
	}
	if _, err := s.Run(ctx, "nope"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("absent run: %v", err)
	}
	for i, kind := range []string{"clv", "churn", "clv", "kmeans"} {
		r := &jobs.Run{ID: fmt.Sprintf("r%d", i), Kind: kind, Status: "running", Params: map[string]any{"k": float64(i)}, StartedAt: t0.Add(time.Duration(i) * time.Minute)}
		cfgMust(t, s.SaveRun(ctx, r))
	}
	done := t0.Add(time.Hour)
	r := &jobs.Run{ID: "r0", Kind: "clv", Status: "done", Params: map[string]any{"k": 0.0}, Metrics: map[string]any{"rmse": 1.5}, Profiles: 9,
		StartedAt: t0, FinishedAt: &done, DurationMS: 3600000}
	cfgMust(t, s.SaveRun(ctx, r))
	got, err := s.Run(ctx, "r0")
	cfgMust(t, err)
	if !reflect.DeepEqual(got, r) {
		t.Errorf("run read back as %+v, want %+v", got, r)
	}
	ids := func(rs []*jobs.Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	all, err := s.Runs(ctx, "", 0)
	cfgMust(t, err)
	if got := ids(all); !reflect.DeepEqual(got, []string{"r3", "r2", "r1", "r0"}) {
		t.Errorf("runs newest first: %v", got)
	}
	clv, err := s.Runs(ctx, "clv", 1)
	cfgMust(t, err)
	if got := ids(clv); !reflect.DeepEqual(got, []string{"r2"}) {
		t.Errorf("latest clv run: %v", got)
	}
	// Runs started at the same time: of one kind, the later id first; of
	// all kinds, in id order.
	late := t0.Add(time.Hour)
	for _, id := range []string{"t2", "t1", "t3"} {
		cfgMust(t, s.SaveRun(ctx, &jobs.Run{ID: id, Kind: "rfm", Status: "done", StartedAt: late}))
	}
	cfgMust(t, s.SaveRun(ctx, &jobs.Run{ID: "t0", Kind: "churn", Status: "done", StartedAt: late}))
	rfm, err := s.Runs(ctx, "rfm", 0)
	cfgMust(t, err)
	if got := ids(rfm); !reflect.DeepEqual(got, []string{"t3", "t2", "t1"}) {
		t.Errorf("rfm runs started together: %v", got)
	}
	all, err = s.Runs(ctx, "", 4)
	cfgMust(t, err)
	if got := ids(all); !reflect.DeepEqual(got, []string{"t0", "t1", "t2", "t3"}) {
		t.Errorf("runs started together: %v", got)
	}
}

func traitDefinitions(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if ds, err := s.TraitDefinitions(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("no definitions yet: %v %v", ds, err)
	}
	cfgMust(t, s.SaveTraitDefinition(ctx, traits.Definition{Name: "orders_90d", Aggregate: "count", Event: "Order Completed", Window: "90d"}))
	cfgMust(t, s.SaveTraitDefinition(ctx, traits.Definition{Name: "Avg", Aggregate: "avg", Property: "revenue"}))
	cfgMust(t, s.SaveTraitDefinition(ctx, traits.Definition{Name: "orders_90d", Aggregate: "sum", Property: "revenue", Event: "Order Completed", Window: "90d"}))
	ds, err := s.TraitDefinitions(ctx)
	cfgMust(t, err)
	want := []traits.Definition{
		{Name: "Avg", Aggregate: "avg", Property: "revenue"},
		{Name: "orders_90d", Aggregate: "sum", Property: "revenue", Event: "Order Completed", Window: "90d"},
	}
	if !reflect.DeepEqual(ds, want) {
		t.Errorf("definitions %+v, want %+v", ds, want)
	}
	cfgMust(t, s.DeleteTraitDefinition(ctx, "Avg"))
	cfgWantCode(t, "deleting a deleted definition", s.DeleteTraitDefinition(ctx, "Avg"), portrait.ENOTFOUND)
	if ds, _ := s.TraitDefinitions(ctx); len(ds) != 1 || ds[0].Name != "orders_90d" {
		t.Errorf("after delete: %+v", ds)
	}
}

func schemaAndBoundaries(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if fs, err := s.SchemaFields(ctx); err != nil || len(fs) != 0 {
		t.Fatalf("no schema yet: %v %v", fs, err)
	}
	cfgMust(t, s.SaveSchemaFields(ctx, nil))
	cfgMust(t, s.SaveSchemaFields(ctx, []traits.Field{
		{Name: "plan", Type: "string", Dimension: "basic", Origin: "observed", FirstSeen: t0},
		{Name: "email", Type: "string", Classification: "confidential", Origin: "observed", FirstSeen: t0},
	}))
	cfgMust(t, s.SaveSchemaFields(ctx, []traits.Field{{Name: "plan", Type: "string", Dimension: "value", Description: "套餐", Annotated: true, FirstSeen: t0}}))
	fs, err := s.SchemaFields(ctx)
	cfgMust(t, err)
	want := []traits.Field{
		{Name: "email", Type: "string", Classification: "confidential", Origin: "observed", FirstSeen: t0},
		{Name: "plan", Type: "string", Dimension: "value", Description: "套餐", Annotated: true, FirstSeen: t0},
	}
	if !reflect.DeepEqual(fs, want) {
		t.Errorf("schema %+v, want %+v", fs, want)
	}

	if b, err := s.LatestBoundaries(ctx); b != nil || err != nil {
		t.Fatalf("no boundaries yet: %v %v", b, err)
	}
	for i := 1; i <= 3; i++ {
		cfgMust(t, s.SaveBoundaries(ctx, &traits.Boundaries{AsOf: t0.Add(time.Duration(i) * time.Hour), Customers: i, R: [4]float64{float64(i)}}))
	}
	b, err := s.LatestBoundaries(ctx)
	cfgMust(t, err)
	if b == nil || b.Customers != 3 || !b.AsOf.Equal(t0.Add(3*time.Hour)) || b.R[0] != 3 {
		t.Errorf("latest boundaries %+v", b)
	}
}

func tagVersions(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if ts, err := s.Tags(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("no tags yet: %v %v", ts, err)
	}
	for i, d := range []*tag.Definition{
		{Name: "vip", Dimension: "value", Expression: "revenue > 1000"},
		{Name: "active", Dimension: "behaviour", Expression: "days_since_last_purchase < 30"},
		{Name: "vip", Dimension: "value", Expression: "revenue > 2000", NameZh: "贵宾"},
		{Name: "vip", Dimension: "value", Expression: "revenue > 3000", Deleted: true},
	} {
		cfgMust(t, s.SaveTag(ctx, d))
		if want := map[int]int{0: 1, 1: 1, 2: 2, 3: 3}[i]; d.Version != want {
			t.Errorf("save %d: version %d, want %d", i, d.Version, want)
		}
	}
	ts, err := s.Tags(ctx)
	cfgMust(t, err)
	if len(ts) != 2 || ts[0].Name != "active" || ts[1].Name != "vip" || ts[1].Version != 3 || !ts[1].Deleted {
		t.Errorf("latest tags %+v", ts)
	}
	vs, err := s.TagVersions(ctx, "vip")
	cfgMust(t, err)
	if len(vs) != 3 || vs[0].Version != 1 || vs[1].NameZh != "贵宾" || vs[2].Version != 3 {
		t.Errorf("vip's versions %+v", vs)
	}
	if vs, err := s.TagVersions(ctx, "nope"); err != nil || len(vs) != 0 {
		t.Errorf("versions of an absent tag: %v %v", vs, err)
	}
}

func segmentsAndHistory(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if ds, err := s.Segments(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("no segments yet: %v %v", ds, err)
	}
	for _, id := range []string{"seg_b", "seg_a"} {
		cfgMust(t, s.SaveSegment(ctx, &segment.Definition{ID: id, Name: id, Expression: "traits.plan == 'pro'", CreatedAt: t0, UpdatedAt: t0}))
	}
	cfgMust(t, s.SaveSegment(ctx, &segment.Definition{ID: "seg_b", Name: "B 组", Expression: "traits.plan == 'max'", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}))
	ds, err := s.Segments(ctx)
	cfgMust(t, err)
	if len(ds) != 2 || ds[0].ID != "seg_a" || ds[1].Name != "B 组" || !ds[1].UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("segments %+v", ds)
	}

	cfgMust(t, s.AppendSegmentEvents(ctx, nil))
	var evs []*segment.Event
	for i := 0; i < 5; i++ {
		evs = append(evs, &segment.Event{Segment: "seg_a", Profile: fmt.Sprintf("p%d", i), Kind: "enter", At: t0.Add(time.Duration(i) * time.Second)})
	}
	evs = append(evs, &segment.Event{Segment: "seg_b", Profile: "p0", Kind: "enter", At: t0})
	cfgMust(t, s.AppendSegmentEvents(ctx, evs))
	cfgMust(t, s.AppendSegmentEvents(ctx, []*segment.Event{
		{Segment: "seg_a", Profile: "p1", Kind: "exit", At: t0.Add(time.Minute)},
		{Segment: "seg_a", Profile: "p2", Kind: "exit", At: t0.Add(time.Minute)},
		{Segment: "seg_a", Profile: "p2", Kind: "enter", At: t0.Add(2 * time.Minute)},
	}))
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Fatalf("ids not increasing: %d then %d", evs[i-1].ID, evs[i].ID)
		}
	}
	page, err := s.SegmentEvents(ctx, "seg_a", 0, 3)
	cfgMust(t, err)
	if len(page) != 3 || page[0].Profile != "p0" || page[0].ID != evs[0].ID || !page[0].At.Equal(t0) || page[0].Kind != "enter" || page[0].Segment != "seg_a" {
		t.Fatalf("first page %+v", page)
	}
	rest, err := s.SegmentEvents(ctx, "seg_a", page[2].ID, 0)
	cfgMust(t, err)
	var got []string
	for _, e := range rest {
		got = append(got, e.Profile+":"+e.Kind)
	}
	if !reflect.DeepEqual(got, []string{"p3:enter", "p4:enter", "p1:exit", "p2:exit", "p2:enter"}) {
		t.Errorf("second page %v", got)
	}
	members, err := s.RecordedMembers(ctx, "seg_a")
	cfgMust(t, err)
	sort.Strings(members)
	if !reflect.DeepEqual(members, []string{"p0", "p2", "p3", "p4"}) {
		t.Errorf("recorded members %v", members)
	}
	// A deleted segment's history stays.
	cfgMust(t, s.DeleteSegment(ctx, "seg_b"))
	cfgMust(t, s.DeleteSegment(ctx, "seg_b"))
	if ds, _ := s.Segments(ctx); len(ds) != 1 {
		t.Errorf("after delete: %d segments", len(ds))
	}
	if m, _ := s.RecordedMembers(ctx, "seg_b"); !reflect.DeepEqual(m, []string{"p0"}) {
		t.Errorf("deleted segment's members %v", m)
	}
	if m, err := s.RecordedMembers(ctx, "none"); err != nil || len(m) != 0 {
		t.Errorf("members of a segment without history: %v %v", m, err)
	}
}

// historyOnceAndOutbox: the history records each change of a (segment,
// profile) once however many writers (api nodes) record it, and the
// webhooks read every segment's history in order from a stored cursor.
func historyOnceAndOutbox(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	ob, ok := s.(segment.Outbox)
	if !ok {
		t.Fatal("the store is not a segment.Outbox")
	}
	cfgMust(t, s.AppendSegmentEvents(ctx, []*segment.Event{{Segment: "seg_a", Profile: "old", Kind: "enter", At: t0}}))
	// The first cursor is the history's end: what came before is not sent.
	pos, err := ob.WebhookCursor(ctx)
	cfgMust(t, err)
	if evs, err := ob.SegmentEventsAfter(ctx, pos, 10); err != nil || len(evs) != 0 {
		t.Fatalf("after the first cursor %d: %d events %v, want none", pos, len(evs), err)
	}
	// Four writers record the same 50 entries at once, and one of them
	// again: 50 rows.
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for w := 0; w < 5; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var evs []*segment.Event
			for i := 0; i < 50; i++ {
				evs = append(evs, &segment.Event{Segment: "seg_a", Profile: fmt.Sprintf("p%02d", i), Kind: "enter", At: t0.Add(time.Duration(w) * time.Second)})
			}
			errs <- s.AppendSegmentEvents(ctx, evs)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		cfgMust(t, err)
	}
	// A repeated kind changes nothing, an alternation is recorded whole,
	// within one batch too; the events not recorded keep id 0.
	again := []*segment.Event{
		{Segment: "seg_a", Profile: "p00", Kind: "enter", At: t0},
		{Segment: "seg_a", Profile: "p01", Kind: "exit", At: t0},
		{Segment: "seg_a", Profile: "p01", Kind: "exit", At: t0},
		{Segment: "seg_a", Profile: "p02", Kind: "exit", At: t0},
		{Segment: "seg_a", Profile: "p02", Kind: "enter", At: t0},
		{Segment: "seg_b", Profile: "p00", Kind: "enter", At: t0},
	}
	cfgMust(t, s.AppendSegmentEvents(ctx, again))
	var ids []int64
	for _, e := range again {
		ids = append(ids, e.ID)
	}
	if ids[0] != 0 || ids[1] == 0 || ids[2] != 0 || ids[3] == 0 || ids[4] <= ids[3] || ids[5] <= ids[4] {
		t.Errorf("ids of the second batch %v: want 0 for the events recorded already, increasing for the others", ids)
	}
	hist, err := s.SegmentEvents(ctx, "seg_a", 0, 1000)
	cfgMust(t, err)
	seen := map[string]int{}
	for _, e := range hist {
		seen[e.Profile+":"+e.Kind]++
	}
	if len(hist) != 1+50+3 || seen["p00:enter"] != 1 || seen["p01:exit"] != 1 || seen["p02:enter"] != 2 {
		t.Errorf("seg_a's history: %d rows %v, want 54", len(hist), seen)
	}
	members, err := s.RecordedMembers(ctx, "seg_a")
	cfgMust(t, err)
	if len(members) != 50 { // old and p00…p49 but p01
		t.Errorf("%d recorded members, want 50", len(members))
	}
	// The outbox reads every segment's history after the cursor, in id
	// order, and moves the cursor only from where it is.
	var all []*segment.Event
	for after := pos; ; {
		page, err := ob.SegmentEventsAfter(ctx, after, 20)
		cfgMust(t, err)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != 50+3+1 || all[len(all)-1].Segment != "seg_b" {
		t.Fatalf("outbox: %d events, want 54 ending with seg_b's", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("outbox ids not increasing: %d then %d", all[i-1].ID, all[i].ID)
		}
	}
	end := all[len(all)-1].ID
	if moved, err := ob.MoveWebhookCursor(ctx, pos, all[19].ID); err != nil || !moved {
		t.Fatalf("cursor not moved: %v %v", moved, err)
	}
	if moved, err := ob.MoveWebhookCursor(ctx, pos, end); err != nil || moved {
		t.Errorf("a cursor moved from where it no longer is: %v %v", moved, err)
	}
	if p, err := ob.WebhookCursor(ctx); err != nil || p != all[19].ID {
		t.Errorf("cursor %d %v, want %d", p, err, all[19].ID)
	}
}

func webhooksAndDeadLetters(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	cfgMust(t, s.SaveWebhook(ctx, &segment.Webhook{ID: "wh_2", URL: "https://b.example/hook", Secret: "s2", CreatedAt: t0}))
	cfgMust(t, s.SaveWebhook(ctx, &segment.Webhook{ID: "wh_1", URL: "https://a.example/hook", Secret: "s1", Segments: []string{"seg_a"}, CreatedAt: t0}))
	cfgMust(t, s.SaveWebhook(ctx, &segment.Webhook{ID: "wh_2", URL: "https://b.example/v2", Secret: "s2", Purpose: "marketing", CreatedAt: t0}))
	ws, err := s.Webhooks(ctx)
	cfgMust(t, err)
	if len(ws) != 2 || ws[0].ID != "wh_1" || ws[0].Secret != "s1" || ws[1].URL != "https://b.example/v2" || ws[1].Purpose != "marketing" {
		t.Errorf("webhooks %+v", ws)
	}
	cfgMust(t, s.DeleteWebhook(ctx, "wh_1"))
	cfgMust(t, s.DeleteWebhook(ctx, "wh_1"))
	if ws, _ := s.Webhooks(ctx); len(ws) != 1 {
		t.Errorf("after delete: %d webhooks", len(ws))
	}

	var ids []int64
	for i := 0; i < 3; i++ {
		d := &segment.DeadLetter{Webhook: "wh_2", Body: []byte(fmt.Sprintf(`{"n":%d}`, i)), Error: "503", Attempts: 5, At: t0.Add(time.Duration(i) * time.Second)}
		cfgMust(t, s.SaveDeadLetter(ctx, d))
		if d.ID == 0 || len(ids) > 0 && d.ID <= ids[len(ids)-1] {
			t.Fatalf("dead letter id %d after %v", d.ID, ids)
		}
		ids = append(ids, d.ID)
	}
	cfgMust(t, s.SaveDeadLetter(ctx, &segment.DeadLetter{Webhook: "other", Body: []byte(`{}`), Error: "x", Attempts: 1, At: t0}))
	dl, err := s.DeadLetters(ctx, "wh_2", 2)
	cfgMust(t, err)
	if len(dl) != 2 || dl[0].ID != ids[2] || dl[1].ID != ids[1] || string(dl[0].Body) != `{"n":2}` || dl[0].Attempts != 5 || dl[0].Error != "503" ||
		!dl[0].At.Equal(t0.Add(2*time.Second)) || dl[0].Webhook != "wh_2" {
		t.Errorf("dead letters %+v", dl)
	}
	if dl, _ := s.DeadLetters(ctx, "wh_2", 0); len(dl) != 3 {
		t.Errorf("default limit listed %d", len(dl))
	}
}

func deliveries(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	for _, id := range []string{"dl_b", "dl_a", "dl_b"} {
		cfgMust(t, s.SaveDelivery(ctx, &delivery.Delivery{ID: id, Segment: "seg_" + id, Identifiers: []string{"email"}, Hash: id == "dl_a", EveryText: "24h", CreatedAt: t0}))
	}
	ds, err := s.Deliveries(ctx)
	cfgMust(t, err)
	if len(ds) != 2 || ds[0].ID != "dl_a" || !ds[0].Hash || ds[1].Segment != "seg_dl_b" {
		t.Errorf("deliveries %+v", ds)
	}
	for i := 0; i < 3; i++ {
		r := &delivery.Run{Delivery: "dl_a", At: t0.Add(time.Duration(i) * time.Hour), Rows: 10 * i, Status: "ok", Where: "file"}
		cfgMust(t, s.AppendDeliveryRun(ctx, r))
		if r.ID == 0 {
			t.Fatal("no run id")
		}
	}
	runs, err := s.DeliveryRuns(ctx, "dl_a", 1)
	cfgMust(t, err)
	if len(runs) != 1 || runs[0].Rows != 20 || runs[0].ID == 0 || !runs[0].At.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("latest run %+v", runs)
	}
	if runs, _ := s.DeliveryRuns(ctx, "dl_a", 100); len(runs) != 3 || runs[0].ID <= runs[2].ID {
		t.Errorf("runs newest first: %+v", runs)
	}
	cfgMust(t, s.DeleteDelivery(ctx, "dl_a"))
	cfgWantCode(t, "deleting a deleted delivery", s.DeleteDelivery(ctx, "dl_a"), portrait.ENOTFOUND)
	if runs, _ := s.DeliveryRuns(ctx, "dl_a", 100); len(runs) != 3 {
		t.Errorf("a deleted delivery's runs: %d", len(runs))
	}
}

func accountEdits(t *testing.T, s ConfigStore) {
	ctx := context.Background()
	if eds, err := s.AccountEdits(ctx); err != nil || len(eds) != 0 {
		t.Fatalf("no edits yet: %v %v", eds, err)
	}
	var ids []int64
	for i, kind := range []string{"create", "trait", "status"} {
		ed := &account.Edit{Kind: kind, Account: "acme", Traits: map[string]any{"n": float64(i)}, By: "ops@x", At: t0.Add(time.Duration(i) * time.Second)}
		id, err := s.AppendAccountEdit(ctx, ed)
		cfgMust(t, err)
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("edit id %d after %v", id, ids)
		}
		ids = append(ids, id)
	}
	eds, err := s.AccountEdits(ctx)
	cfgMust(t, err)
	if len(eds) != 3 {
		t.Fatalf("%d edits", len(eds))
	}
	for i, ed := range eds {
		if ed.ID != ids[i] || ed.Account != "acme" || ed.By != "ops@x" || !ed.At.Equal(t0.Add(time.Duration(i)*time.Second)) || ed.Traits["n"] != float64(i) {
			t.Errorf("edit %d read back as %+v", i, ed)
		}
	}
}

// Behaviour is what a store must hold for the behaviour checks: Events
// appended to the log in order (the store sets their Seq), each applied to
// the profile Owner names ("": not applied), the Profiles' documents, and
// Aliases from a merged-away id to the id that holds its history.
type Behaviour struct {
	Events   []*portrait.Event
	Owner    []string
	Profiles []*portrait.Profile
	Aliases  map[string]string
}

// BehaviourStore is what CheckBehaviour reads.
type BehaviourStore interface {
	SegmentBehaviour(ctx context.Context, p *portrait.Profile) (segment.Summary, error)
	AllSegmentBehaviour(ctx context.Context) (map[string]segment.Summary, error)
}

// BehaviourFixture builds the events and profiles CheckBehaviour expects:
// p1 has more orders than a summary keeps, page views, identifies and one
// event more in its counts than in its history; p2 a few orders under an
// alias; one order was never applied.
func BehaviourFixture() *Behaviour {
	b := &Behaviour{Aliases: map[string]string{"p1-old": "p1", "p1-older": "p1-old"}}
	add := func(owner, typ, name string, at time.Time, props string) {
		e := &portrait.Event{MessageID: fmt.Sprintf("m%04d", len(b.Events)), Type: typ, Source: "web", UserID: owner, Name: name,
			Timestamp: at, ReceivedAt: at}
		if props != "" {
			e.Properties = []byte(props)
		}
		b.Events = append(b.Events, e)
		b.Owner = append(b.Owner, owner)
	}
	// Interleaved, and with event times not in log order: the summary
	// follows event time, newest first.
	for i := 0; i < 300; i++ {
		at := t0.Add(time.Duration((i*7)%300) * time.Hour)
		add("p1", portrait.EventTrack, "Order Completed", at, fmt.Sprintf(`{"revenue":%d}`, 10+i))
		if i%60 == 0 {
			add("p1", portrait.EventTrack, "Viewed", at.Add(time.Minute), "")
			add("p1", "identify", "", at.Add(2*time.Minute), "")
		}
	}
	for i := 0; i < 3; i++ {
		add("p2", portrait.EventTrack, "Order Completed", t0.Add(time.Duration(i)*time.Hour), `{"amount":5}`)
	}
	add("", portrait.EventTrack, "Order Completed", t0, `{"revenue":1}`)
	b.Profiles = []*portrait.Profile{
		{ID: "p1", TrackCounts: map[string]int{"Order Completed": 301, "Viewed": 5}, EventCount: 310, FirstSeen: t0, LastSeen: t0, UpdatedAt: t0},
		{ID: "p2", TrackCounts: map[string]int{"Order Completed": 3}, EventCount: 3, FirstSeen: t0, LastSeen: t0, UpdatedAt: t0},
	}
	return b
}

// CheckBehaviour checks the summaries of a store holding BehaviourFixture.
func CheckBehaviour(t *testing.T, s BehaviourStore, b *Behaviour) {
	ctx := context.Background()
	// The expected summaries, from the fixture's events directly.
	newest := map[string][]*portrait.Event{}
	all := map[string]segment.Summary{}
	for i, e := range b.Events {
		if b.Owner[i] == "" || e.Type != portrait.EventTrack {
			continue
		}
		newest[b.Owner[i]] = append(newest[b.Owner[i]], e)
		if all[b.Owner[i]] == nil {
			all[b.Owner[i]] = segment.Summary{}
		}
		all[b.Owner[i]].AddEvent(e)
	}
	got, err := s.AllSegmentBehaviour(ctx)
	cfgMust(t, err)
	if !reflect.DeepEqual(got, all) {
		t.Errorf("AllSegmentBehaviour: %d profiles %v, want %d %v", len(got), summaryLens(got), len(all), summaryLens(all))
	}

	// One profile's: the MaxRecent newest events of each name, the totals
	// from the profile's counts.
	p1 := b.Profiles[0]
	evs := newest["p1"]
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Timestamp.After(evs[j].Timestamp) })
	want := segment.Summary{}
	for _, e := range evs {
		if h := want[e.Name]; h == nil || h.Len() < segment.MaxRecent {
			want.AddEvent(e)
		}
	}
	want["Order Completed"].Total, want["Viewed"].Total = 301, 5
	if want["Order Completed"].Len() != segment.MaxRecent {
		t.Fatalf("the fixture has %d orders kept", want["Order Completed"].Len())
	}
	for _, id := range []string{"p1", "p1-old", "p1-older"} {
		q := *p1
		q.ID = id
		got, err := s.SegmentBehaviour(ctx, &q)
		cfgMust(t, err)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SegmentBehaviour(%s): %v, want %v", id, summaryLens(map[string]segment.Summary{id: got}), summaryLens(map[string]segment.Summary{id: want}))
		}
	}
	got1, err := s.SegmentBehaviour(ctx, &portrait.Profile{ID: "nobody", TrackCounts: map[string]int{"Order Completed": 4}})
	if err != nil || len(got1) != 0 {
		t.Errorf("SegmentBehaviour of an absent profile: %v %v", summaryLens(map[string]segment.Summary{"nobody": got1}), err)
	}
}

// summaryLens describes summaries for a failure message.
func summaryLens(m map[string]segment.Summary) map[string]string {
	out := map[string]string{}
	for id, s := range m {
		for name, h := range s {
			out[id+"/"+name] = fmt.Sprintf("%d of %d", h.Len(), h.Total)
		}
	}
	return out
}
