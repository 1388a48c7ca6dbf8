package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
)

// identify appends n identify events (profiles u-from … u-from+n-1), with
// traits, through a node's store.
func identify(t *testing.T, via *App, from, n int, traits map[string]any) {
	t.Helper()
	raw, err := json.Marshal(traits)
	if err != nil || traits == nil {
		raw = nil
	}
	var evs []*portrait.Event
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		evs = append(evs, &portrait.Event{Type: portrait.EventIdentify, MessageID: fmt.Sprintf("m-%d", i), Source: "web",
			UserID: fmt.Sprintf("u-%d", i), Traits: raw, Timestamp: at, ReceivedAt: at})
	}
	if _, err := via.DB.Append(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
}

// twoNodes starts two nodes over one PostgreSQL database, a first so
// that it holds the jobs lease.
func twoNodes(t *testing.T, url string, ttl time.Duration) (a, b *App) {
	t.Helper()
	a = allNode(t, url, "a", ttl, nil)
	within(t, 10*time.Second, "a holds the jobs lease", func() bool { return jobsHolder(t, a) == "a" })
	return a, allNode(t, url, "b", ttl, nil)
}

// everyoneHooked makes a segment of everyone and a webhook for every
// segment through a, and waits for b to know both.
func everyoneHooked(t *testing.T, a, b *App, recv *hookReceiver) (*segment.Status, *segment.Webhook) {
	t.Helper()
	ctx := context.Background()
	st, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "everyone", Expression: `true`})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := a.HTTP.Segments.Webhooks.Create(ctx, &segment.Webhook{URL: recv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b knows the segment and the webhook", func() bool {
		_, err := b.HTTP.Segments.Get(st.ID)
		return err == nil && len(b.HTTP.Segments.Webhooks.List()) == 1
	})
	return st, wh
}

// kinds counts the received events of one kind ("enter" or "exit").
func (r *hookReceiver) kinds(kind string) int {
	n := 0
	for k := range r.counts() {
		if strings.HasSuffix(k, "/"+kind) {
			n++
		}
	}
	return n
}

// onceEach fails the test for every event received more than once.
func (r *hookReceiver) onceEach(t *testing.T) {
	t.Helper()
	for k, n := range r.counts() {
		if n != 1 {
			t.Errorf("%s received %d times, want once", k, n)
		}
	}
}

// historyOnce checks that a segment's recorded history lists each
// profile's entry once, and returns how many rows it has.
func historyOnce(t *testing.T, a *App, seg string) int {
	t.Helper()
	evs, err := a.HTTP.Segments.History(context.Background(), seg, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.Profile+"/"+e.Kind]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("history lists %s %d times, want once", k, n)
		}
	}
	return len(evs)
}

// Two nodes on one PostgreSQL database, both evaluating every change:
// the history lists each entry once (before: once per node, 40 rows for
// 20 entries) and the webhook receives each once.
func TestSegmentHistoryOnceOverASharedStore(t *testing.T) {
	url := pgtest.URL(t)
	ttl := 1500 * time.Millisecond
	recv := newHookReceiver(t)
	a, b := twoNodes(t, url, ttl)
	st, _ := everyoneHooked(t, a, b, recv)
	identify(t, a, 0, 20, nil)
	within(t, 20*time.Second, "both nodes hold the 20 members", func() bool {
		sa, _ := a.HTTP.Segments.Get(st.ID)
		sb, _ := b.HTTP.Segments.Get(st.ID)
		return sa.Size == 20 && sb.Size == 20
	})
	within(t, 20*time.Second, "20 entries received", func() bool { return recv.kinds("enter") >= 20 })
	time.Sleep(2 * time.Second) // b's evaluation is recorded by now, and anything more would be a copy
	recv.onceEach(t)
	if n := historyOnce(t, b, st.ID); n != 20 {
		t.Errorf("history holds %d rows for 20 entries", n)
	}
}

