package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
)

// copier is an enricher that keeps, in its private state, the last
// id_number property it saw: what a computed trait's accumulator does with
// any value (the traits, journey and needs enrichers keep copies of
// property values the same way).
type copier struct{}

func (copier) Event(p *portrait.Profile, e *portrait.Event, props map[string]any) {
	if v, ok := props["id_number"].(string); ok {
		if p.State == nil {
			p.State = map[string]json.RawMessage{}
		}
		b, _ := json.Marshal(map[string]string{"last": v})
		p.State["copier"] = b
	}
}
func (copier) Merge(keep, gone *portrait.Profile) {
	if keep.State["copier"] == nil && gone.State["copier"] != nil {
		if keep.State == nil {
			keep.State = map[string]json.RawMessage{}
		}
		keep.State["copier"] = gone.State["copier"]
	}
}
func (copier) Finish(*portrait.Profile, time.Time) {}

// TestSealedBlobsAtRest: what the store keeps whole rather than field by
// field (a quarantined body, an import's example values, a dead letter, the
// accounts' checkpoint and journal, an enricher's private state) is sealed
// whole when a data key is configured: the raw scan of every file finds no
// ID number, every read gives the document back as written, a rotation
// reseals them (those written before the key included), a missing key is
// an error naming it, and erasure still finds the person in them.
func TestSealedBlobsAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1, k2 := keyLine(t, "k1"), keyLine(t, "k2")
	levels := &access.Classifier{}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	// Before any key: one quarantined body in clear, sealed later by the
	// rotation.
	e := openSealed(t, dir, &datakey.Sealer{})
	early := []byte(`{"userId":"u-1","traits":{"id_card":"` + idNumber + `"},"type":"bogus-early"}`)
	if _, err := e.db.Append(ctx, nil, []*portrait.Rejected{{Source: "crm", Reason: "unknown type", Raw: early, ReceivedAt: at}}); err != nil {
		t.Fatal(err)
	}
	e.db.Close()

	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k1), Levels: levels})
	defer func() { e.db.Close() }()
	e.proc.Enrichers = []profile.Enricher{copier{}}

	raw := []byte(`{"userId":"u-1","traits":{"id_card":"` + idNumber + `"},"type":"bogus"}`)
	summary := []byte(`{"id":"imp1","state":"done","issues":[{"column":"id_card","row":3,"examples":["` + idNumber + `"]}]}`)
	letter := json.RawMessage(`{"profile_id":"p1","traits":{"id_card":"` + idNumber + `"}}`)
	checkpoint := []byte(`{"accounts":{"a1":{"traits":{"id_card":"` + idNumber + `"}}}}`)
	edit := &account.Edit{Kind: "set_trait", Account: "a1", Trait: "id_card", Value: idNumber, By: "admin", At: at}

	if _, err := e.db.Append(ctx, nil, []*portrait.Rejected{{Source: "crm", Reason: "unknown type", Raw: raw, ReceivedAt: at}}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveImport(ctx, "imp1", "crm", "done", summary); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveDeadLetter(ctx, &segment.DeadLetter{Webhook: "wh1", Body: letter, Error: "the webhook answered 500", Attempts: 3, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveAccountState(ctx, 7, checkpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.AppendAccountEdit(ctx, edit); err != nil {
		t.Fatal(err)
	}
	e.send(t,
		ev("m1", portrait.EventIdentify, "u-1", "", 0, `{"name":"Wang Blob","id_card":"`+idNumber+`"}`, ""),
		ev("m2", portrait.EventTrack, "u-1", "", 1, "", `{"revenue":10,"id_number":"`+idNumber+`"}`),
	)
	e.catchUp(t)

	check := func(when string) {
		t.Helper()
		q, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(q) != 2 || !bytes.Equal(q[0].Raw, early) || !bytes.Equal(q[1].Raw, raw) {
			t.Errorf("%s: quarantine %d records", when, len(q))
		}
		if s, err := e.db.ImportSummary(ctx, "imp1"); err != nil || !bytes.Equal(s, summary) {
			t.Errorf("%s: import summary %s %v", when, s, err)
		}
		if ss, err := e.db.ImportSummaries(ctx); err != nil || len(ss) != 1 || !bytes.Equal(ss[0], summary) {
			t.Errorf("%s: import summaries %v", when, err)
		}
		if pg, _, err := e.db.ImportPage(ctx, "", 10); err != nil || len(pg) != 1 || !bytes.Equal(pg[0], summary) {
			t.Errorf("%s: import page %v", when, err)
		}
		if dl, err := e.db.DeadLetters(ctx, "wh1", 10); err != nil || len(dl) != 1 || !bytes.Equal(dl[0].Body, letter) {
			t.Errorf("%s: dead letters %v", when, err)
		}
		if seq, b, err := e.db.AccountState(ctx); err != nil || seq != 7 || !bytes.Equal(b, checkpoint) {
			t.Errorf("%s: accounts checkpoint %d %s %v", when, seq, b, err)
		}
		if eds, err := e.db.AccountEdits(ctx); err != nil || len(eds) != 1 || eds[0].Value != idNumber {
			t.Errorf("%s: account edits %v", when, err)
		}
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.State["copier"]); got != `{"last":"`+idNumber+`"}` {
			t.Errorf("%s: enricher state %q", when, got)
		}
	}
	check("live")
	e.db.Close()
	// The early quarantined body is still in clear: only the ID number's
	// other copies are checked now.
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k1), Levels: levels})
	check("reopened")

	// Rotation: everything under k2, the early body sealed at last.
	e.db.Close()
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k1, k2), Levels: levels})
	n, err := e.db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Quarantined != 2 || n.ImportSummaries != 1 || n.DeadLetters != 1 || n.AccountEdits != 1 || n.AccountState != 1 || n.Profiles != 1 {
		t.Errorf("resealed %+v", n)
	}
	if n, err := e.db.Reseal(ctx); err != nil || n.Quarantined+n.ImportSummaries+n.DeadLetters+n.AccountEdits+n.AccountState != 0 {
		t.Errorf("a second rotation to the same key rewrote %+v %v", n, err)
	}
	e.db.Close()
	scanFiles(t, dir, "rotated", "Wang Blob", idNumber, "$sealed:k1:", "bogus", "examples")
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k2), Levels: levels})
	check("rotated")
	e.db.Close()

	// Without the key: errors naming it.
	e = openSealed(t, dir, &datakey.Sealer{})
	if _, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{}); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
		t.Errorf("the quarantine read without its key: %v", err)
	}
	if _, _, err := e.db.AccountState(ctx); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
		t.Errorf("the checkpoint read without its key: %v", err)
	}
	e.db.Close()

	// Erasure opens the sealed blobs to find the person: the quarantined
	// bodies and the dead letter go, the import summary stays without the
	// value.
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k2), Levels: levels})
	e.proc.Enrichers = []profile.Enricher{copier{}}
	e.catchUp(t)
	svc := &erasure.Service{Proc: e.proc, Store: e.db, Suppressor: e.sup, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
	if err := e.sup.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := svc.EraseByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-1"}, "test", "request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["quarantined"] != 2 || rc.Removed["dead_letters"] != 1 || rc.Removed["import_summaries"] != 1 {
		t.Errorf("receipt %+v", rc.Removed)
	}
	if s, err := e.db.ImportSummary(ctx, "imp1"); err != nil || bytes.Contains(s, []byte(idNumber)) || !bytes.Contains(s, []byte(`"[erased]"`)) {
		t.Errorf("the import summary after erasure: %s %v", s, err)
	}
	if q, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{}); err != nil || len(q) != 0 {
		t.Errorf("quarantine after erasure: %d %v", len(q), err)
	}
}
