package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

var backupEnv = map[string]string{"PORTRAIT_ADMIN_TOKEN": "pat_backup_test_token", "PORTRAIT_WRITE_KEY": "pwk_backup_test_key"}

func openBackupApp(t *testing.T, dir string) *App {
	t.Helper()
	ctx := context.Background()
	a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cheapKeys(a)
	if _, _, err := a.Bootstrap(ctx, func(k string) string { return backupEnv[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// sendBatch sends n identify/track events of batch b and reports their
// message ids if the server acknowledged them.
func sendBatch(a *App, b, n int) ([]string, error) {
	var batch []map[string]any
	var ids []string
	for i := 0; i < n; i++ {
		c := (b*n + i) % 300
		id := fmt.Sprintf("b%d-%d", b, i)
		ids = append(ids, id)
		ev := map[string]any{"type": "track", "userId": fmt.Sprintf("c-%d", c), "event": "Order Completed", "messageId": id,
			"properties": map[string]any{"revenue": 10 + i}}
		if i%5 == 0 {
			ev = map[string]any{"type": "identify", "userId": fmt.Sprintf("c-%d", c), "messageId": id,
				"traits": map[string]any{"name": fmt.Sprintf("客户%d", c), "email": fmt.Sprintf("c%d@example.cn", c), "plan": fmt.Sprint(b % 4)}}
		}
		batch = append(batch, ev)
	}
	body, _ := json.Marshal(map[string]any{"batch": batch})
	req, _ := http.NewRequest(http.MethodPost, a.HTTP.URL()+"/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(backupEnv["PORTRAIT_WRITE_KEY"], "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("batch %d: %s", b, res.Status)
	}
	return ids, nil
}

// waitApplied waits until the store's processor has applied every event
// of its log.
func waitApplied(t *testing.T, db Store) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		last, err := db.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := db.Checkpoint(ctx, profile.CheckpointName)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processing stuck at %d of %d", cp, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func digestOf(t *testing.T, db Store) (string, int) {
	t.Helper()
	d, n, err := profilesDigest(context.Background(), db, map[[2]string]time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return d, n
}

// A backup taken while events arrive holds every event acknowledged
// before it started, restores into a store that opens, catches up and
// equals its own rebuild; a backup of a quiet store restores to the same
// profiles, events and keys.
func TestBackupWhileServingAndRestore(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	a := openBackupApp(t, src)
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
	}()

	var acked []string
	for b := 0; b < 10; b++ {
		ids, err := sendBatch(a, b, 100)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
	}

	// Events keep arriving while the backup runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 10; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := sendBatch(a, b, 100); err != nil {
				sendErr = err
				return
			}
		}
	}()
	out := t.TempDir()
	file := filepath.Join(out, "online.tar.gz")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"backup", "--data", src, "--to", file, "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	close(stop)
	wg.Wait()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	var m sqlite.BackupManifest
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatal(err, stdout.String())
	}
	if m.Events < int64(len(acked)) || m.StateSeq > m.LogSeq || m.Format != sqlite.BackupFormat {
		t.Errorf("manifest: %+v (acknowledged before the backup: %d)", m, len(acked))
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*")); len(left) != 0 {
		t.Errorf("the backup left temporary files: %v", left)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	stdout.Reset()
	if err := run(ctx, []string{"restore", "--from", file, "--data", restored}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	r := openBackupApp(t, restored)
	waitApplied(t, r.DB)
	for _, id := range acked {
		if _, err := r.DB.EventByMessageID(ctx, id); err != nil {
			t.Fatalf("acknowledged event %s is not in the backup: %v", id, err)
		}
	}
	if n, _ := r.DB.CountEvents(ctx); n != m.Events {
		t.Errorf("restored log holds %d events, the manifest says %d", n, m.Events)
	}
	if _, err := r.DB.Authenticate(ctx, portrait.KeyAdmin, backupEnv["PORTRAIT_ADMIN_TOKEN"]); err != nil {
		t.Errorf("the admin token does not work on the restored store: %v", err)
	}
	r.Close()
	// The state the restored store caught up to is what its log gives.
	stdout.Reset()
	if err := run(ctx, []string{"rebuild", "--data", restored, "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	var rb rebuildResult
	if err := json.Unmarshal(stdout.Bytes(), &rb); err != nil || !rb.Identical || rb.Profiles == 0 {
		t.Errorf("rebuild of the restored store: %+v %v", rb, err)
	}

	// A quiet store: the restored profiles are the same profiles. The
	// server is closed first: after the processor catches up, tag,
	// segment and score refreshes still write to profiles in the
	// background, so a running store is never quiet between a digest
	// and a backup.
	waitApplied(t, a.DB)
	closed = true
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	srcDB, err := sqlite.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	want, n := digestOf(t, srcDB)
	wantEvents, _ := srcDB.CountEvents(ctx)
	if err := srcDB.Close(); err != nil {
		t.Fatal(err)
	}
	quiet := filepath.Join(out, "quiet.tar.gz")
	if err := run(ctx, []string{"backup", "--data", src, "--to", quiet}, io.Discard, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	again := filepath.Join(t.TempDir(), "again")
	if err := run(ctx, []string{"restore", "--from", quiet, "--data", again}, io.Discard, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	db, err := sqlite.Open(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, gn := digestOf(t, db); got != want || gn != n {
		t.Errorf("restored profiles differ: %d profiles %s, want %d %s", gn, got, n, want)
	}
	if got, _ := db.CountEvents(ctx); got != wantEvents {
		t.Errorf("restored events: %d, want %d", got, wantEvents)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	db, err := sqlite.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	file := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := run(ctx, []string{"backup", "--data", src, "--to", file}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	// Into a directory that holds a store: refused, the store untouched.
	if err := run(ctx, []string{"restore", "--from", file, "--data", src}, io.Discard, io.Discard); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("restore over a store: %v", err)
	}
	// A damaged archive: nothing is put in place.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"truncated", b[:len(b)/2]},
		{"not gzip", []byte("hello")},
		{"empty", nil},
	} {
		bad := filepath.Join(t.TempDir(), "bad.tar.gz")
		os.WriteFile(bad, c.data, 0o600)
		dst := filepath.Join(t.TempDir(), "dst")
		err := run(ctx, []string{"restore", "--from", bad, "--data", dst}, io.Discard, io.Discard)
		if portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%s: %v", c.name, err)
		}
		if entries, _ := os.ReadDir(dst); len(entries) != 0 {
			t.Errorf("%s: a failed restore left %v", c.name, entries)
		}
	}
	// A directory without a store is not backed up.
	if err := run(ctx, []string{"backup", "--data", t.TempDir(), "--to", filepath.Join(t.TempDir(), "x.tar.gz")}, io.Discard, io.Discard); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("backup of an empty directory: %v", err)
	}
}
