package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

func TestEventsPerMinuteAndSourceActivity(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	now := time.Date(2026, 12, 5, 10, 30, 20, 0, time.UTC)
	db.Now = func() time.Time { return now }
	var evs []*portrait.Event
	at := func(i int, src string, received time.Time) {
		e := event(fmt.Sprintf("m%04d", i))
		e.Source, e.ReceivedAt, e.Timestamp = src, received, received
		evs = append(evs, e)
	}
	n := 0
	// three days of history, one event an hour, in order of receipt
	for h := 72; h >= 2; h-- {
		at(n, "web", now.Add(-time.Duration(h)*time.Hour))
		n++
	}
	// the last hour: minute k holds k events
	for k := 1; k <= 5; k++ {
		for j := 0; j < k; j++ {
			at(n, "app", now.Truncate(time.Minute).Add(-time.Duration(k)*time.Minute).Add(time.Duration(j)*time.Second))
			n++
		}
	}
	// an import resumed now keeps the time it was first received, 3 hours ago
	for j := 0; j < 7; j++ {
		at(n, "crm", now.Add(-3*time.Hour))
		n++
	}
	rej := []*portrait.Rejected{{Source: "app", Index: 0, Reason: "bad", Raw: []byte("{}"), ReceivedAt: now}, {Source: "forms", Index: 0, Reason: "bad", Raw: []byte("{}"), ReceivedAt: now}}
	if _, err := db.Append(ctx, evs, rej); err != nil {
		t.Fatal(err)
	}
	got, err := db.EventsPerMinute(ctx, now.Add(-60*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("minutes %v", got)
	}
	for k := 1; k <= 5; k++ {
		m := now.Truncate(time.Minute).Add(-time.Duration(k) * time.Minute)
		if got[m] != int64(k) {
			t.Errorf("%s: %d events, want %d", m, got[m], k)
		}
	}
	if got, err := db.EventsPerMinute(ctx, now.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("the future: %v %v", got, err)
	}
	acts, err := db.SourceActivity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]portrait.SourceActivity{
		"web":   {Events: 71, LastEvent: now.Add(-2 * time.Hour)},
		"app":   {Events: 15, Rejected: 1, LastEvent: now.Truncate(time.Minute).Add(-time.Minute)},
		"crm":   {Events: 7, LastEvent: now.Add(-3 * time.Hour)},
		"forms": {Rejected: 1},
	}
	if len(acts) != len(want) {
		t.Fatalf("sources %+v", acts)
	}
	for _, a := range acts {
		w := want[a.Source]
		if a.Events != w.Events || a.Rejected != w.Rejected || !a.LastEvent.Equal(w.LastEvent) {
			t.Errorf("%s: %+v, want %+v", a.Source, a, w)
		}
	}
	// later appends add to the totals read before
	more := event("later-1")
	more.Source, more.ReceivedAt = "web", now.Add(time.Minute)
	if _, err := db.Append(ctx, []*portrait.Event{more}, []*portrait.Rejected{{Source: "web", Reason: "bad", Raw: []byte("{}"), ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	acts, err = db.SourceActivity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Source == "web" && (a.Events != 72 || a.Rejected != 1 || !a.LastEvent.Equal(now.Add(time.Minute))) {
			t.Errorf("web after more: %+v", a)
		}
		if a.Source == "app" && (a.Events != 15 || a.Rejected != 1) {
			t.Errorf("app after more: %+v", a)
		}
	}
	// per-minute counts kept across refreshes: the later event is counted
	// once more in its minute, the earlier ones stay
	got, err = db.EventsPerMinute(ctx, now.Add(-60*time.Minute))
	if err != nil || len(got) != 6 || got[now.Add(time.Minute).Truncate(time.Minute)] != 1 || got[now.Truncate(time.Minute).Add(-5*time.Minute)] != 5 {
		t.Errorf("after more: %v %v", got, err)
	}
	// an empty log
	db2 := open(t, t.TempDir())
	if got, err := db2.EventsPerMinute(ctx, now); err != nil || len(got) != 0 {
		t.Errorf("empty log: %v %v", got, err)
	}
	if m, err := db2.RecentMerges(ctx, 10); err != nil || len(m) != 0 {
		t.Errorf("no merges: %v %v", m, err)
	}
}
