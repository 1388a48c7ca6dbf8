package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// Two API nodes over PostgreSQL: an erasure made through one makes both
// nodes' accounts forget the person, and the shared checkpoint with them.
// The node that did not erase learns of it from the suppression list it
// reloads (every 5 s), not from a restart: before, only the erasing node's
// model forgot, and the other kept the person in memory (and could save
// them into the shared checkpoint again). A contact who only identified
// themselves (forgotten directly) and a member whose group call made the
// account (a rebuild); a kept member stays on both.
func TestErasureReachesTheAccountsOfEveryNode(t *testing.T) {
	ctx := context.Background()
	a, b := twoNodes(t, pgtest.URL(t), 1500*time.Millisecond)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ev := func(msg, typ, user, group, traits string) *portrait.Event {
		return &portrait.Event{Type: typ, MessageID: msg, Source: "crm", UserID: user, GroupID: group, Traits: []byte(traits), Timestamp: at, ReceivedAt: at}
	}
	if _, err := a.DB.Append(ctx, []*portrait.Event{
		ev("m-1", portrait.EventIdentify, "u-contact-55", "", `{"email":"wang.contact@acme.example.cn","buying_role":"coach"}`),
		ev("m-2", portrait.EventGroup, "u-member-77", "acme-1", `{"name":"Acme Trading","domain":"acme.example.cn"}`),
		ev("m-3", portrait.EventGroup, "u-keep-1", "acme-1", `{"name":"Acme Trading"}`),
	}, nil); err != nil {
		t.Fatal(err)
	}
	holds := func(n *App, user string) bool {
		_, body, err := n.HTTP.Accounts.Model.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(body, []byte(user))
	}
	within(t, 20*time.Second, "both nodes' accounts hold the three people", func() bool {
		for _, n := range []*App{a, b} {
			for _, u := range []string{"u-contact-55", "u-member-77", "u-keep-1"} {
				if !holds(n, u) {
					return false
				}
			}
		}
		return true
	})
	for _, u := range []string{"u-contact-55", "u-member-77"} {
		id := portrait.Identifier{Type: portrait.IDUserID, Value: u}
		within(t, 20*time.Second, u+"'s profile is applied", func() bool {
			_, err := a.DB.ProfileByIdentifier(ctx, id)
			return err == nil
		})
		if _, err := a.HTTP.Erasure.EraseByIdentifier(ctx, id, "test-admin", "art. 17 request"); err != nil {
			t.Fatal(err)
		}
	}
	within(t, 30*time.Second, "both nodes' accounts forget the two people", func() bool {
		for _, n := range []*App{a, b} {
			if holds(n, "u-contact-55") || holds(n, "u-member-77") {
				return false
			}
		}
		return true
	})
	for name, n := range map[string]*App{"a": a, "b": b} {
		if !holds(n, "u-keep-1") {
			t.Errorf("node %s lost the kept member", name)
		}
	}
	_, saved, err := b.DB.(interface {
		AccountState(context.Context) (int64, []byte, error)
	}).AccountState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(saved, []byte("u-contact-55")) || bytes.Contains(saved, []byte("u-member-77")) {
		t.Error("the shared checkpoint still names an erased person")
	}
}
