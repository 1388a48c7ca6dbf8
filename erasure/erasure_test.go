package erasure_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/search"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/tracking"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	dir  string
	db   *sqlite.DB
	proc *profile.Processor
	sup  *erasure.Suppressor
	svc  *erasure.Service
	ix   *search.Index
}

func newProc(db *sqlite.DB) *profile.Processor {
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	p := profile.NewProcessor(db, rules)
	p.Linger, p.BusyLinger = 0, 0
	p.Now = func() time.Time { return t0.Add(72 * time.Hour) }
	return p
}

func open(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{dir: dir, db: db, proc: newProc(db), ix: search.NewIndex(clean.Identifier)}
	e.proc.OnChange = e.ix.OnChange
	e.sup = &erasure.Suppressor{EventLog: db, Store: db, IdentifiersOf: e.proc.Identifiers}
	if err := e.sup.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc = &erasure.Service{Proc: e.proc, Store: db, Suppressor: e.sup, Now: func() time.Time { return t0.Add(48 * time.Hour) }}
	return e
}

func event(msg, typ, user, anon string, at time.Duration, traits string) *portrait.Event {
	e := &portrait.Event{MessageID: msg, Type: typ, Source: "web", UserID: user, AnonymousID: anon, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
	if traits != "" {
		e.Traits = json.RawMessage(traits)
	}
	if typ == portrait.EventTrack {
		e.Name = "Order Completed"
		// A free-text value of the person's own: erased with the events.
		note := "gift for " + user
		if user == "u-erase-7781" {
			note = "gift for Zhang Erasable"
		}
		e.Properties, _ = json.Marshal(map[string]any{"revenue": 88, "note": note})
	}
	return e
}

func (e *env) send(t *testing.T, evs []*portrait.Event, rej []*portrait.Rejected) portrait.AppendResult {
	t.Helper()
	res, err := e.sup.Append(context.Background(), evs, rej)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) catchUp(t *testing.T) {
	t.Helper()
	last, err := e.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// profiles returns every profile as JSON, by id.
func profiles(t *testing.T, db *sqlite.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		b, _ := json.Marshal(p)
		out[p.ID] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The person to erase, in every form the test looks for afterwards.
var secrets = []string{
	"u-erase-7781", "anon-erase-4410", "zhang.erasable@example.com", "Zhang.Erasable@Example.com",
	"13800138000", "Zhang Erasable", "Hangzhou Xihu Erasable Road 9", "Erasablecity Qq",
}

// TestEraseLeavesNoTrace erases one person of two and then reads every
// file of the store as raw bytes (after a checkpoint, and again after
// VACUUM): none of the person's identifiers or values remains; the other
// person is untouched; a rebuild from the log gives exactly the live state;
// later events for the person are dropped and counted.
func TestEraseLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	evs := []*portrait.Event{
		event("m-a1", portrait.EventIdentify, "", "anon-erase-4410", 0, `{"email":"Zhang.Erasable@Example.com","phone":"138 0013 8000","name":"Zhang Erasable"}`),
		event("m-a2", portrait.EventIdentify, "u-erase-7781", "anon-erase-4410", time.Minute, `{"address":"Hangzhou Xihu Erasable Road 9"}`),
		event("m-a3", portrait.EventTrack, "u-erase-7781", "", 2*time.Minute, ""),
		event("m-b1", portrait.EventIdentify, "u-keep-1", "", 3*time.Minute, `{"email":"li.kept@example.com","name":"Li Kept"}`),
		event("m-b2", portrait.EventTrack, "u-keep-1", "", 4*time.Minute, ""),
	}
	// A rejected body that names the person, and one that does not.
	rej := []*portrait.Rejected{
		{Source: "web", Index: 0, Reason: "bad timestamp", Raw: []byte(`{"userId":"u-erase-7781","timestamp":"yesterday"}`), ReceivedAt: t0},
		{Source: "web", Index: 1, Reason: "bad timestamp", Raw: []byte(`{"userId":"u-keep-1","timestamp":"yesterday"}`), ReceivedAt: t0},
	}
	e.send(t, evs, rej)
	// An import summary shows a refused value of the person as an example.
	// A refused value that is no identifier (a city) is found by its row's
	// event (importer.Example.MessageID).
	if err := e.db.SaveImport(ctx, "imp-1", "crm", "done", []byte(`{"examples":[{"row":3,"field":"email","value":"zhang.erasable@example.com","reason":"duplicate","key":"dup"},{"row":4,"value":"li.kept@example.com","reason":"duplicate","key":"dup"},`+
		`{"row":5,"field":"trait:city","value":"Erasablecity Qq","reason":"city: not a known city","key":"city","message_id":"m-a3"},{"row":6,"field":"trait:city","value":"Keptcity Qq","reason":"city: not a known city","key":"city","message_id":"m-b1"}]}`)); err != nil {
		t.Fatal(err)
	}
	e.catchUp(t)
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	if hits := e.ix.Search("Zhang Erasable", 5); len(hits) == 0 {
		t.Fatal("the search index does not know the person before erasure")
	}
	rc, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["events"] != 3 || rc.Removed["quarantined"] != 1 || rc.ProfileID != victim.ID || rc.Hash == "" || len(rc.Suppressed) < 3 {
		t.Errorf("receipt: %+v", rc)
	}
	if _, err := e.db.Profile(ctx, victim.ID); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the profile is still readable: %v", err)
	}
	if hits := e.ix.Search("Zhang Erasable", 5); len(hits) != 0 {
		t.Errorf("the search index still finds the person: %+v", hits)
	}
	kept, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-keep-1"})
	if err != nil || kept.Traits["name"].Value != "Li Kept" || kept.EventCount != 2 {
		t.Fatalf("the other person was harmed: %+v %v", kept, err)
	}
	if sum, _ := e.db.ImportSummary(ctx, "imp-1"); !json.Valid(sum) || !bytes.Contains(sum, []byte("li.kept@example.com")) || !bytes.Contains(sum, []byte(`"[erased]"`)) ||
		bytes.Contains(sum, []byte("Erasablecity")) || !bytes.Contains(sum, []byte("Keptcity Qq")) || rc.Removed["import_examples"] != 1 {
		t.Errorf("import summary after erasure: %s", sum)
	}
	receipts, err := e.svc.Receipts(ctx, 10)
	if err != nil || len(receipts) != 1 || receipts[0].Hash != rc.Hash {
		t.Errorf("the receipt is not kept: %+v %v", receipts, err)
	}

	// Suppression: the person's SDK keeps sending; nothing is logged.
	res := e.send(t, []*portrait.Event{event("m-a4", portrait.EventTrack, "u-erase-7781", "", time.Hour, "")}, nil)
	if res.Suppressed != 1 || res.Accepted != 0 {
		t.Errorf("a suppressed identifier's event was not dropped: %+v", res)
	}
	res = e.send(t, []*portrait.Event{event("m-a5", portrait.EventIdentify, "", "new-device", time.Hour, `{"email":"zhang.erasable@example.com"}`)}, nil)
	if res.Suppressed != 1 {
		t.Errorf("a suppressed email's event was not dropped: %+v", res)
	}
	e.send(t, []*portrait.Event{event("m-b3", portrait.EventTrack, "u-keep-1", "", time.Hour, "")}, nil)
	e.catchUp(t)
	sups, _ := e.svc.Suppressions(ctx)
	var dropped int64
	for _, s := range sups {
		dropped += s.Dropped
	}
	if dropped != 2 || e.sup.Dropped() != 2 {
		t.Errorf("dropped events counted %d (store) and %d (process), want 2", dropped, e.sup.Dropped())
	}

	// A rebuild from the log derives exactly the live state.
	live := profiles(t, e.db)
	if len(live) != 1 {
		t.Fatalf("%d profiles after erasure, want 1", len(live))
	}
	if err := e.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	e.proc = newProc(e.db)
	e.catchUp(t)
	if rebuilt := profiles(t, e.db); !reflect.DeepEqual(rebuilt, live) {
		t.Errorf("rebuild differs from the live state:\n%v\n%v", rebuilt, live)
	}

	scan := func(when string) {
		t.Helper()
		scanFiles(t, e.dir, when, "Li Kept", secrets)
	}
	// Erasure itself zeroes freed space and truncates the WALs: no trace
	// even before a VACUUM.
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	scan("after erasure")
	if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	scan("after VACUUM")
}

// Data files hold personal data: owner-only, whatever the umask.
func TestDataFilesArePrivate(t *testing.T) {
	e := open(t)
	e.send(t, []*portrait.Event{event("m1", portrait.EventIdentify, "u1", "", 0, `{"email":"a@example.com"}`)}, nil)
	e.catchUp(t)
	files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
	n := 0
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v", filepath.Base(f), st.Mode().Perm())
		}
		n++
	}
	if n < 4 { // events.db and state.db with their -wal and -shm
		t.Fatalf("only %d files to check: %v", n, files)
	}
	if st, _ := os.Stat(e.dir); st.Mode().Perm()&0o077 != 0 {
		t.Logf("the test's own temp dir is %v (sqlite.Open does not create it)", st.Mode().Perm())
	}
}

