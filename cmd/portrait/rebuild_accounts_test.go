package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/sqlite"
)

// `portrait rebuild` rebuilds the accounts too: the state a start restores
// from the checkpoint (with an edit and an undone merge in it, and events
// logged after it) equals a full replay, and the rebuild saves a fresh
// checkpoint.
func TestRebuildAccountsFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	n := 0
	ev := func(typ, user, group string, traits map[string]any) *portrait.Event {
		n++
		e := &portrait.Event{MessageID: fmt.Sprintf("acc-%d", n), Type: typ, Source: "crm", UserID: user, GroupID: group, Timestamp: t0.Add(time.Duration(n) * time.Minute)}
		e.Traits, _ = json.Marshal(traits)
		return e
	}
	if _, err := db.Append(ctx, []*portrait.Event{
		ev("group", "u1", "g-a", map[string]any{"name": "恒达医药", "industry": "C27"}),
		ev("group", "u2", "g-b", map[string]any{"uscc": "914403001922038216"}),
		ev("group", "u3", "g-a", map[string]any{"uscc": "914403001922038216"}),
		ev("identify", "u1", "", map[string]any{"buying_role": "EB", "level": "决策层"}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	svc := account.NewService(db, db, time.Now)
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ms := svc.Model.Merges()
	if len(ms) != 1 {
		t.Fatalf("merges %+v", ms)
	}
	if err := svc.Edit(ctx, &account.Edit{Kind: account.EditUnmerge, Account: ms[0].Survivor, Other: ms[0].Merged, By: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(ctx, []*portrait.Event{ev("group", "u4", "g-c", map[string]any{"name": "新公司", "domain": "xin.cn"})}, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"rebuild", "--data", dir, "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	var rb rebuildResult
	if err := json.Unmarshal(stdout.Bytes(), &rb); err != nil {
		t.Fatal(err, stdout.String())
	}
	// (The profiles were never processed here: only the accounts compare.)
	if !rb.AccountsIdentical || rb.Accounts != 3 || rb.AccountsBefore == "" {
		t.Fatalf("rebuild: %+v", rb)
	}
	db, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seq, body, err := db.AccountState(ctx); err != nil || body == nil || seq != 5 {
		t.Fatalf("checkpoint after the rebuild: seq %d, %d bytes, %v", seq, len(body), err)
	}
}
