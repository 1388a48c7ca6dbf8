package delivery_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/internal/datakey"
	natsbus "github.com/portrait-cdp/portrait/nats"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// rows is a segment's activation file as the export gives it.
func rows(_ context.Context, d *delivery.Delivery) (*delivery.Content, error) {
	if d.Segment != "seg_a" {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no segment %q", d.Segment)
	}
	return &delivery.Content{Header: []string{"phone_sha256", "email_sha256"}, Rows: [][]string{{"aa", "bb"}, {"cc", ""}}, Skipped: 1}, nil
}

// Each target receives the file, each delivery is recorded (failures
// too), the schedule runs what is due and only that, and targets are
// checked in one place.
func TestDeliveriesToEachTarget(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	s := delivery.NewService(db, rows)
	s.Now = func() time.Time { return now }
	s.Dir = t.TempDir()

	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, r.Header.Get("Content-Type")+"|"+r.Header.Get("X-Portrait-Segment")+"|"+string(b))
		mu.Unlock()
	}))
	defer hook.Close()

	mk := func(target delivery.Target, seg string) *delivery.Delivery {
		t.Helper()
		d, err := s.Create(ctx, &delivery.Delivery{Segment: seg, Identifiers: []string{"phone", "email"}, Hash: true, Target: target, EveryText: "24h"})
		if err != nil {
			t.Fatalf("%+v: %v", target, err)
		}
		return d
	}
	file := mk(delivery.Target{Kind: delivery.File, Name: "gold-audience"}, "seg_a")
	web := mk(delivery.Target{Kind: delivery.Webhook, URL: hook.URL + "/in"}, "seg_a")
	gone := mk(delivery.Target{Kind: delivery.File, Name: "gone"}, "seg_gone")

	var sub *nats.Subscription
	var nc *nats.Conn
	if c, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second)); err == nil {
		nc = c
		defer nc.Close()
		pub, err := natsbus.Dial("nats://127.0.0.1:4222", "portrait delivery test")
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		s.NATS = pub
		subject := "portrait.test.delivery.t" + time.Now().Format("150405000000")
		sub, err = nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		mk(delivery.Target{Kind: delivery.NATS, Subject: subject}, "seg_a")
	} else if os.Getenv("PORTRAIT_REQUIRE_SERVICES") != "" {
		t.Fatalf("NATS at 127.0.0.1:4222 not reachable: %v", err)
	} else {
		t.Logf("NATS at 127.0.0.1:4222 not reachable (%v): the NATS target is not exercised", err)
	}

	if err := s.Due(ctx); err != nil {
		t.Fatal(err)
	}
	want := "phone_sha256,email_sha256\naa,bb\ncc,\n"
	runs, _ := db.DeliveryRuns(ctx, file.ID, 10)
	if len(runs) != 1 || runs[0].Status != "ok" || runs[0].Rows != 2 || runs[0].Skipped != 1 {
		t.Fatalf("file runs %+v", runs)
	}
	if b, err := os.ReadFile(runs[0].Where); err != nil || string(b) != want || filepath.Dir(runs[0].Where) != s.Dir {
		t.Errorf("dropped file %s: %q %v", runs[0].Where, b, err)
	}
	mu.Lock()
	if len(posted) != 1 || posted[0] != "text/csv; charset=utf-8|seg_a|"+want {
		t.Errorf("webhook got %q", posted)
	}
	mu.Unlock()
	if runs, _ := db.DeliveryRuns(ctx, web.ID, 10); len(runs) != 1 || runs[0].Status != "ok" {
		t.Errorf("webhook runs %+v", runs)
	}
	if runs, _ := db.DeliveryRuns(ctx, gone.ID, 10); len(runs) != 1 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "no segment") {
		t.Errorf("a delivery of a deleted segment is recorded as failed: %+v", runs)
	}
	if sub != nil {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != want || m.Header.Get("Portrait-Segment") != "seg_a" {
			t.Errorf("NATS message %v %v", m, err)
		}
	}

	// an hour later nothing is due; a day later everything is
	now = now.Add(time.Hour)
	s.Due(ctx)
	if runs, _ := db.DeliveryRuns(ctx, file.ID, 10); len(runs) != 1 {
		t.Errorf("ran again within its schedule: %d runs", len(runs))
	}
	now = now.Add(24 * time.Hour)
	// a restarted service reads the last run from the store
	s2 := delivery.NewService(db, rows)
	s2.Now, s2.Dir = s.Now, s.Dir
	s2.Due(ctx)
	if runs, _ := db.DeliveryRuns(ctx, file.ID, 10); len(runs) != 2 {
		t.Errorf("a day later: %d runs, want 2", len(runs))
	}

	for _, bad := range []delivery.Target{
		{Kind: delivery.File, Name: "../etc/passwd"},
		{Kind: delivery.File, Name: ".hidden"},
		{Kind: delivery.Webhook, URL: "ftp://example.com/x"},
		{Kind: delivery.NATS, Subject: "a.*"},
		{Kind: "email"},
	} {
		if err := s.ValidateTarget(bad); portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("target %+v: %v", bad, err)
		}
	}
	if _, err := s.Create(ctx, &delivery.Delivery{Segment: "seg_a", Identifiers: []string{"phone"}, Target: delivery.Target{Kind: delivery.File, Name: "x"}, EveryText: "10s"}); err == nil {
		t.Error("a 10 s schedule was accepted")
	}
}