// TestEraseLeavesNoEarlierVersions: a profile written many times (one
// commit per event, as a live server writes it) leaves its earlier
// versions in the file's free space, which the erasure's own
// secure_delete does not reach (it zeroes only what it frees itself).
// After the erasure, and before any VACUUM, no byte of any file may hold
// the person.
func TestEraseLeavesNoEarlierVersions(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	e.send(t, []*portrait.Event{event("m-b1", portrait.EventIdentify, "u-keep-1", "", 0, `{"email":"li.kept@example.com","name":"Li Kept"}`)}, nil)
	e.catchUp(t)
	traits := `{"email":"Zhang.Erasable@Example.com","phone":"138 0013 8000","name":"Zhang Erasable","address":"Hangzhou Xihu Erasable Road 9"}`
	// A long free text spills into overflow pages, which a page's own
	// zeroing does not cover.
	long, _ := json.Marshal(map[string]any{"bio": strings.Repeat("Zhang Erasable likes tea. ", 300), "name": "Zhang Erasable"})
	for i := 0; i < 120; i++ {
		var ev *portrait.Event
		switch {
		case i%10 == 5:
			ev = event(fmt.Sprintf("m-a%d", i), portrait.EventIdentify, "u-erase-7781", "", time.Duration(i)*time.Minute, string(long))
		case i%3 == 0:
			ev = event(fmt.Sprintf("m-a%d", i), portrait.EventIdentify, "u-erase-7781", "anon-erase-4410", time.Duration(i)*time.Minute, traits)
		default:
			ev = event(fmt.Sprintf("m-a%d", i), portrait.EventTrack, "u-erase-7781", "", time.Duration(i)*time.Minute, "")
		}
		if i%7 == 0 { // the other person too, so pages hold both
			e.send(t, []*portrait.Event{event(fmt.Sprintf("m-b%d", i+2), portrait.EventTrack, "u-keep-1", "", time.Duration(i)*time.Minute, "")}, nil)
		}
		e.send(t, []*portrait.Event{ev}, nil)
		e.catchUp(t) // one state commit per event: the document is rewritten each time
		if err := e.proc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request"); err != nil {
		t.Fatal(err)
	}
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
	sort.Strings(files)
	sawKept := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sawKept = sawKept || bytes.Contains(b, []byte("Li Kept"))
		for _, s := range secrets {
			if n := bytes.Count(b, []byte(s)); n > 0 {
				t.Errorf("after erasure, before any VACUUM: %s still holds %q (%d times)", filepath.Base(f), s, n)
			}
		}
	}
	if !sawKept {
		t.Fatal("the scan cannot see the other person: it proves nothing")
	}
}

