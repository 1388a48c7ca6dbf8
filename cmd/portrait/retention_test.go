package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// retentionWorld is a store with three people: A, whose history began more
// than a year ago (an anonymous visitor and, apart, a user who ordered,
// joined by an identify ten days ago), B, seen only more than a year ago,
// and C, seen only recently.
type retentionWorld struct {
	now      time.Time
	cutoff   time.Time
	expired  []string // values only expired events held: they must vanish
	lateSent bool
}

// expiredValues are held only by expired events (their properties) or by
// a trait value a kept event replaced: none may remain anywhere. (The
// expired events' message ids do remain, as provenance: the key of a
// profile's first event, the message that set a kept trait.)
var expiredValues = []string{"old-page-7731", "ORD-OLD-9931", "ORD-OLD-4417", "Oldtown-5521", "ORD-LATE-3"}

// retainedIDNumber is a secret-level value (an ID number) that only an
// expired event sent, and that B's profile keeps: with a data key it is
// carried forward sealed, never in clear nor in the base64 of a clear
// profile document.
const retainedIDNumber = "110105198507151238"

// sealedNeedles are the forms of the secret value that must not be in any
// stored byte: the value, and the base64 text of any document holding it
// in clear, at each of the three alignments (the first and last groups of
// four characters depend on the bytes around it, so they are dropped).
func sealedNeedles(v string) []string {
	out := []string{v}
	for o := 0; o < 3; o++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, o), v...))
		out = append(out, enc[4:len(enc)-4])
	}
	return out
}