// TestSealedDrop: with a data key, the file dropped is sealed (named
// .sealed, no row in clear), and File, the download path, gives the CSV
// back; without the key it is an error naming the key; a run whose record
// names a file outside the drop is refused.
func TestSealedDrop(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	line, _ := datakey.NewKeyLine("k1")
	ring, _ := datakey.Parse([]byte(line))
	s := delivery.NewService(db, rows)
	s.Dir, s.Sealer = t.TempDir(), &datakey.Sealer{Ring: ring}
	d, err := s.Create(ctx, &delivery.Delivery{Segment: "seg_a", Identifiers: []string{"phone", "email"}, Hash: true, Target: delivery.Target{Kind: delivery.File, Name: "gold"}, EveryText: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	run := s.Deliver(ctx, d)
	if run.Status != "ok" || !strings.HasSuffix(run.Where, ".csv.sealed") {
		t.Fatalf("run %+v", run)
	}
	b, err := os.ReadFile(run.Where)
	if err != nil || strings.Contains(string(b), "aa,bb") || strings.Contains(string(b), "phone_sha256") {
		t.Errorf("the dropped file holds rows in clear: %q %v", b, err)
	}
	name, got, err := s.File(ctx, d.ID, run.ID)
	if err != nil || string(got) != "phone_sha256,email_sha256\naa,bb\ncc,\n" || !strings.HasSuffix(name, ".csv") {
		t.Errorf("download %q %q %v", name, got, err)
	}
	s.Sealer = &datakey.Sealer{}
	if _, _, err := s.File(ctx, d.ID, run.ID); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("opened without the key: %v", err)
	}
	if _, _, err := s.File(ctx, d.ID, run.ID+1); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a run that is not: %v", err)
	}
	// A record naming a file elsewhere is not read.
	if err := db.AppendDeliveryRun(ctx, &delivery.Run{Delivery: d.ID, At: time.Now(), Status: "ok", Where: "/etc/passwd"}); err != nil {
		t.Fatal(err)
	}
	runs, _ := db.DeliveryRuns(ctx, d.ID, 1)
	if _, _, err := s.File(ctx, d.ID, runs[0].ID); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a run naming /etc/passwd: %v", err)
	}
}