// An erasure takes the person out of the files scheduled deliveries left
// in the drop, and its receipt counts the rows (they were left there,
// phones and emails in clear, while the docs said nothing is on disk).
func TestEraseReachesTheDeliveryDrop(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	e.send(t, []*portrait.Event{
		event("m-a1", portrait.EventIdentify, "u-erase-7781", "", 0, `{"email":"zhang.erasable@example.com","phone":"138 0013 8000"}`),
		event("m-b1", portrait.EventIdentify, "u-keep-1", "", time.Minute, `{"email":"li.kept@example.com","phone":"13700000001"}`),
	}, nil)
	e.catchUp(t)
	members := func(ctx context.Context, d *delivery.Delivery) (*delivery.Content, error) {
		c := &delivery.Content{Header: []string{"phone", "email"}}
		err := e.db.AllProfiles(ctx, func(p *portrait.Profile) error {
			row := make([]string, 2)
			for _, id := range p.Identifiers {
				switch id.Type {
				case "phone":
					row[0] = segment.ActivationForm("phone", id.Value)
				case "email":
					row[1] = segment.ActivationForm("email", id.Value)
				}
			}
			c.Rows = append(c.Rows, row)
			return nil
		})
		return c, err
	}
	drop := delivery.NewService(e.db, members)
	drop.Dir = filepath.Join(e.dir, "deliveries")
	d, err := drop.Create(ctx, &delivery.Delivery{Segment: "seg_all", Identifiers: []string{"phone", "email"}, Target: delivery.Target{Kind: delivery.File, Name: "all"}, EveryText: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	run := drop.Deliver(ctx, d)
	if b, _ := os.ReadFile(run.Where); run.Status != "ok" || !bytes.Contains(b, []byte("+8613800138000")) {
		t.Fatalf("the delivery did not write the person: %+v %q", run, b)
	}
	e.svc.Drops = drop
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["delivered_rows"] != 1 || profile.ReceiptHash(rc) != rc.Hash {
		t.Errorf("receipt: removed %v, hash %s (want %s)", rc.Removed, rc.Hash, profile.ReceiptHash(rc))
	}
	b, _ := os.ReadFile(run.Where)
	for _, s := range []string{"13800138000", "zhang.erasable"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("the delivered file still holds %q: %q", s, b)
		}
	}
	if !bytes.Contains(b, []byte("li.kept@example.com")) {
		t.Errorf("the other member left the file: %q", b)
	}
}

// The accounts (issue 16) are derived from the log beside the profiles:
// the person as a member of an account, with a buying role and a title,
// their email domain, their engagement. Probed on a live server, the
// accounts' checkpoint in state.db still named the erased person after
// the erasure. With the accounts as a Derived model, the erasure rebuilds
// them from the tombstoned log: the model, its checkpoint and the files no
// longer hold the person; the other member stays.
func TestEraseReachesTheAccounts(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	grp := func(msg, user string, at time.Duration) *portrait.Event {
		ev := event(msg, portrait.EventGroup, user, "", at, `{"name":"Acme Trading","domain":"acme.example.cn"}`)
		ev.GroupID = "acme-1"
		return ev
	}
	e.send(t, []*portrait.Event{
		event("m-a1", portrait.EventIdentify, "u-erase-7781", "", 0, `{"email":"zhang.erasable@acme.example.cn","buying_role":"decision_maker","title":"Erasable Procurement Head"}`),
		grp("m-a2", "u-erase-7781", time.Minute),
		event("m-b1", portrait.EventIdentify, "u-keep-1", "", 2*time.Minute, `{"email":"li.kept@acme.example.cn","buying_role":"user"}`),
		grp("m-b2", "u-keep-1", 3*time.Minute),
		// The log ends with the person's events: after the erasure its
		// tail is tombstones, which a reader of the log does not see.
		event("m-a3", portrait.EventTrack, "u-erase-7781", "", 4*time.Minute, ""),
		event("m-a4", portrait.EventIdentify, "u-erase-7781", "", 5*time.Minute, `{"title":"Erasable Procurement Head"}`),
	}, nil)
	e.catchUp(t)
	for i := 0; i < 3; i++ { // later commits of its own that the accounts read
		e.send(t, []*portrait.Event{event(fmt.Sprintf("m-a%d", 5+i), portrait.EventIdentify, "u-erase-7781", "", time.Duration(6+i)*time.Minute, `{"buying_role":"economic_buyer"}`)}, nil)
		e.catchUp(t)
	}
	acc := account.NewService(e.db, e.db, func() time.Time { return t0.Add(72 * time.Hour) })
	if err := acc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		_, body, err := e.db.AccountState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	if s := snapshot(); !strings.Contains(s, "u-erase-7781") || !strings.Contains(s, "u-keep-1") {
		t.Fatalf("the accounts' checkpoint does not hold both members before the erasure: %.200q", s)
	}
	e.svc.Derived = []erasure.Forgetter{acc}
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request"); err != nil {
		t.Fatal(err)
	}
	_, live, err := acc.Model.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for what, b := range map[string]string{"the model": string(live), "the checkpoint": snapshot()} {
		if strings.Contains(b, "u-erase-7781") || strings.Contains(b, "Erasable Procurement") {
			t.Errorf("%s still holds the erased person", what)
		}
		if !strings.Contains(b, "u-keep-1") {
			t.Errorf("%s lost the other member", what)
		}
	}
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range []string{"u-erase-7781", "Erasable Procurement", "zhang.erasable"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s still holds %q", filepath.Base(f), s)
			}
		}
	}
}

