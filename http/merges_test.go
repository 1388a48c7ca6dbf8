package http_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// replayed is what a rebuild gives: s's whole log copied into a fresh
// store and applied by a fresh processor, wired as linkServer wires it.
func (s *server) replayed(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	last, err := s.db.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for i := int64(1); i <= last; i++ {
		seqs = append(seqs, i)
	}
	all, err := s.db.EventsBySeq(ctx, seqs)
	if err != nil {
		t.Fatal(err)
	}
	db2, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	if _, err := db2.Append(ctx, all, nil); err != nil {
		t.Fatal(err)
	}
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	proc := profile.NewProcessor(db2, rules)
	proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	last2, _ := db2.LastSeq(ctx)
	if err := proc.CatchUp(ctx, last2); err != nil {
		t.Fatal(err)
	}
	return db2
}

// An identity merge — a shared tablet joined a browsing device and a
// customer's account — is undone from the profile's journal: the two come
// back with their own traits and events, the split is journalled with who
// decided it, a rebuild gives the same, a later event with both
// identifiers lands on the account (the stronger identifier) without
// merging, the same undo again is a conflict, and undoing the split
// merges them again.
func TestUndoIdentityMerge(t *testing.T) {
	s := linkServer(t, []string{"name", "email", "phone"})
	ctx := context.Background()
	s.post(t, "/v1/identify", `{"anonymousId":"tablet-1","messageId":"c-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"李娜","city":"杭州市"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-7","messageId":"c-2","timestamp":"2026-03-01T09:00:00Z","traits":{"name":"王芳","city":"苏州市"}}`)
	s.post(t, "/v1/track", `{"anonymousId":"tablet-1","userId":"u-7","event":"Order Completed","messageId":"c-3","timestamp":"2026-03-01T10:00:00Z"}`)
	s.settle(t)
	lookup := func(typ, v string) string {
		t.Helper()
		r := s.get(t, "/v1/profiles/lookup?type="+typ+"&value="+url.QueryEscape(v))
		if r.status != 200 {
			t.Fatalf("lookup %s %s: %d %s", typ, v, r.status, r.raw)
		}
		return r.body["id"].(string)
	}
	journal := func(id, kind string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, m := range s.get(t, "/v1/profiles/"+id+"/merges").body["merges"].([]any) {
			if m := m.(map[string]any); m["kind"] == kind {
				out = append(out, m)
			}
		}
		return out
	}
	events := func(id string) string {
		t.Helper()
		var ids []string
		for _, e := range s.get(t, "/v1/profiles/"+id+"/events").body["events"].([]any) {
			ids = append(ids, e.(map[string]any)["messageId"].(string))
		}
		sort.Strings(ids)
		return strings.Join(ids, ",")
	}
	merged := lookup("user_id", "u-7")
	if lookup("anonymous_id", "tablet-1") != merged {
		t.Fatal("c-3 did not merge the tablet and the account")
	}
	ms := journal(merged, "merged")
	if len(ms) != 1 {
		t.Fatalf("merges: %v", ms)
	}
	mergeID := int64(ms[0]["id"].(float64))
	r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", merged, mergeID))
	if r.status != 200 || r.body["by"] != "web" || r.body["split"] == nil {
		t.Fatalf("undo: %d %s", r.status, r.raw)
	}
	s.settle(t)
	dev, acct := lookup("anonymous_id", "tablet-1"), lookup("user_id", "u-7")
	if dev == acct {
		t.Fatal("the undo did not split the profiles")
	}
	for id, want := range map[string]string{dev: "李娜", acct: "王芳"} {
		if got := s.get(t, "/v1/profiles/"+id).body["traits"].(map[string]any)["name"].(map[string]any)["value"]; got != want {
			t.Errorf("profile %s name %v, want %s", id, got, want)
		}
	}
	if got := events(dev); got != "c-1" {
		t.Errorf("tablet events %s, want c-1", got)
	}
	if got := events(acct); got != "c-2,c-3" {
		t.Errorf("account events %s, want c-2,c-3 (the bridge goes with user_id)", got)
	}
	splits := journal(acct, "split")
	if len(splits) != 1 || !strings.Contains(splits[0]["reason"].(string), "decided by web") || splits[0]["into"] == "" || splits[0]["from"] == "" || splits[0]["at"] == "" {
		t.Fatalf("split journal: %v", splits)
	}
	if len(journal(dev, "split")) != 1 {
		t.Error("the split is missing from the tablet's journal")
	}
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", acct, mergeID)); r.status != 409 {
		t.Errorf("undo twice: %d %s", r.status, r.raw)
	}

	// The tablet again, with the account: the event lands on the account.
	s.post(t, "/v1/track", `{"anonymousId":"tablet-1","userId":"u-7","event":"Order Completed","messageId":"c-4","timestamp":"2026-03-02T10:00:00Z"}`)
	s.settle(t)
	if lookup("anonymous_id", "tablet-1") == lookup("user_id", "u-7") {
		t.Fatal("a later event merged the split profiles again")
	}
	if got := events(acct); got != "c-2,c-3,c-4" {
		t.Errorf("account events %s, want c-2,c-3,c-4", got)
	}

	// A rebuild gives the same.
	db2 := s.replayed(t)
	for _, c := range []struct{ typ, value, events string }{{"anonymous_id", "tablet-1", "c-1"}, {"user_id", "u-7", "c-2,c-3,c-4"}} {
		p, err := db2.ProfileByIdentifier(ctx, identityOf(c.typ, c.value))
		if err != nil || p == nil {
			t.Fatalf("rebuild: no profile for %s: %v", c.value, err)
		}
		if got := eventsIn(t, db2, p.ID); got != c.events {
			t.Errorf("rebuild: %s has %s, want %s", c.value, got, c.events)
		}
	}

	// Merge again: undo the split.
	sid := int64(splits[0]["id"].(float64))
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", acct, sid)); r.status != 200 || r.body["retract"] == nil {
		t.Fatalf("undo the split: %d %s", r.status, r.raw)
	}
	s.settle(t)
	again := lookup("user_id", "u-7")
	if lookup("anonymous_id", "tablet-1") != again {
		t.Fatal("undoing the split did not merge the profiles again")
	}
	if got := events(again); got != "c-1,c-2,c-3,c-4" {
		t.Errorf("merged again: events %s", got)
	}
	if len(journal(again, "retracted")) == 0 {
		t.Error("the re-merge is not journalled")
	}
	if r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", again, sid)); r.status != 409 {
		t.Errorf("undo the split twice: %d %s", r.status, r.raw)
	}
}

func identityOf(typ, value string) portrait.Identifier {
	return portrait.Identifier{Type: typ, Value: value}
}

// eventsIn lists a profile's event message ids in db, sorted and joined.
func eventsIn(t *testing.T, db *sqlite.DB, id string) string {
	t.Helper()
	evs, _, err := db.ProfileEvents(context.Background(), id, portrait.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.MessageID)
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}
