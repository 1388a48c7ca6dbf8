package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// Accounts made by expired group events survive event retention: the pass
// carries them forward in the log, so `portrait rebuild` and an account
// unmerge (both re-read the log) keep each account, its traits and
// members exactly as a model that saw every event. Three passes on one
// store: one that expires nothing the accounts read (no record), one that
// expires no group event but a member's e-mail (the null case for
// accounts: they stay as they are), one that expires the group events.
func TestEventRetentionKeepsAccounts(t *testing.T) {
	dir := t.TempDir()
	testRetentionKeepsAccounts(t, Config{DataDir: dir, LogLevel: "error"}, []string{"--data", dir})
}

func TestEventRetentionKeepsAccountsOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	testRetentionKeepsAccounts(t, Config{Store: url, DataDir: t.TempDir(), LogLevel: "error"}, []string{"--store", url})
}

func testRetentionKeepsAccounts(t *testing.T, cfg Config, storeArgs []string) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	day := 24 * time.Hour
	n := 0
	ev := func(age time.Duration, typ, user, group string, traits map[string]any) *portrait.Event {
		n++
		e := &portrait.Event{MessageID: fmt.Sprintf("acct-ret-%03d", n), Type: typ, Source: "crm", UserID: user, GroupID: group, Timestamp: now.Add(-age)}
		if typ == portrait.EventTrack {
			e.Name = "Page Viewed"
		}
		e.Traits, _ = json.Marshal(traits)
		return e
	}
	cut0, cut1, cut2 := now.Add(-1000*day), now.Add(-800*day), now.Add(-365*day)
	evs := []*portrait.Event{
		ev(1100*day, portrait.EventTrack, "u-page", "", nil), // pass 0: nothing for the accounts
		ev(900*day, portrait.EventIdentify, "u-mail", "", map[string]any{"email": "mail@xin.cn"}),
		// Pass 2: 旧公司 made by group events only, with a buying role
		// and a member linked by e-mail domain; 混合 named then, joined
		// by a second member since.
		ev(500*day, portrait.EventGroup, "u-old1", "g-old", map[string]any{"name": "旧公司", "industry": "C27", "domain": "jiu.cn"}),
		ev(480*day, portrait.EventGroup, "u-old2", "g-old", map[string]any{"employees": 120}),
		ev(470*day, portrait.EventIdentify, "u-old2", "", map[string]any{"buying_role": "EB", "level": "决策层"}),
		ev(460*day, portrait.EventIdentify, "u-old3", "", map[string]any{"email": "li@jiu.cn"}),
		ev(450*day, portrait.EventGroup, "u-mix1", "g-mix", map[string]any{"name": "混合"}),
		// Pass 2 too: two accounts merged by a shared USCC, and an
		// opportunity known by its event's id; neither may name the
		// expired message once it is gone.
		ev(440*day, portrait.EventGroup, "u-o1", "g-o1", map[string]any{"name": "丙", "uscc": "91110000600037341L"}),
		ev(430*day, portrait.EventGroup, "u-o2", "g-o2", map[string]any{"name": "丁"}),
		ev(420*day, portrait.EventGroup, "u-o2", "g-o2", map[string]any{"uscc": "91110000600037341L"}),
		{MessageID: "acct-ret-opp", Type: portrait.EventTrack, Name: "Opportunity Created", Source: "crm", UserID: "u-old1", Timestamp: now.Add(-410 * day),
			Properties: json.RawMessage(`{"amount":50000}`)},
		// Kept: 新公司 (whose domain links u-mail), a member of 混合,
		// and two accounts merged by a shared USCC, the merge undone.
		ev(30*day, portrait.EventGroup, "u-new", "g-new", map[string]any{"name": "新公司", "domain": "xin.cn"}),
		ev(20*day, portrait.EventGroup, "u-mix2", "g-mix", nil),
		ev(10*day, portrait.EventGroup, "u-m1", "g-m1", map[string]any{"name": "甲"}),
		ev(5*day, portrait.EventGroup, "u-m2", "g-m2", map[string]any{"name": "乙", "uscc": "914403001922038216"}),
		ev(2*day, portrait.EventGroup, "u-m1", "g-m1", map[string]any{"uscc": "914403001922038216"}),
	}
	// The accounts as a model that saw every event makes them, with the
	// merge undone (an unmerge replays everything).
	want := account.NewModel(clock)
	for _, e := range evs {
		want.Apply(e)
	}
	expired := map[string]bool{}
	for _, e := range evs {
		if e.Timestamp.Before(cut2) {
			expired[e.MessageID] = true
		}
	}
	// digest is Model.Digest but for the names of expired messages (a
	// pass renames them; the model that saw every event does not).
	digest := func(m *account.Model) string {
		t.Helper()
		ids := m.RankOnly()
		sort.Strings(ids)
		var out []any
		for _, mg := range m.Merges() {
			if expired[mg.MessageID] || strings.HasPrefix(mg.MessageID, "~expired:") {
				mg.MessageID = "~expired"
			}
			out = append(out, mg)
		}
		for _, id := range ids {
			v, _ := m.Get(id)
			for i, op := range v.Opportunities {
				if expired[op.ID] || strings.HasPrefix(op.ID, "~expired:") {
					c := *op
					c.ID = "~expired"
					v.Opportunities[i] = &c
				}
			}
			p, _ := m.People(id)
			var owners []string
			for _, k := range v.Keys {
				o, _ := m.Lookup(k.Type, k.Value)
				owners = append(owners, o)
			}
			out = append(out, v, p, owners)
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	named := func(where string, b []byte) {
		t.Helper()
		for id := range expired {
			if bytes.Contains(b, []byte(id)) {
				t.Errorf("%s names the expired message %s", where, id)
			}
		}
	}
	open := func() (*App, *account.Service) {
		t.Helper()
		a, err := OpenApp(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		svc := a.HTTP.Accounts
		svc.Model.Now = clock
		if err := svc.Load(ctx); err != nil {
			t.Fatal(err)
		}
		return a, svc
	}
	rebuild := func(pass string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"rebuild", "--json"}, storeArgs...), &out, &errb); err != nil {
			t.Fatal(err, errb.String())
		}
		var rb rebuildResult
		if err := json.Unmarshal(out.Bytes(), &rb); err != nil {
			t.Fatal(err, out.String())
		}
		if !rb.AccountsIdentical || rb.Accounts != want.Len() {
			t.Fatalf("%s: rebuild: %d accounts (want %d), identical %v", pass, rb.Accounts, want.Len(), rb.AccountsIdentical)
		}
	}

	a, svc := open()
	if _, err := a.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := a.DB.LastSeq(ctx)
	if err := a.Proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got, w := digest(svc.Model), digest(want); got != w {
		t.Fatal("the live accounts differ from the model's before any pass")
	}
	ms := svc.Model.Merges()
	if len(ms) != 2 || ms[1].MessageID != evs[len(evs)-1].MessageID {
		t.Fatalf("merges: %+v", ms)
	}
	unmerge := &account.Edit{Kind: account.EditUnmerge, Account: ms[1].Survivor, Other: ms[1].Merged, By: "admin"}

	for i, cut := range []time.Time{cut0, cut1, cut2} {
		pass := fmt.Sprintf("pass %d", i)
		if i > 0 {
			a, svc = open()
		}
		run, err := a.expireEvents(ctx, cut)
		if err != nil || run.Deleted == 0 {
			t.Fatalf("%s: %+v %v", pass, run, err)
		}
		if _, err := svc.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if got, w := digest(svc.Model), digest(want); got != w {
			t.Fatalf("%s: the live accounts changed", pass)
		}
		rec, err := a.DB.EventByMessageID(ctx, profile.RetainedID(profile.AccountsID, cut))
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Save(ctx); err != nil {
			t.Fatal(err)
		}
		a.Close()
		rebuild(pass)
		if (rec != nil) != (i > 0) {
			t.Fatalf("%s: accounts record %v (one only when an account event expired or a record did)", pass, rec)
		}
		if i == 2 {
			a, svc = open()
			body, err := a.DB.(account.Carried).CarriedAccounts(ctx)
			if err != nil || body == nil {
				t.Fatalf("the accounts record: %d bytes, %v", len(body), err)
			}
			named("the accounts record", body)
			if err := svc.Save(ctx); err != nil {
				t.Fatal(err)
			}
			_, cp, err := a.DB.AccountState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			named("the accounts checkpoint", cp)
			a.Close()
		}
	}

	// An unmerge re-reads the log: it keeps what expired.
	a, svc = open()
	defer a.Close()
	if got, w := digest(svc.Model), digest(want); got != w {
		t.Fatal("the accounts after the rebuilds differ")
	}
	if err := svc.Edit(ctx, unmerge); err != nil {
		t.Fatal(err)
	}
	w := *unmerge
	if err := want.ApplyEdit(&w); err != nil {
		t.Fatal(err)
	}
	if got, w := digest(svc.Model), digest(want); got != w {
		old, _ := svc.Model.Lookup(account.KeyGroup, "g-old")
		v, _ := svc.Model.Get(old)
		t.Fatalf("the accounts after an unmerge differ from a model that saw every event; 旧公司: %+v", v)
	}
	for _, c := range []struct {
		group, name string
		people      int
	}{{"g-old", "旧公司", 3}, {"g-mix", "混合", 2}, {"g-new", "新公司", 2}, {"g-m1", "甲", 1}, {"g-m2", "乙", 1}} {
		id, ok := svc.Model.Lookup(account.KeyGroup, c.group)
		v, _ := svc.Model.Get(id)
		if !ok || v == nil || v.Name != c.name || v.People != c.people {
			t.Errorf("%s after the unmerge: %+v", c.group, v)
		}
	}
}
