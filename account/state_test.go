package account_test

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// digest is everything the API shows of the accounts, for comparing two
// models.
func digest(t *testing.T, m *account.Model) string {
	t.Helper()
	ids := m.RankOnly()
	sort.Strings(ids)
	out := map[string]any{"merges": m.Merges()}
	for _, id := range ids {
		v, _ := m.Get(id)
		p, _ := m.People(id)
		// Each key still finds its account (the model's key index).
		var found []string
		for _, k := range v.Keys {
			got, _ := m.Lookup(k.Type, k.Value)
			found = append(found, got)
		}
		out[id] = []any{v, p, found}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newService(db *sqlite.DB) *account.Service {
	return account.NewService(db, db, func() time.Time { return t0.Add(24 * time.Hour) })
}

// A restart resumes from the checkpoint: it reads only the events after
// it, applies only the edits after it, and comes out equal to a full
// replay; an undo after the restart reads the events back from the log
// and equals a full replay with the undo.
func TestCheckpointRestartAndUndo(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s seq
	add := func(evs ...*portrait.Event) {
		t.Helper()
		if _, err := db.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	add(
		s.ev("group", "u1", "g-a", "", t0, map[string]any{"name": "恒达医药", "industry": "C27", "employees": 600, "domain": "hengda.cn"}, nil),
		s.ev("group", "u2", "g-b", "", t0.Add(time.Hour), map[string]any{"uscc": "914403001922038216", "name": "恒达"}, nil),
		s.ev("identify", "u1", "", "", t0.Add(time.Hour), map[string]any{"buying_role": "EB", "level": "决策层", "email": "u1@hengda.cn"}, nil),
		s.ev("track", "u1", "g-a", "Sales Visit", t0.Add(2*time.Hour), nil, map[string]any{"account": "g-a"}),
		s.ev("identify", "u9", "", "", t0.Add(2*time.Hour), map[string]any{"name": "无关"}, nil),
		// Joins g-a and g-b: the merge undone below.
		s.ev("group", "u3", "g-a", "", t0.Add(3*time.Hour), map[string]any{"uscc": "914403001922038216"}, nil),
	)
	first := newService(db)
	if err := first.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if first.Read.Load() != 6 || first.Model.Len() != 1 {
		t.Fatalf("first load read %d events, %d accounts", first.Read.Load(), first.Model.Len())
	}
	id, _ := first.Model.Lookup(account.KeyGroup, "g-a")
	if err := first.Edit(ctx, &account.Edit{Kind: account.EditVerify, Account: id, Trait: "employees", Value: 650, By: "li"}); err != nil {
		t.Fatal(err)
	}
	if err := first.Save(ctx); err != nil {
		t.Fatal(err)
	}
	want := digest(t, first.Model)

	// Restart with nothing new: no event read, the same accounts.
	second := newService(db)
	if err := second.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n := second.Read.Load(); n != 0 {
		t.Fatalf("restart read %d events, want 0", n)
	}
	if got := digest(t, second.Model); got != want {
		t.Fatalf("restored accounts differ\n got %s\nwant %s", got, want)
	}

	// One more event: the next restart reads that one only, and equals a
	// full replay (no checkpoint).
	add(s.ev("track", "u1", "g-b", "Sales Call", t0.Add(4*time.Hour), nil, map[string]any{"account": "g-b"}))
	third := newService(db)
	if err := third.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n := third.Read.Load(); n != 1 {
		t.Fatalf("restart read %d events, want 1", n)
	}
	full := account.NewService(db, &noCheckpoint{db}, third.Now)
	if err := full.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if full.Read.Load() != 7 {
		t.Fatalf("full replay read %d", full.Read.Load())
	}
	if a, b := digest(t, third.Model), digest(t, full.Model); a != b {
		t.Fatalf("restart from checkpoint differs from a full replay\ncheckpoint %s\nfull       %s", a, b)
	}

	// Undo after the restart: the events come back from the log.
	ms := third.Model.Merges()
	if len(ms) != 1 {
		t.Fatalf("merges %+v", ms)
	}
	if err := third.Edit(ctx, &account.Edit{Kind: account.EditUnmerge, Account: ms[0].Survivor, Other: ms[0].Merged, By: "admin"}); err != nil {
		t.Fatal(err)
	}
	if third.Model.Len() != 2 {
		t.Fatalf("undo after restart left %d accounts", third.Model.Len())
	}
	v, _ := third.Model.Get(id)
	if v.Traits["employees"].Status != account.StatusVerified || v.Traits["employees"].Value != 650.0 {
		t.Fatalf("the edit before the undo was lost: %+v", v.Traits["employees"])
	}
	full2 := account.NewService(db, &noCheckpoint{db}, third.Now)
	if err := full2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, third.Model), digest(t, full2.Model); a != b {
		t.Fatalf("undo after restart differs from a full replay\nundo %s\nfull %s", a, b)
	}
	// And the checkpoint saved after the undo restores it.
	if err := third.Save(ctx); err != nil {
		t.Fatal(err)
	}
	fourth := newService(db)
	if err := fourth.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if fourth.Read.Load() != 0 || digest(t, fourth.Model) != digest(t, full2.Model) {
		t.Fatalf("restart after the undo: read %d, equal %v", fourth.Read.Load(), digest(t, fourth.Model) == digest(t, full2.Model))
	}
}

// noCheckpoint is the store without its checkpoint: a full replay.
type noCheckpoint struct{ *sqlite.DB }

func (noCheckpoint) AccountState(context.Context) (int64, []byte, error) { return 0, nil, nil }
func (noCheckpoint) SaveAccountState(context.Context, int64, []byte) error {
	return nil
}