// retentionKeyFile writes a data key file with the key k1.
func retentionKeyFile(t *testing.T) string {
	t.Helper()
	line, err := datakey.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "data-keys")
	if err := os.WriteFile(f, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func retentionEvents(now time.Time) ([]*portrait.Event, []string) {
	day := 24 * time.Hour
	ev := func(msg, typ, name, user, anon string, ago time.Duration, traits, props string) *portrait.Event {
		e := &portrait.Event{MessageID: msg, Type: typ, Name: name, Source: "web", UserID: user, AnonymousID: anon, Timestamp: now.Add(-ago), ReceivedAt: now.Add(-ago)}
		if traits != "" {
			e.Traits = json.RawMessage(traits)
		}
		if props != "" {
			e.Properties = json.RawMessage(props)
		}
		return e
	}
	evs := []*portrait.Event{
		// A, expired: an anonymous visitor who gave an e-mail and a city...
		ev("ret-old-a1", portrait.EventPage, "Home", "", "anon-ret-A", 400*day, "", `{"url":"https://shop.example/old-page-7731"}`),
		ev("ret-old-a2", portrait.EventIdentify, "", "", "anon-ret-A", 399*day, `{"email":"a.ret@example.com","city":"Oldtown-5521","name":"Alice Ret"}`, ""),
		// ...and, not yet known to be the same person, a customer's order.
		ev("ret-old-a3", portrait.EventTrack, "Order Completed", "u-ret-A", "", 398*day, "", `{"revenue":120,"order_id":"ORD-OLD-9931"}`),
		ev("ret-old-a4", portrait.EventIdentify, "", "u-ret-A", "", 397*day, `{"plan":"gold"}`, ""),
		// B, expired entirely.
		ev("ret-old-b1", portrait.EventIdentify, "", "u-ret-B", "", 500*day, `{"name":"Bob Expired","email":"bob.ret@example.com","id_card":"`+retainedIDNumber+`"}`, ""),
		ev("ret-old-b2", portrait.EventTrack, "Order Completed", "u-ret-B", "", 450*day, "", `{"revenue":75,"order_id":"ORD-OLD-4417"}`),
		// A, kept: the identify that joins the two, a new city, an order.
		ev("ret-new-a1", portrait.EventIdentify, "", "u-ret-A", "anon-ret-A", 10*day, `{"city":"Newtown"}`, ""),
		ev("ret-new-a2", portrait.EventTrack, "Order Completed", "u-ret-A", "", 9*day, "", `{"revenue":30,"order_id":"ORD-NEW-1"}`),
		// C, kept.
		ev("ret-new-c1", portrait.EventIdentify, "", "u-ret-C", "", 5*day, `{"name":"Cara Kept","email":"cara@example.com"}`, ""),
		ev("ret-new-c2", portrait.EventPage, "Home", "u-ret-C", "", 4*day, "", `{"url":"https://shop.example/new-page"}`),
	}
	return evs, expiredValues
}

// TestEventRetention (embedded store): events older than the limit become
// tombstones and leave no byte in any file; the profiles they made are
// unchanged and a rebuild from the compacted log gives them exactly; the
// run is recorded, audited and moves the content version; an event of the
// expired period arriving later is applied and expires at the next pass;
// nothing expires under the limit.
func TestEventRetention(t *testing.T) {
	dir, keyFile := t.TempDir(), retentionKeyFile(t)
	testEventRetention(t, Config{DataDir: dir, DataKeyFile: keyFile, LogLevel: "error"}, []string{"--data", dir, "--data-key-file", keyFile}, func(t *testing.T, gone ...string) {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		sort.Strings(files)
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.IsDir() {
				if strings.HasPrefix(filepath.Base(f), "retention-") {
					t.Errorf("scratch store left behind: %s", f)
				}
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range gone {
				if bytes.Contains(b, []byte(s)) {
					if d := os.Getenv("RET_DEBUG"); d != "" {
						exec.Command("cp", "-r", dir, d).Run()
					}
					t.Errorf("%s still holds %q", filepath.Base(f), s)
				}
			}
		}
		// The scan sees what is kept: it proves something.
		st, _ := os.ReadFile(filepath.Join(dir, "events.db"))
		if !bytes.Contains(st, []byte("ORD-NEW-1")) {
			t.Error("the scan does not see a kept event's property")
		}
	})
}

// TestEventRetentionOnPostgres: the same on PostgreSQL (every text and
// bytea column is read for the expired values).
func TestEventRetentionOnPostgres(t *testing.T) {
	url, keyFile := pgtest.URL(t), retentionKeyFile(t)
	testEventRetention(t, Config{Store: url, DataDir: t.TempDir(), DataKeyFile: keyFile, LogLevel: "error"}, []string{"--store", url, "--data-key-file", keyFile}, nil)
}

// testEventRetention runs with a data key (cfg.DataKeyFile, also in
// storeArgs): the carried-forward profiles hold a secret value, which no
// scan may find in clear, before and after a rotation of the key.
func testEventRetention(t *testing.T, cfg Config, storeArgs []string, scan func(t *testing.T, gone ...string)) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	cutoff := now.Add(-365 * 24 * time.Hour)
	evs, gone := retentionEvents(now)
	gone = append(gone, sealedNeedles(retainedIDNumber)...)
	open := func() *App {
		t.Helper()
		a, err := OpenApp(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	catchUp := func(a *App) {
		t.Helper()
		last, err := a.DB.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Proc.CatchUp(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(a *App) string {
		t.Helper()
		d, _, err := profilesDigest(ctx, a.DB, map[[2]string]time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	rebuild := func() rebuildResult {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"rebuild", "--json"}, storeArgs...), &out, &errb); err != nil {
			t.Fatal(err, errb.String())
		}
		var rb rebuildResult
		if err := json.Unmarshal(out.Bytes(), &rb); err != nil {
			t.Fatal(err, out.String())
		}
		return rb
	}
	byUser := func(a *App, user string) *portrait.Profile {
		t.Helper()
		p, err := a.DB.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: user})
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		return p
	}

	a := open()
	// The pass's scratch store holds the expired events while it runs:
	// sealed like the live store, so the secret value is in none of its
	// files either (a kept-in-clear order id shows the scan reads them).
	var scratchSeen, scratchClear int
	var scratchLeaks []string
	a.scratchClosing = func(dir string) {
		scratchSeen++
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
				return nil
			}
			if bytes.Contains(b, []byte("ORD-OLD-4417")) {
				scratchClear++
			}
			for _, s := range sealedNeedles(retainedIDNumber) {
				if bytes.Contains(b, []byte(s)) {
					scratchLeaks = append(scratchLeaks, filepath.Base(path)+": "+s)
				}
			}
			return nil
		})
	}
	if _, err := a.DB.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	catchUp(a)
	// What a pass must leave of the live profiles: all but the expired
	// events' message ids in trait provenance, which it renames
	// (storetest.ExpiredMessageIDsGone).
	expiredMsg := map[string]bool{}
	for _, e := range evs {
		if e.Timestamp.Before(cutoff) {
			expiredMsg[e.MessageID] = true
		}
	}
	kept := func(a *App) string {
		t.Helper()
		var out []string
		err := a.DB.AllProfiles(ctx, func(p *portrait.Profile) error {
			for k, tr := range p.Traits {
				if expiredMsg[tr.MessageID] || strings.HasPrefix(tr.MessageID, "~expired:") {
					tr.MessageID = "~expired"
					p.Traits[k] = tr
				}
			}
			p.UpdatedAt = time.Time{}
			b, err := json.Marshal(p)
			out = append(out, string(b))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	keptBefore := kept(a)
	aBefore := byUser(a, "u-ret-A")
	if aBefore.EventCount != 6 || aBefore.Traits["city"].Value != "Newtown" || aBefore.Traits["email"].Value != "a.ret@example.com" {
		t.Fatalf("A before expiry: %+v", aBefore)
	}
	cvBefore := contentVersion(a)

	// The null case: a limit older than every event deletes nothing,
	// records nothing, and leaves the content version.
	run0, err := a.expireEvents(ctx, now.Add(-1000*24*time.Hour))
	if err != nil || run0.Deleted != 0 {
		t.Fatalf("nothing is due, yet: %+v %v", run0, err)
	}
	if runs, _ := a.DB.RetentionRuns(ctx, 10); len(runs) != 0 {
		t.Fatalf("a run that deleted nothing was recorded: %+v", runs)
	}
	if cv := contentVersion(a); cv != cvBefore {
		t.Fatalf("content version moved without a deletion: %s → %s", cvBefore, cv)
	}

	// The pass, through the scheduled job (audited).
	a.eventRetention.Age = now.Sub(cutoff)
	a.eventRetention.Now = func() time.Time { return now }
	run1, err := a.eventRetention.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Carried: A's two profiles of the expired period and B's; and the
	// accounts record (the expired identifies gave people e-mail domains).
	if run1.Deleted != 6 || run1.Profiles != 2 || run1.Carried != 3 || !run1.Accounts || run1.Decisions || !run1.Oldest.Equal(now.Add(-500*24*time.Hour)) || !run1.Newest.Equal(now.Add(-397*24*time.Hour)) {
		t.Fatalf("run: %+v", run1)
	}
	if cv := contentVersion(a); cv == cvBefore {
		t.Error("the content version did not move")
	}
	if scratchSeen == 0 || scratchClear == 0 || len(scratchLeaks) > 0 {
		t.Errorf("the scratch store: seen %d times, the expired order id found in %d files, the secret value in clear in %v", scratchSeen, scratchClear, scratchLeaks)
	}
	if runs, _ := a.DB.RetentionRuns(ctx, 10); len(runs) != 1 || runs[0].Deleted != 6 || runs[0].Kind != "events" || runs[0].ID == 0 {
		t.Errorf("runs: %+v", runs)
	}
	recs, err := a.DB.ListAudit(ctx, portrait.AuditFilter{Action: "retention.events"})
	if err != nil || len(recs) != 1 || recs[0].Detail["deleted"] != float64(6) || recs[0].Detail["oldest"] == nil {
		t.Errorf("audit: %v %v", recs, err)
	}
	// The status API shows the limit and the run.
	if _, _, err := a.Bootstrap(ctx, func(k string) string {
		return map[string]string{"PORTRAIT_ADMIN_TOKEN": "pat_retention_test_admin"}[k]
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	a.HTTP.Retention.EventAge = a.eventRetention.Age
	req := httptest.NewRequest("GET", "/v1/retention", nil)
	req.Header.Set("Authorization", "Bearer pat_retention_test_admin")
	rec := httptest.NewRecorder()
	a.HTTP.Handler().ServeHTTP(rec, req)
	var status struct {
		Events struct {
			Enabled       bool  `json:"enabled"`
			MaxAgeSeconds int64 `json:"max_age_seconds"`
		} `json:"events"`
		Runs []portrait.RetentionRun `json:"runs"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &status); err != nil || rec.Code != 200 || !status.Events.Enabled ||
		status.Events.MaxAgeSeconds != int64(a.eventRetention.Age/time.Second) || len(status.Runs) != 1 || status.Runs[0].Deleted != 6 {
		t.Errorf("GET /v1/retention: %d %s", rec.Code, rec.Body)
	}

	// A quarantined record deleted by retention is recorded, audited and
	// moves the content version too.
	// (A newer record stays, so the quarantine's highest id does not move.)
	if _, err := a.DB.Append(ctx, nil, []*portrait.Rejected{
		{Source: "web", Reason: "bad timestamp", Raw: []byte(`{"userId":"u-q","timestamp":"yesterday"}`), ReceivedAt: now.Add(-100 * 24 * time.Hour)},
		{Source: "web", Index: 1, Reason: "bad timestamp", Raw: []byte(`{"userId":"u-q2","timestamp":"today"}`), ReceivedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	cvQ := contentVersion(a)
	a.retention.Now, a.retention.QuarantineAge = func() time.Time { return now }, 90*24*time.Hour
	if n, err := a.retention.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("quarantine sweep: %d %v", n, err)
	}
	if contentVersion(a) == cvQ {
		t.Error("a quarantine purge did not move the content version")
	}
	if recs, err := a.DB.ListAudit(ctx, portrait.AuditFilter{Action: "retention.quarantine"}); err != nil || len(recs) != 1 || recs[0].Detail["deleted"] != float64(1) {
		t.Errorf("quarantine audit: %v %v", recs, err)
	}

	// The live profiles are what they were.
	catchUp(a)
	if k := kept(a); k != keptBefore {
		t.Errorf("profiles changed by the expiry:\n%s\nwas\n%s", k, keptBefore)
	}
	// Trait provenance names no expired message. (The journey enricher's
	// stage history, a trait value, still does: docs/erasure.md.)
	a.DB.AllProfiles(ctx, func(p *portrait.Profile) error {
		for k, tr := range p.Traits {
			if expiredMsg[tr.MessageID] {
				t.Errorf("profile %s: trait %s names the expired message %s", p.ID, k, tr.MessageID)
			}
		}
		return nil
	})
	if b := byUser(a, "u-ret-B"); b.Traits["name"].Value != "Bob Expired" || b.Traits["id_card"].Value != retainedIDNumber || b.EventCount != 2 {
		t.Errorf("B lost what its expired events made: %+v", b)
	}
	// No expired event is in the log.
	last, _ := a.DB.LastSeq(ctx)
	logged, err := a.DB.ReadLog(ctx, 0, int(last)+10)
	if err != nil {
		t.Fatal(err)
	}
	carried := 0
	for _, e := range logged {
		if e.Type == portrait.EventRetained {
			carried++
			continue
		}
		if e.Timestamp.Before(cutoff) {
			t.Errorf("expired event still in the log: %s", e.MessageID)
		}
	}
	for _, e := range logged {
		if e.Type == portrait.EventRetained && os.Getenv("RET_DEBUG") != "" {
			var bs struct{ Profile []byte }
			json.Unmarshal(e.Properties, &bs)
			t.Logf("%s", bs.Profile)
		}
	}
	if carried != 4 {
		t.Errorf("%d carried-forward events in the log, want 4 (three profiles, the accounts)", carried)
	}
	if n, _ := a.DB.CountEvents(ctx); n != int64(len(evs)-6+4) {
		t.Errorf("%d events counted, want %d", n, len(evs)-6+4)
	}
	if scan == nil {
		assertNoValueOnPostgres(t, cfg.Store, gone, "ORD-NEW-1")
	}
	a.Close()
	if scan != nil {
		scan(t, gone...)
	}

	// A rebuild from the compacted log gives the same profiles (the
	// live ones, which are the profiles before the pass but for the
	// renamed provenance, checked above).
	rb := rebuild()
	if !rb.Identical {
		t.Fatalf("rebuild after expiry: %+v", rb)
	}

	// An event of the expired period arrives late: applied on top of
	// the carried-forward profile, the rebuild still exact.
	a = open()
	late := &portrait.Event{MessageID: "ret-late-a", Type: portrait.EventTrack, Name: "Order Completed", Source: "web", UserID: "u-ret-A",
		Timestamp: now.Add(-380 * 24 * time.Hour), ReceivedAt: now, Properties: json.RawMessage(`{"revenue":5,"order_id":"ORD-LATE-3"}`)}
	if _, err := a.DB.Append(ctx, []*portrait.Event{late}, nil); err != nil {
		t.Fatal(err)
	}
	catchUp(a)
	if p := byUser(a, "u-ret-A"); p.EventCount != 7 || p.ID != aBefore.ID || p.Traits["city"].Value != "Newtown" {
		t.Errorf("A after a late event of the expired period: %+v", p)
	}
	withLate := digest(a)
	a.Close()
	if rb := rebuild(); !rb.Identical || rb.Before != withLate {
		t.Fatalf("rebuild with the late event: %+v", rb)
	}
	// The next pass expires it (and carries A forward again).
	a = open()
	catchUp(a)
	run2, err := a.expireEvents(ctx, cutoff)
	if err != nil || run2.Deleted != 1 || run2.Profiles != 2 || run2.Carried != 3 || !run2.Accounts {
		t.Fatalf("second pass: %+v %v", run2, err)
	}
	if d := digest(a); d != withLate {
		t.Error("profiles changed by the second pass")
	}
	if ev, _ := a.DB.EventByMessageID(ctx, "ret-late-a"); ev != nil {
		t.Error("the late event was not expired")
	}
	a.Close()
	if rb := rebuild(); !rb.Identical || rb.Before != withLate {
		t.Fatalf("rebuild after the second pass: %+v", rb)
	}

	// A late event older than everything carried forward for A: replayed
	// before the carried-forward profiles, which join the profile it
	// makes (as merges); nothing is lost, the old id still answers.
	a = open()
	older := &portrait.Event{MessageID: "ret-late-b", Type: portrait.EventTrack, Name: "Order Completed", Source: "web", UserID: "u-ret-A",
		Timestamp: now.Add(-420 * 24 * time.Hour), ReceivedAt: now, Properties: json.RawMessage(`{"revenue":7,"order_id":"ORD-LATE-3"}`)}
	if _, err := a.DB.Append(ctx, []*portrait.Event{older}, nil); err != nil {
		t.Fatal(err)
	}
	catchUp(a)
	p := byUser(a, "u-ret-A")
	if p.EventCount != 8 || p.Traits["city"].Value != "Newtown" || p.Traits["email"].Value != "a.ret@example.com" || p.TrackCounts["Order Completed"] != 4 {
		t.Errorf("A after a late event older than its carried-forward state: %+v", p)
	}
	if q, err := a.DB.Profile(ctx, aBefore.ID); err != nil || q.ID != p.ID {
		t.Errorf("A's old id no longer answers: %v %v", q, err)
	}
	withOlder := digest(a)
	a.Close()
	if rb := rebuild(); !rb.Identical || rb.Before != withOlder {
		t.Fatalf("rebuild with the older late event: %+v", rb)
	}
	a = open()
	catchUp(a)
	expiredMsg[older.MessageID] = true
	keptOlder := kept(a)
	if run3, err := a.expireEvents(ctx, cutoff); err != nil || run3.Deleted != 1 {
		t.Fatalf("third pass: %+v %v", run3, err)
	}
	if k := kept(a); k != keptOlder {
		t.Error("profiles changed by the third pass")
	}
	a.Close()
	if rb := rebuild(); !rb.Identical {
		t.Fatalf("rebuild after the third pass: %+v", rb)
	}
	if scan != nil {
		scan(t, gone...)
	}

	// A rotation of the data key reseals the carried-forward profiles:
	// nothing stays under the old key, and a rebuild with the new key
	// alone still gives the same profiles.
	keyFile := cfg.DataKeyFile
	var out, errb bytes.Buffer
	if err := run(ctx, append([]string{"keys", "rotate-data-key", "--data-key-file", keyFile, "--id", "k2", "--json"}, storeArgs[:2]...), &out, &errb); err != nil {
		t.Fatalf("rotate: %v %s", err, errb.String())
	}
	kf, _ := os.ReadFile(keyFile)
	lines := strings.Split(strings.TrimSpace(string(kf)), "\n")
	if err := os.WriteFile(keyFile, []byte(lines[len(lines)-1]+"\n"), 0o600); err != nil { // k1 removed
		t.Fatal(err)
	}
	if scan != nil {
		scan(t, gone...)
		// The log, where the carried-forward events are, holds nothing
		// under the old key. (The state's file is not checked here: its
		// pages keep bytes of the profiles the rebuilds above replaced,
		// which this test does not look into.)
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "events.db"))
		if err != nil || bytes.Contains(b, []byte("$sealed:k1:")) || !bytes.Contains(b, []byte("$sealed:k2:")) {
			t.Errorf("the log after the rotation holds a value under the old key, or none under the new one (%v)", err)
		}
	} else {
		assertNoValueOnPostgres(t, cfg.Store, append(gone, "$sealed:k1:"), "ORD-NEW-1")
	}
	if rb := rebuild(); !rb.Identical {
		t.Fatalf("rebuild after the rotation: %+v", rb)
	}
	a = open()
	if b := byUser(a, "u-ret-B"); b.Traits["id_card"].Value != retainedIDNumber {
		t.Errorf("B after the rotation: %+v", b.Traits)
	}
	a.Close()
}

// assertNoValueOnPostgres reads every text and bytea column of every table
// of the schema and fails on any of gone; kept must be found (or the scan
// proves nothing).
func assertNoValueOnPostgres(t *testing.T, url string, gone []string, kept string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea', 'jsonb', 'character varying')`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		rows.Scan(&c.table, &c.column, &c.typ)
		cols = append(cols, c)
	}
	rows.Close()
	found := false
	for _, c := range cols {
		for _, s := range append(gone, kept) {
			var n int
			expr := fmt.Sprintf(`convert_to(%q::text, 'UTF8')`, c.column)
			if c.typ == "bytea" {
				expr = fmt.Sprintf("%q", c.column)
			}
			q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE position($1::bytea IN %s) > 0`, c.table, expr)
			if err := conn.QueryRow(ctx, q, []byte(s)).Scan(&n); err != nil {
				t.Fatalf("%s.%s: %v", c.table, c.column, err)
			}
			if n > 0 && s == kept {
				found = true
			} else if n > 0 {
				t.Errorf("%s.%s still holds %q", c.table, c.column, s)
			}
		}
	}
	if !found {
		t.Errorf("the scan does not find the kept value %q: it proves nothing", kept)
	}
}

func contentVersion(a *App) string {
	cv, err := a.DB.(interface {
		ContentVersion(context.Context) (string, error)
	}).ContentVersion(context.Background())
	if err != nil {
		panic(err)
	}
	return cv
}

// A negative retention age is refused at start with the flag named, not
// taken as "kept" or as "expire everything".
func TestNegativeRetentionIsRefused(t *testing.T) {
	for _, c := range []struct {
		flag string
		h    Hardening
	}{
		{"--event-retention", Hardening{EventRetention: -time.Hour}},
		{"--quarantine-retention", Hardening{QuarantineRetention: -time.Hour}},
	} {
		cfg := Config{DataDir: t.TempDir(), LogLevel: "error", Hardening: c.h}
		a, err := OpenApp(context.Background(), cfg, io.Discard)
		if err == nil {
			a.Close()
			t.Fatalf("%s -1h: the server opened", c.flag)
		}
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s -1h: %v, want an invalid-input error naming the flag", c.flag, err)
		}
	}
}
