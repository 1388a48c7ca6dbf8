package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// RunSameAnswers feeds one history to a reference store and to s, each
// through a processor of its own, in the same arrival order (shuffled, in
// chunks, with link events and a retraction), and checks that every read
// answers the same: profiles, timelines page by page with their cursors,
// journals, the identity graph, counts. It is how a second store shows it
// behaves as the first, beyond the rules the other checks state.
func RunSameAnswers(t *testing.T, ref, s ReadStore) {
	events := genEvents(fixedSpecs(300))
	rng := rand.New(rand.NewPCG(5, 6))
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	for i := range 4 {
		a := portrait.Identifier{Type: "user_id", Value: fmt.Sprintf("u%d", i+1)}
		b := portrait.Identifier{Type: "email", Value: fmt.Sprintf("e%d@example.com", 5-i)}
		events = append(events, linkEvent(fmt.Sprintf("link-%d", i), time.Duration(500+i)*time.Second, a, b))
	}
	events = append(events, retractEvent("undo-1", 2000*time.Second, "link-1"))
	envs := []*env{newEnv(ref), newEnv(s)}
	for start := 0; start < len(events); {
		n := min(len(events)-start, 1+rng.IntN(60))
		for _, e := range envs {
			e.proc.BatchSize = 16
			e.send(t, events[start:start+n]...)
			e.catchUp(t)
		}
		start += n
	}
	want, got := answers(t, ref), answers(t, s)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			if bad++; bad <= 10 {
				t.Errorf("%s:\n want %s\n  got %s", k, want[k], got[k])
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 10 {
				t.Errorf("%s answered only by the store under test: %s", k, got[k])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d answers differ", bad, len(want))
	}
	if len(want) < 50 || want["MergeCounts"] == "{}" {
		t.Fatalf("only %d answers compared (merges %s): the history tests too little", len(want), want["MergeCounts"])
	}
}

// answers reads everything the API and the processor read, as text.
func answers(t *testing.T, s ReadStore) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	put := func(key string, v any, err error) {
		if err != nil {
			v = "error " + portrait.ErrorCode(err)
		}
		b, jerr := json.Marshal(v)
		if jerr != nil {
			t.Fatal(jerr)
		}
		out[key] = string(b)
	}
	// Journal ids come from a sequence PostgreSQL does not roll back:
	// compared by position, not value.
	noIDs := func(ms []*portrait.MergeEntry) []*portrait.MergeEntry {
		for _, m := range ms {
			m.ID = 0
		}
		return ms
	}
	ids, err := s.ProfileIDs(ctx, "", -1)
	put("ProfileIDs", ids, err)
	for _, id := range ids {
		p, err := s.Profile(ctx, id)
		put("Profile "+id, p, err)
		var pages []string
		cursor := ""
		for range 100 {
			evs, next, err := s.ProfileEvents(ctx, id, portrait.Page{Cursor: cursor, Limit: 7})
			if err != nil {
				pages = append(pages, "error "+portrait.ErrorCode(err))
				break
			}
			page := next + ":"
			for _, e := range evs {
				page += " " + e.MessageID
			}
			pages = append(pages, page)
			if next == "" {
				break
			}
			cursor = next
		}
		put("ProfileEvents "+id, pages, nil)
		tracks, _, err := s.ProfileEvents(ctx, id, portrait.Page{Limit: 1000, Filter: portrait.EventFilter{Type: "track"}})
		put("ProfileEvents track "+id, len(tracks), err)
		ms, err := s.ProfileMerges(ctx, id)
		put("ProfileMerges "+id, noIDs(ms), err)
		is, err := s.ProfileTraitIssues(ctx, id, 100)
		put("ProfileTraitIssues "+id, is, err)
	}
	graph, attached, complete, err := s.LoadIdentities(ctx, 1<<20)
	put("LoadIdentities complete", complete, err)
	for id, pid := range graph {
		k := id.Type + ":" + id.Value
		put("identity "+k, []any{pid, attached[id]}, nil)
		p, err := s.ProfileByIdentifier(ctx, id)
		if err == nil {
			put("ProfileByIdentifier "+k, p.ID, nil)
		} else {
			put("ProfileByIdentifier "+k, nil, err)
		}
	}
	refs, err := s.LoadRefused(ctx)
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.ID != b.ID {
			return a.ID.Type+"\x00"+a.ID.Value < b.ID.Type+"\x00"+b.ID.Value
		}
		return a.ProfileID < b.ProfileID
	})
	put("LoadRefused", refs, err)
	rs, err := s.LoadRetracted(ctx)
	sort.Strings(rs)
	put("LoadRetracted", rs, err)
	sp, err := s.LoadSplits(ctx)
	put("LoadSplits", sp, err)
	cp, err := s.Checkpoint(ctx, profile.CheckpointName)
	put("Checkpoint", cp, err)
	rm, err := s.RecentMerges(ctx, -1)
	put("RecentMerges", noIDs(rm), err)
	rf, err := s.RefusedMerges(ctx)
	put("RefusedMerges", noIDs(rf), err)
	mc, err := s.MergeCounts(ctx)
	put("MergeCounts", mc, err)
	n, err := s.CountProfiles(ctx)
	put("CountProfiles", n, err)
	ne, err := s.CountEvents(ctx)
	put("CountEvents", ne, err)
	bySrc, err := s.EventCountsBySource(ctx)
	put("EventCountsBySource", bySrc, err)
	var tracked []string
	err = s.TrackEvents(ctx, "Order Completed", func(pid string, e *portrait.Event) error {
		tracked = append(tracked, pid+" "+e.MessageID)
		return nil
	})
	put("TrackEvents", tracked, err)
	ti, err := s.TraitIssues(ctx, "", 1000)
	put("TraitIssues", ti, err)
	return out
}
