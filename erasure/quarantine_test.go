package erasure_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
)

// The probe: a flood of oversize bodies that fail validation. Each is cut
// to the record cap, the source stops at its budget with a counter, another
// source still quarantines, and retention deletes what is too old.
func TestQuarantineCapAndRetention(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	q := &erasure.QuarantineCap{EventLog: e.db, Store: e.db, MaxBytesPerSource: 4 << 20, MaxRecordBytes: 64 << 10}
	if err := q.Load(ctx); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	now := t0
	for i := range 200 {
		rej := []*portrait.Rejected{{Source: "evil", Index: i, Reason: "not JSON", Raw: big, ReceivedAt: now}}
		if _, err := q.Append(ctx, nil, rej); err != nil {
			t.Fatal(err)
		}
	}
	used, err := e.db.QuarantineBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if used["evil"] > 4<<20 || used["evil"] < 3<<20 {
		t.Errorf("the flooding source holds %d bytes, cap 4 MiB", used["evil"])
	}
	if want := int64(200 - (4<<20)/(64<<10)); q.Dropped() != want {
		t.Errorf("dropped %d, want %d", q.Dropped(), want)
	}
	list, _ := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{Source: "evil", Limit: 1})
	if len(list) != 1 || len(list[0].Raw) != 64<<10 || !strings.Contains(list[0].Reason, "kept in its first 65536") {
		t.Errorf("an oversize body is not cut with a note: %d %q", len(list[0].Raw), list[0].Reason)
	}
	// Another source is not pushed out.
	q.Append(ctx, nil, []*portrait.Rejected{{Source: "web", Reason: "bad", Raw: []byte(`{"x":1}`), ReceivedAt: now.Add(48 * time.Hour)}})
	if used, _ := e.db.QuarantineBytes(ctx); used["web"] == 0 {
		t.Error("a well-behaved source lost its quarantine to the flood")
	}

	r := &erasure.Retention{Store: e.db, Cap: q, QuarantineAge: 24 * time.Hour, Every: time.Hour, Now: func() time.Time { return now.Add(50 * time.Hour) }, Log: slog.Default()}
	n, err := r.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64((4<<20)/(64<<10)) {
		t.Errorf("retention deleted %d records", n)
	}
	used, _ = e.db.QuarantineBytes(ctx)
	if used["evil"] != 0 || used["web"] == 0 {
		t.Errorf("after retention: %v", used)
	}
	// The budget is free again.
	q.Append(ctx, nil, []*portrait.Rejected{{Source: "evil", Reason: "bad", Raw: []byte("{"), ReceivedAt: now}})
	if used, _ := e.db.QuarantineBytes(ctx); used["evil"] != 1 {
		t.Errorf("after retention the source cannot quarantine again: %v", used)
	}
}
