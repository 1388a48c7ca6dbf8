package storetest

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// ReadStore is what the read checks need: the log, the profiles and the
// journals as the API reads them.
type ReadStore interface {
	LogStore
	ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error)
	CountEvents(ctx context.Context) (int64, error)
	EventCountsBySource(ctx context.Context) (map[string]int64, error)
	ReceivedAt(ctx context.Context, seq int64) (time.Time, error)
	TrackEvents(ctx context.Context, name string, fn func(profileID string, e *portrait.Event) error) error
	Profile(ctx context.Context, id string) (*portrait.Profile, error)
	ProfileEvents(ctx context.Context, profileID string, p portrait.Page) ([]*portrait.Event, string, error)
	CountProfiles(ctx context.Context) (int, error)
	RecentMerges(ctx context.Context, limit int) ([]*portrait.MergeEntry, error)
	RefusedMerges(ctx context.Context) ([]*portrait.MergeEntry, error)
	MergeCounts(ctx context.Context) (map[string]int64, error)
	AddTraitIssues(ctx context.Context, issues []*portrait.TraitIssue) error
	TraitIssues(ctx context.Context, source string, limit int) ([]*portrait.TraitIssue, error)
	ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error)
	EachTraitIssue(ctx context.Context, fn func(source, trait, reason string, n int64) error) error
	AccountState(ctx context.Context) (int64, []byte, error)
	SaveAccountState(ctx context.Context, seq int64, body []byte) error
	DataVersion(ctx context.Context) (string, error)
}