// An import of rows naming an erased person drops them as the tracking API
// does, and its summary counts them as suppressed. Probed, the summary
// counted them as duplicates (the log leaves a duplicate's Seq 0, and a
// dropped event's too), which tells the operator nothing happened to rows
// that were in fact refused.
func TestImportCountsSuppressedRows(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	e.send(t, []*portrait.Event{event("m-a1", portrait.EventIdentify, "u-erase-7781", "", 0, `{"email":"zhang.erasable@example.com"}`)}, nil)
	e.catchUp(t)
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request"); err != nil {
		t.Fatal(err)
	}
	file := []byte("user_id,email\nu-new-1,zhang.erasable@example.com\nu-erase-7781,\nu-new-2,new.person@example.com\n")
	m, err := importer.ParseMapping([]byte("identity: {user_id: user_id}\ncolumns:\n  - {column: email, trait: email, kind: email}\n"))
	if err != nil {
		t.Fatal(err)
	}
	im := &importer.Importer{Log: e.sup, Runs: e.db, Parser: tracking.New()}
	sum, err := im.Import(ctx, importer.Input{Name: "crm.csv", Size: int64(len(file)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(file)), nil }},
		importer.Options{Source: "crm", Format: "csv", Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Suppressed != 2 || sum.Accepted != 1 || sum.Duplicates != 0 || sum.Rows != sum.Accepted+sum.Duplicates+sum.Quarantined+sum.Suppressed {
		t.Errorf("summary: %d rows, %d accepted, %d duplicates, %d quarantined, %d suppressed; want 2 suppressed, 1 accepted", sum.Rows, sum.Accepted, sum.Duplicates, sum.Quarantined, sum.Suppressed)
	}
	// Imported again: the new row is a duplicate now, the others still suppressed.
	sum, err = im.Import(ctx, importer.Input{Name: "crm.csv", Size: int64(len(file)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(file)), nil }},
		importer.Options{Source: "crm", Format: "csv", Mapping: m, ID: "again"})
	if err != nil || sum.Suppressed != 2 || sum.Duplicates != 1 {
		t.Errorf("again: %d duplicates, %d suppressed, %v", sum.Duplicates, sum.Suppressed, err)
	}
}