// Every send carries an Idempotency-Key: "<delivery>:<slot>" for the
// schedule's runs, numbered 1, 2, … on the embedded store (from the runs
// recorded: a restarted service goes on from the last), and a key of its
// own for a run asked for now, which a receiver must not drop.
func TestEachSendCarriesAnIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	var keys []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
	}))
	defer hook.Close()
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	open := func() *delivery.Service {
		s := delivery.NewService(db, rows)
		s.Now = func() time.Time { return now }
		return s
	}
	s := open()
	d, err := s.Create(ctx, &delivery.Delivery{Segment: "seg_a", Identifiers: []string{"email"}, Target: delivery.Target{Kind: delivery.Webhook, URL: hook.URL}, EveryText: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Due(ctx); err != nil { // slot 1
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	manual := s.Deliver(ctx, d) // asked for now
	now = now.Add(time.Hour)
	if err := open().Due(ctx); err != nil { // slot 2, by a service started anew
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{d.ID + ":1", manual.Key, d.ID + ":2"}
	if len(keys) != 3 || keys[0] != want[0] || keys[1] != want[1] || keys[2] != want[2] || !strings.HasPrefix(manual.Key, d.ID+":now-") {
		t.Errorf("keys %q, want %q", keys, want)
	}
	runs, err := db.DeliveryRuns(ctx, d.ID, -1)
	if err != nil || len(runs) != 3 || runs[0].Slot != 2 || runs[1].Slot != 0 || runs[2].Slot != 1 {
		t.Errorf("runs recorded: %d %v", len(runs), err)
	}
}

// An erased person's rows leave the drop: the files a file delivery wrote
// (in clear, hashed, sealed) are rewritten without the rows naming any of
// the person's identifiers, the other members kept; the files are
// owner-only, and so is a drop directory the service creates.
func TestErasedPersonLeavesTheDrop(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	people := func(_ context.Context, d *delivery.Delivery) (*delivery.Content, error) {
		row := func(phone, email string) []string {
			if d.Hash {
				return []string{segment.HashIdentifier("phone", phone), segment.HashIdentifier("email", email)}
			}
			return []string{segment.ActivationForm("phone", phone), segment.ActivationForm("email", email)}
		}
		return &delivery.Content{Header: []string{"phone", "email"}, Rows: [][]string{
			row("+8613912345678", "erase.me@example.com"), row("+8613700000001", "keep.me@example.com"),
		}}, nil
	}
	line, _ := datakey.NewKeyLine("k1")
	ring, _ := datakey.Parse([]byte(line))
	var wrote []string
	for _, c := range []struct {
		name   string
		hash   bool
		sealer delivery.Sealer
	}{{"plain", false, nil}, {"hashed", true, nil}, {"sealed", false, &datakey.Sealer{Ring: ring}}} {
		s := delivery.NewService(db, people)
		s.Dir, s.Sealer = filepath.Join(t.TempDir(), "drop"), c.sealer
		d, err := s.Create(ctx, &delivery.Delivery{Segment: "seg_a", Identifiers: []string{"phone", "email"}, Hash: c.hash, Target: delivery.Target{Kind: delivery.File, Name: c.name}, EveryText: "24h"})
		if err != nil {
			t.Fatal(err)
		}
		run := s.Deliver(ctx, d)
		if run.Status != "ok" {
			t.Fatalf("%s: run %+v", c.name, run)
		}
		wrote = append(wrote, run.Where)
		for _, p := range []string{s.Dir, run.Where} {
			if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s is not owner-only: %v %v", c.name, p, st.Mode().Perm(), err)
			}
		}
		files, rows, err := s.EraseRows(ctx, []portrait.Identifier{{Type: "phone", Value: "+8613912345678"}, {Type: "email", Value: "erase.me@example.com"}})
		if err != nil || files != 1 || rows != 1 {
			t.Errorf("%s: EraseRows gave %d files, %d rows, %v; want 1, 1", c.name, files, rows, err)
		}
		_, got, err := s.File(ctx, d.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(run.Where)
		for _, gone := range []string{"13912345678", "erase.me", segment.HashIdentifier("phone", "+8613912345678"), segment.HashIdentifier("email", "erase.me@example.com")} {
			if strings.Contains(string(got), gone) || strings.Contains(string(raw), gone) {
				t.Errorf("%s: the drop still holds %q: %q", c.name, gone, got)
			}
		}
		keep := "keep.me@example.com"
		if c.hash {
			keep = segment.HashIdentifier("email", keep)
		}
		if !strings.HasPrefix(string(got), "phone,email\n") || !strings.Contains(string(got), keep) {
			t.Errorf("%s: the other member or the header is gone: %q", c.name, got)
		}
		if st, err := os.Stat(run.Where); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: the rewritten file is not owner-only: %v", c.name, err)
		}
		if files, rows, err := s.EraseRows(ctx, []portrait.Identifier{{Type: "phone", Value: "+8613912345678"}}); files != 0 || rows != 0 || err != nil {
			t.Errorf("%s: a second pass rewrote %d files, %d rows, %v", c.name, files, rows, err)
		}
	}
	if len(wrote) != 3 || !strings.HasSuffix(wrote[2], delivery.SealedSuffix) {
		t.Errorf("files written: %v", wrote)
	}
}
