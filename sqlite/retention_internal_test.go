package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// A retention pass the process dies in between the log's part and the
// state's part of is finished by the next start: the live profile's event
// list holds the carried-forward event and no expired one, as after a
// whole pass, and a late event then replays the profile with what expired.
func TestRetentionPassFinishedAfterACrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []*portrait.Event{
		{MessageID: "old", Type: portrait.EventIdentify, Source: "web", UserID: "u1", Traits: []byte(`{"name":"Ada","email":"ada@example.com"}`), Timestamp: t0, ReceivedAt: t0},
		{MessageID: "kept", Type: portrait.EventTrack, Source: "web", UserID: "u1", Name: "Viewed", Timestamp: t0.Add(48 * time.Hour), ReceivedAt: t0.Add(48 * time.Hour)},
	}
	if _, err := db.Append(ctx, events, nil); err != nil {
		t.Fatal(err)
	}
	newProc := func(db *DB) *profile.Processor {
		p := profile.NewProcessor(db, identity.DefaultRules().Compile())
		p.Now = func() time.Time { return t0.Add(72 * time.Hour) }
		last, err := db.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProc(db)
	crash := errors.New("killed")
	db.afterRetentionLog = func() error { return crash }
	scratch := func(ctx context.Context) (profile.ScratchStore, error) { return Open(ctx, t.TempDir()) }
	if _, err := p.Compact(ctx, db, t0.Add(24*time.Hour), scratch); !errors.Is(err, crash) {
		t.Fatalf("pass: %v, want the injected failure", err)
	}
	db.Close()

	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pending int
	if err := db.logR.QueryRowContext(ctx, `SELECT count(*) FROM retention_runs WHERE pending IS NOT NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Errorf("%d retention runs still pending after the start", pending)
	}
	p = newProc(db)
	var ids []string
	if err := db.AllProfiles(ctx, func(q *portrait.Profile) error { ids = append(ids, q.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("%d profiles, want 1", len(ids))
	}
	listed, _, err := db.ProfileEvents(ctx, ids[0], portrait.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range listed {
		types = append(types, e.Type)
	}
	if len(listed) != 2 || !contains(types, portrait.EventRetained) || contains(types, portrait.EventErased) {
		t.Fatalf("event list after the start: %v, want the carried-forward event and the kept one", types)
	}
	// A late event replays the profile from its event list: the name an
	// expired event gave stays.
	late := &portrait.Event{MessageID: "late", Type: portrait.EventTrack, Source: "web", UserID: "u1", Name: "Viewed", Timestamp: t0.Add(36 * time.Hour), ReceivedAt: t0.Add(72 * time.Hour)}
	if _, err := db.Append(ctx, []*portrait.Event{late}, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastSeq(ctx)
	if err := p.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	pr, err := db.Profile(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if pr.Traits["name"].Value != "Ada" {
		t.Fatalf("after a late event the profile's name is %v, want Ada (what expired is kept)", pr.Traits["name"].Value)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The accounts record of the latest events pass is found however many
// runs of other kinds were recorded after it: the hourly quarantine
// purges record one each, and looking among the latest 1,000 runs lost
// the accounts of a deployment whose events pass was six weeks old.
func TestCarriedAccountsFoundBehindManyRuns(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	before := t0.Add(24 * time.Hour)
	rec := []byte("the accounts record")
	body, err := json.Marshal(profile.Base{Accounts: rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(ctx, []*portrait.Event{{MessageID: profile.RetainedID(profile.AccountsID, before), Type: portrait.EventRetained,
		Source: portrait.SourceRetention, Properties: body, Timestamp: t0, ReceivedAt: t0}}, nil); err != nil {
		t.Fatal(err)
	}
	record := func(run portrait.RetentionRun) {
		tx, err := db.logW.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := insertRun(ctx, tx, &run); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	record(portrait.RetentionRun{Kind: "events", Before: before, At: before, Deleted: 1})
	got, err := db.CarriedAccounts(ctx)
	if err != nil || string(got) != string(rec) {
		t.Fatalf("right after the pass: %q, %v", got, err)
	}
	for i := 0; i < 1200; i++ {
		record(portrait.RetentionRun{Kind: "quarantine", Before: before, At: before.Add(time.Duration(i) * time.Hour), Deleted: 1})
	}
	got, err = db.CarriedAccounts(ctx)
	if err != nil || string(got) != string(rec) {
		t.Fatalf("after 1,200 quarantine runs: %q, %v; want the events pass's record", got, err)
	}
}
