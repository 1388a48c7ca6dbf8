package storetest

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

// RetainedIsResealed: a carried-forward event ($retained, written by event
// retention) holds a profile document as one opaque member, in clear when
// it was written before a data key was configured. The trait names inside
// it cannot be seen from the bytes, so a level raised to secret (whatever
// the name) counts it in clear and its background pass seals it, as it
// does the documents kept whole; the event reads back as written.
func RetainedIsResealed(t *testing.T, h SealHarness) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	// What a carried-forward profile looks like to the bytes: an opaque
	// base64 string (the profile/doc encoding) holding the value.
	doc := base64.StdEncoding.EncodeToString([]byte("\x01doc\x00bonus\x00" + SealSalary + "\x00retained-person"))
	ev := &portrait.Event{MessageID: "ret-1", Type: portrait.EventRetained, Source: portrait.EventRetained, UserID: "u-r",
		Timestamp: at, ReceivedAt: at, Properties: []byte(`{"profile":"` + doc + `"}`)}
	e := openSealEnv(t, h, &datakey.Sealer{})
	if _, err := e.db.Append(ctx, []*portrait.Event{ev}, nil); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	h.Scan(t, "before a key", doc) // the proof that the scan sees it

	levels := &access.Classifier{}
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, KeyLines(t, "k1")...), Levels: levels})
	db, ok := e.db.(RaiseStore)
	if !ok {
		t.Fatalf("%T does not reseal raised levels", e.db)
	}
	n, err := db.InClear(ctx, access.KindTrait, "bonus")
	if err != nil || n["events"] != 1 {
		t.Errorf("the carried-forward event in clear is not counted: %v %v", n, err)
	}
	levels.Set(access.KindTrait, "bonus", access.Secret)
	j := storeseal.Job{Kind: access.KindTrait, Name: "bonus", Phase: storeseal.PhaseEvents}
	if err := db.ScheduleReseal(ctx, j.Kind, j.Name); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		next, done, err := db.ResealStep(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if i > 100 {
			t.Fatalf("the pass does not end: %+v", next)
		}
		j = next
	}
	if n, err := db.InClear(ctx, access.KindTrait, "bonus"); err != nil || n["events"] != 0 {
		t.Errorf("after the pass: %v %v", n, err)
	}
	got, err := e.db.ReadLog(ctx, 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Properties) != `{"profile":"`+doc+`"}` {
		t.Fatalf("the carried-forward event reads back as %+v %v", got, err)
	}
	if h.Compact != nil {
		h.Compact(t, e.db)
	} else if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	h.Scan(t, "after the pass", "$sealed:k1:", doc)
}