// RunReads applies a small history through the processor and checks what
// the store's reads answer: the same answers, errors, orders and cursors
// from every store.
func RunReads(t *testing.T, open func(t *testing.T) ReadStore) {
	ctx := context.Background()
	s := open(t)
	e := newEnv(s)
	e.send(t,
		ev("m1", "page", "", "anon-1", 0, ""),
		ev("m2", "track", "", "anon-1", time.Minute, ""),
		ev("m3", "page", "", "anon-2", 2*time.Minute, ""),
		ev("m4", "identify", "u1", "anon-1", 3*time.Minute, `{"email":"zhang.san@example.com"}`),
		ev("m5", "identify", "u1", "anon-2", 4*time.Minute, `{"name":"Zhang San"}`),
		ev("a1", "identify", "alice", "shared-tablet", 5*time.Minute, `{"name":"Alice"}`),
		ev("a2", "identify", "bob", "shared-tablet", 6*time.Minute, `{"name":"Bob"}`),
	)
	e.catchUp(t)
	code := func(err error) string { return portrait.ErrorCode(err) }
	msgs := func(evs []*portrait.Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.MessageID)
		}
		return out
	}

	p, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: "zhang.san@example.com"})
	if err != nil || p.EventCount != 5 {
		t.Fatalf("ProfileByIdentifier: %+v %v", p, err)
	}
	if q, err := s.Profile(ctx, profile.ProfileID("m3")); err != nil || q.ID != p.ID {
		t.Errorf("the merged-away id answers %v %v, want %s", q, err, p.ID)
	}
	if _, err := s.Profile(ctx, "nobody"); code(err) != portrait.ENOTFOUND {
		t.Errorf("Profile of an unknown id: %v", err)
	}
	if _, err := s.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: "none@x"}); code(err) != portrait.ENOTFOUND {
		t.Errorf("ProfileByIdentifier of an unknown identifier: %v", err)
	}

	// The timeline pages newest first by event time, through the alias
	// too; a cursor continues where the page ended.
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		evs, next, err := s.ProfileEvents(ctx, profile.ProfileID("m3"), portrait.Page{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs(evs)...)
		if next == "" || pages > 5 {
			break
		}
		cursor = next
	}
	if want := []string{"m5", "m4", "m3", "m2", "m1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("timeline pages %v, want %v", got, want)
	}
	if evs, next, err := s.ProfileEvents(ctx, p.ID, portrait.Page{Limit: 5}); err != nil || len(evs) != 5 || next != "" {
		t.Errorf("a page that holds the whole timeline: %d events, next %q, %v", len(evs), next, err)
	}
	if evs, next, err := s.ProfileEvents(ctx, p.ID, portrait.Page{Filter: portrait.EventFilter{Type: "track"}}); err != nil || !reflect.DeepEqual(msgs(evs), []string{"m2"}) || next != "" {
		t.Errorf("filtered timeline %v %q %v", msgs(evs), next, err)
	}
	if _, _, err := s.ProfileEvents(ctx, p.ID, portrait.Page{Cursor: "not a cursor!"}); code(err) != portrait.EINVALID {
		t.Errorf("a bad cursor: %v", err)
	}
	if _, _, err := s.ProfileEvents(ctx, "nobody", portrait.Page{}); code(err) != portrait.ENOTFOUND {
		t.Errorf("the timeline of an unknown profile: %v", err)
	}

	// Journals.
	ms, err := s.ProfileMerges(ctx, p.ID)
	if err != nil || len(ms) != 1 || ms[0].Kind != portrait.MergeMerged || ms[0].MessageID != "m5" || ms[0].Identifier.Value != "anon-2" || ms[0].EventSeq != 5 {
		t.Errorf("ProfileMerges %+v %v", ms, err)
	}
	rm, err := s.RecentMerges(ctx, 10)
	if err != nil || len(rm) != 1 || rm[0].MessageID != "m5" || rm[0].ID != ms[0].ID || !rm[0].At.Equal(ms[0].At) {
		t.Errorf("RecentMerges %+v %v", rm, err)
	}
	refused, err := s.RefusedMerges(ctx)
	if err != nil || len(refused) == 0 {
		t.Errorf("RefusedMerges %+v %v", refused, err)
	}
	for _, m := range refused {
		if m.Kind != portrait.MergeRefused || m.From == "" {
			t.Errorf("RefusedMerges lists %+v", m)
		}
	}
	counts, err := s.MergeCounts(ctx)
	if err != nil || counts[portrait.MergeMerged] != 1 || counts[portrait.MergeRefused] < int64(len(refused)) {
		t.Errorf("MergeCounts %v %v", counts, err)
	}
	if n, err := s.CountProfiles(ctx); err != nil || n != 3 {
		t.Errorf("CountProfiles %d %v, want 3", n, err)
	}
	ids, err := s.ProfileIDs(ctx, "", 10)
	if err != nil || len(ids) != 3 || !sort.StringsAreSorted(ids) {
		t.Fatalf("ProfileIDs %v %v", ids, err)
	}
	if rest, err := s.ProfileIDs(ctx, ids[0], 1); err != nil || !reflect.DeepEqual(rest, ids[1:2]) {
		t.Errorf("ProfileIDs after %s: %v %v", ids[0], rest, err)
	}
	// A negative limit is no limit (SQLite's LIMIT -1).
	if all, err := s.ProfileIDs(ctx, "", -1); err != nil || !reflect.DeepEqual(all, ids) {
		t.Errorf("ProfileIDs without a limit: %v %v", all, err)
	}
	if all, err := s.RecentMerges(ctx, -1); err != nil || len(all) != 1 {
		t.Errorf("RecentMerges without a limit: %v %v", all, err)
	}

	// AllProfiles stops at fn's error and returns it as it is.
	stop := errors.New("stop")
	calls := 0
	if err := s.AllProfiles(ctx, func(*portrait.Profile) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("AllProfiles with fn failing: %v after %d calls", err, calls)
	}

	// The log.
	if err := s.TrackEvents(ctx, "", func(string, *portrait.Event) error { return nil }); code(err) != portrait.EINVALID {
		t.Errorf("TrackEvents without a name: %v", err)
	}
	var tracked []string
	if err := s.TrackEvents(ctx, "Order Completed", func(pid string, e *portrait.Event) error {
		tracked = append(tracked, pid+" "+e.MessageID)
		return nil
	}); err != nil || !reflect.DeepEqual(tracked, []string{p.ID + " m2"}) {
		t.Errorf("TrackEvents %v %v", tracked, err)
	}
	if e, err := s.EventByMessageID(ctx, "m4"); err != nil || e == nil || e.Seq != 4 || e.UserID != "u1" {
		t.Errorf("EventByMessageID(m4) %+v %v", e, err)
	}
	if e, err := s.EventByMessageID(ctx, "none"); err != nil || e != nil {
		t.Errorf("EventByMessageID of an unknown id %+v %v", e, err)
	}
	if at, err := s.ReceivedAt(ctx, 2); err != nil || !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("ReceivedAt(2) %v %v", at, err)
	}
	if at, err := s.ReceivedAt(ctx, 999); err != nil || !at.IsZero() {
		t.Errorf("ReceivedAt of an unknown seq %v %v", at, err)
	}
	if evs, err := s.EventsBySeq(ctx, []int64{5, 999, 1}); err != nil || !reflect.DeepEqual(msgs(evs), []string{"m5", "m1"}) {
		t.Errorf("EventsBySeq %v %v", msgs(evs), err)
	}
	if evs, err := s.ReadLog(ctx, 5, 10); err != nil || !reflect.DeepEqual(msgs(evs), []string{"a1", "a2"}) || evs[0].Seq != 6 {
		t.Errorf("ReadLog after 5: %v %v", msgs(evs), err)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != 7 {
		t.Errorf("CountEvents %d %v", n, err)
	}
	if bySrc, err := s.EventCountsBySource(ctx); err != nil || !reflect.DeepEqual(bySrc, map[string]int64{"web": 7}) {
		t.Errorf("EventCountsBySource %v %v", bySrc, err)
	}

	// Trait issues: each once, newest first, a profile's own and those of
	// the profiles merged into it (under the surviving id).
	issues := []*portrait.TraitIssue{
		{MessageID: "m1", Trait: "phone", Source: "web", ProfileID: p.ID, Value: "12", Reason: "too short", Time: t0.Add(time.Hour)},
		{MessageID: "m2", Trait: "phone", Source: "crm", ProfileID: "other", Value: "x", Reason: "not a number", Time: t0.Add(2 * time.Hour)},
		{MessageID: "m3", Trait: "email", Source: "web", ProfileID: profile.ProfileID("m3"), Value: "@", Reason: "invalid", Time: t0.Add(30 * time.Minute)},
	}
	for range 2 {
		if err := s.AddTraitIssues(ctx, issues); err != nil {
			t.Fatal(err)
		}
	}
	pick := func(l []*portrait.TraitIssue) []string {
		out := []string{}
		for _, i := range l {
			out = append(out, i.MessageID+" "+i.ProfileID)
		}
		return out
	}
	if l, err := s.TraitIssues(ctx, "", 10); err != nil || !reflect.DeepEqual(pick(l), []string{"m2 other", "m1 " + p.ID, "m3 " + profile.ProfileID("m3")}) {
		t.Errorf("TraitIssues %v %v", pick(l), err)
	}
	if l, err := s.TraitIssues(ctx, "crm", 10); err != nil || !reflect.DeepEqual(pick(l), []string{"m2 other"}) {
		t.Errorf("TraitIssues(crm) %v %v", pick(l), err)
	}
	if l, err := s.ProfileTraitIssues(ctx, profile.ProfileID("m3"), 10); err != nil || !reflect.DeepEqual(pick(l), []string{"m1 " + p.ID, "m3 " + p.ID}) {
		t.Errorf("ProfileTraitIssues %v %v", pick(l), err)
	}
	if l, err := s.ProfileTraitIssues(ctx, p.ID, 1); err != nil || len(l) != 1 || l[0].MessageID != "m1" {
		t.Errorf("ProfileTraitIssues limited to 1: %v %v", pick(l), err)
	}
	each := map[string]int64{}
	if err := s.EachTraitIssue(ctx, func(source, trait, reason string, n int64) error {
		each[source+"/"+trait+"/"+reason] += n
		return nil
	}); err != nil || !reflect.DeepEqual(each, map[string]int64{"web/phone/too short": 1, "crm/phone/not a number": 1, "web/email/invalid": 1}) {
		t.Errorf("EachTraitIssue %v %v", each, err)
	}

	// The accounts' checkpoint.
	if seq, body, err := s.AccountState(ctx); err != nil || seq != 0 || body != nil {
		t.Errorf("no accounts checkpoint: %d %q %v", seq, body, err)
	}
	for _, c := range []struct {
		seq  int64
		body string
	}{{7, "abc"}, {8, "d"}} {
		if err := s.SaveAccountState(ctx, c.seq, []byte(c.body)); err != nil {
			t.Fatal(err)
		}
		if seq, body, err := s.AccountState(ctx); err != nil || seq != c.seq || string(body) != c.body {
			t.Errorf("accounts checkpoint %d %q %v, want %d %q", seq, body, err, c.seq, c.body)
		}
	}

	// DataVersion moves with a commit to the log and to the state.
	v1, err := s.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.send(t, ev("m6", "page", "u1", "", 7*time.Minute, ""))
	v2, err := s.DataVersion(ctx)
	if err != nil || v2 == v1 {
		t.Errorf("DataVersion after an append: %q → %q %v", v1, v2, err)
	}
	e.catchUp(t)
	if v3, err := s.DataVersion(ctx); err != nil || v3 == v2 {
		t.Errorf("DataVersion after a state commit: %q → %q %v", v2, v3, err)
	}
}