// A segment built on another (a union) changes when its operand is
// redefined through a node that is not the jobs owner: its entries reach
// the webhook once. Before, the node that made the change recorded them
// and dropped them (it does not send), and the owner re-evaluated the
// union without sending it.
func TestSetOperationChangeReachesTheWebhook(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	ttl := 1500 * time.Millisecond
	recv := newHookReceiver(t)
	a, b := twoNodes(t, url, ttl)
	identify(t, a, 0, 10, map[string]any{"plan": "gold"})
	within(t, 20*time.Second, "both nodes index the 10 profiles", func() bool {
		return a.HTTP.Segments.Index.Len() == 10 && b.HTTP.Segments.Index.Len() == 10
	})
	base, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "silver", Expression: `traits.plan == "silver"`})
	if err != nil {
		t.Fatal(err)
	}
	top, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "platinum", Expression: `traits.plan == "platinum"`})
	if err != nil {
		t.Fatal(err)
	}
	union, err := a.HTTP.Segments.Create(ctx, &segment.Definition{Name: "silver or more", Union: []string{base.ID, top.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.HTTP.Segments.Webhooks.Create(ctx, &segment.Webhook{URL: recv.URL + "/hook", Segments: []string{union.ID}}); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "b knows the segments and the webhook", func() bool {
		_, err := b.HTTP.Segments.Get(union.ID)
		return err == nil && len(b.HTTP.Segments.Webhooks.List()) == 1
	})
	if _, err := b.HTTP.Segments.Update(ctx, base.ID, &segment.Definition{Name: "silver", Expression: `traits.plan in ["silver", "gold"]`}); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "a follows the new definition", func() bool {
		s, err := a.HTTP.Segments.Get(union.ID)
		return err == nil && s.Size == 10
	})
	within(t, 20*time.Second, "10 entries of the union received", func() bool { return recv.kinds("enter") >= 10 })
	time.Sleep(2 * time.Second)
	recv.onceEach(t)
	if n := historyOnce(t, a, union.ID); n != 10 {
		t.Errorf("the union's history holds %d rows for 10 entries", n)
	}
}

// A change evaluated while no node may send (the jobs lease taken in the
// store by a node that is gone, until it expires) is sent once a node
// holds the jobs again. Before, the owner's refused batch went to the
// dead letters and the other node dropped what it evaluated: never sent.
func TestChangeDuringAHandOverIsSentAfterIt(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	ttl := 1500 * time.Millisecond
	recv := newHookReceiver(t)
	a, b := twoNodes(t, url, ttl)
	st, wh := everyoneHooked(t, a, b, recv)
	identify(t, a, 0, 10, nil)
	within(t, 20*time.Second, "10 entries received", func() bool { return recv.kinds("enter") >= 10 })

	// No node may send for 8 s: the lease names a node that is gone.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE leases SET holder = 'gone', term = term + 1, expires = clock_timestamp() + interval '8 seconds' WHERE name = 'jobs'`); err != nil {
		t.Fatal(err)
	}
	identify(t, a, 10, 10, nil)
	within(t, 20*time.Second, "both nodes hold the 20 members", func() bool {
		sa, _ := a.HTTP.Segments.Get(st.ID)
		sb, _ := b.HTTP.Segments.Get(st.ID)
		return sa.Size == 20 && sb.Size == 20
	})
	if h := jobsHolder(t, a); h != "gone" {
		t.Fatalf("the change was evaluated after %q took the jobs over: the test proves nothing", h)
	}
	within(t, 20*time.Second, "a node holds the jobs again", func() bool { h := jobsHolder(t, a); return h == "a" || h == "b" })
	within(t, 20*time.Second, "20 entries received", func() bool { return recv.kinds("enter") >= 20 })
	time.Sleep(2 * time.Second)
	recv.onceEach(t)
	if n := recv.kinds("enter"); n != 20 {
		t.Errorf("%d entries received, want 20", n)
	}
	if dl, err := a.DB.DeadLetters(ctx, wh.ID, 10); err != nil || len(dl) != 0 {
		t.Errorf("dead letters: %d %v, want none (the batch is left to the next owner)", len(dl), err)
	}
	t.Logf("jobs now held by %s", jobsHolder(t, a))
}