// failingAccounts is the store with the accounts' checkpoint write and the
// log read failing while their counters are above zero: a forget that
// fails after the erasure committed.
type failingAccounts struct {
	*sqlite.DB
	saves, reads atomic.Int32
}

func (f *failingAccounts) SaveAccountState(ctx context.Context, seq int64, body []byte) error {
	if f.saves.Add(-1) >= 0 {
		return portrait.Errorf(portrait.EUNAVAILABLE, "injected: the checkpoint cannot be written")
	}
	return f.DB.SaveAccountState(ctx, seq, body)
}

func (f *failingAccounts) ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error) {
	if f.reads.Add(-1) >= 0 {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "injected: the log cannot be read")
	}
	return f.DB.ReadLog(ctx, after, limit)
}

// A forget that fails after the erasure committed (the erasure answers an
// error) is not left to an operator: the follower's next step forgets the
// person again, from what the failed call left (the model, or only the
// checkpoint); and a node restarted before that step finds the person in
// the suppression list when it loads. Three people, each erased with one
// failure injected: a contact who only identified themselves (forgotten
// directly) with the checkpoint write failing, a member whose group call
// made an account (a rebuild) with the log read failing, and a member
// whose checkpoint write fails before a restart.
func TestAccountsForgetAfterAFailure(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	grp := func(msg, user, group string, at time.Duration) *portrait.Event {
		ev := event(msg, portrait.EventGroup, user, "", at, `{"name":"Acme Trading","domain":"acme.example.cn"}`)
		ev.GroupID = group
		return ev
	}
	e.send(t, []*portrait.Event{
		event("m-c1", portrait.EventIdentify, "u-contact-55", "", 0, `{"email":"wang.contact@acme.example.cn","buying_role":"coach","title":"Contact Fiftyfive"}`),
		grp("m-a1", "u-member-77", "acme-1", time.Minute),
		grp("m-r1", "u-restart-99", "acme-2", 2*time.Minute),
		grp("m-k1", "u-keep-1", "acme-1", 3*time.Minute),
	}, nil)
	e.catchUp(t)
	st := &failingAccounts{DB: e.db}
	now := func() time.Time { return t0.Add(72 * time.Hour) }
	acc := account.NewService(st, st, now)
	if err := acc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc.Derived = []erasure.Forgetter{acc}
	holds := func(user string) (model, checkpoint bool) {
		t.Helper()
		_, live, err := acc.Model.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		_, saved, err := e.db.AccountState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(live, []byte(user)), bytes.Contains(saved, []byte(user))
	}
	erase := func(user string) {
		t.Helper()
		pr, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: user})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Erase(ctx, pr.ID, "test-admin", "art. 17 request"); err == nil {
			t.Fatalf("erasing %s: the injected failure did not fail the forget", user)
		}
	}
	for _, c := range []struct {
		user      string
		fail      *atomic.Int32
		inMemory  bool // the failed call left the person in the model
		forgotten *atomic.Int64
	}{
		{"u-contact-55", &st.saves, false, &acc.Forgotten},
		{"u-member-77", &st.reads, true, &acc.Rebuilt},
	} {
		before := c.forgotten.Load()
		c.fail.Store(1)
		erase(c.user)
		if m, cp := holds(c.user); m != c.inMemory || !cp {
			t.Fatalf("%s after the failed forget: in the model %v (want %v), in the checkpoint %v (want true)", c.user, m, c.inMemory, cp)
		}
		if _, err := acc.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if m, cp := holds(c.user); m || cp {
			t.Errorf("%s after the next step: in the model %v, in the checkpoint %v", c.user, m, cp)
		}
		if c.forgotten.Load() != before+1 {
			t.Errorf("%s: not forgotten the way expected (direct %d, rebuilt %d)", c.user, acc.Forgotten.Load(), acc.Rebuilt.Load())
		}
	}
	// A restart before the next step: the new follower loads the
	// checkpoint that still names the person and finds them erased.
	st.saves.Store(1)
	erase("u-restart-99")
	if _, cp := holds("u-restart-99"); !cp {
		t.Fatal("the checkpoint lost u-restart-99 although its write failed")
	}
	again := account.NewService(e.db, e.db, now)
	again.Erased = e.sup
	if err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	_, live, _ := again.Model.Snapshot()
	_, saved, _ := e.db.AccountState(ctx)
	for what, b := range map[string][]byte{"the restarted model": live, "the checkpoint after the restart": saved} {
		if bytes.Contains(b, []byte("u-restart-99")) {
			t.Errorf("%s still holds u-restart-99", what)
		}
		if !bytes.Contains(b, []byte("u-keep-1")) {
			t.Errorf("%s lost the other member", what)
		}
	}
}

// scanFiles reads every file of dir as raw bytes and reports each one that
// holds one of needles; proof, in state.db after a VACUUM, shows that the
// scan sees the data that is kept (a scan seeing nothing proves nothing).
func scanFiles(t *testing.T, dir, when, proof string, needles []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s: %s still holds %q", when, filepath.Base(f), s)
			}
		}
		if proof != "" && !bytes.Contains(b, []byte(proof)) && filepath.Base(f) == "state.db" && when == "after VACUUM" {
			t.Errorf("the scan cannot see %q in %s: it proves nothing", proof, f)
		}
	}
}

// base64Forms are the substrings that s takes inside a base64 encoding at
// each of the three alignments: the characters that depend on s alone.
func base64Forms(s string) []string {
	var out []string
	for a := 0; a < 3; a++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, a), s...))
		from, to := (8*a+5)/6, 8*(a+len(s))/6
		out = append(out, enc[from:to])
	}
	return out
}

// A retention pass carries the accounts its expired events made forward
// as one "$accounts" event in the log (profile.AccountsID). Probed: after
// such a pass, erasing a member of a carried account made the person's
// events tombstones, but the carried record in the log still held them
// (their person key, email domain entry, membership, title), and every
// rebuild of the accounts (the erasure's own) installed them again. The
// erasure now rewrites the record without the person in its log
// transaction: no file holds the person, the live model does not, and a
// rebuild from the log gives the live model.
func TestEraseReachesTheCarriedAccounts(t *testing.T) {
	ctx := context.Background()
	e := open(t)
	grp := func(msg, user string, at time.Duration) *portrait.Event {
		ev := event(msg, portrait.EventGroup, user, "", at, `{"name":"Acme Trading","domain":"acme.example.cn"}`)
		ev.GroupID = "acme-1"
		return ev
	}
	e.send(t, []*portrait.Event{
		event("m-a1", portrait.EventIdentify, "u-erase-7781", "", 0, `{"email":"zhang.erasable@acme.example.cn","buying_role":"decision_maker","title":"Erasable Procurement Head","company":{"name":"Acme Trading","domain":"acme.example.cn"}}`),
		grp("m-a2", "u-erase-7781", time.Minute),
		event("m-b1", portrait.EventIdentify, "u-keep-1", "", 2*time.Minute, `{"email":"li.kept@acme.example.cn","buying_role":"user","title":"Kept Engineer"}`),
		grp("m-b2", "u-keep-1", 3*time.Minute),
		// After the cut-off: kept by the pass.
		event("m-b3", portrait.EventIdentify, "u-keep-1", "", 30*time.Hour, `{"buying_role":"champion"}`),
	}, nil)
	e.catchUp(t)
	now := func() time.Time { return t0.Add(72 * time.Hour) }
	acc := account.NewService(e.db, e.db, now)
	if err := acc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.proc.Accounts = acc.Model
	scratch := func(ctx context.Context) (profile.ScratchStore, error) { return sqlite.Open(ctx, t.TempDir()) }
	if _, err := e.proc.Compact(ctx, e.db, t0.Add(24*time.Hour), scratch); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.db.CarriedAccounts(ctx); err != nil || !bytes.Contains(rec, []byte("u-erase-7781")) || !bytes.Contains(rec, []byte("u-keep-1")) {
		t.Fatalf("the pass did not carry both members forward: %v", err)
	}
	e.svc.Derived = []erasure.Forgetter{acc}
	victim, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-erase-7781"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.svc.Erase(ctx, victim.ID, "test-admin", "art. 17 request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["carried_accounts"] != 1 {
		t.Errorf("receipt: %+v, want one carried accounts record rewritten", rc.Removed)
	}
	persons := acc.Model.Persons()
	sort.Strings(persons)
	if strings.Contains(strings.Join(persons, " "), "u-erase-7781") || !strings.Contains(strings.Join(persons, " "), "u-keep-1") {
		t.Errorf("the live model's people after the erasure: %v", persons)
	}
	if rec, err := e.db.CarriedAccounts(ctx); err != nil || bytes.Contains(rec, []byte("u-erase-7781")) || !bytes.Contains(rec, []byte("u-keep-1")) {
		t.Errorf("the carried record after the erasure: holds the person %v, the other member %v (%v)",
			bytes.Contains(rec, []byte("u-erase-7781")), bytes.Contains(rec, []byte("u-keep-1")), err)
	}
	// A rebuild from the log (the carried record, then the kept events)
	// gives the live model that forgot the person.
	fresh := account.NewService(e.db, e.db, now)
	if err := fresh.Model.Rebuild(); err != nil {
		t.Fatal(err)
	}
	live, err := acc.Model.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := fresh.Model.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if live != rebuilt {
		t.Errorf("a rebuild differs from the live accounts after the erasure")
	}
	if got := fresh.Model.Persons(); len(got) != len(persons) {
		t.Errorf("rebuilt people %v, live %v", got, persons)
	}
	// The record is gob inside a JSON string (base64): the needles are
	// looked for in that form too.
	needles := []string{"u-erase-7781", "zhang.erasable", "Erasable Procurement"}
	for _, s := range needles[:len(needles):len(needles)] {
		needles = append(needles, base64Forms(s)...)
	}
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	scanFiles(t, e.dir, "after erasure", "", needles)
	if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	scanFiles(t, e.dir, "after VACUUM", "u-keep-1", needles)
}
