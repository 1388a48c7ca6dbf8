// Package e2e_test runs the real portrait binary as a subprocess on a free
// loopback port and talks to it only the way users and SDKs do: HTTP, the
// command line, and (read-only) its SQLite files.
//
// TestMain builds the binary once into a temporary directory. Set
// PORTRAIT_E2E_RACE=1 to build it with the race detector as well (slower).
//
// Every test runs in parallel with the others (t.Parallel): each has its
// own processes, ports and data directories, and most of their time is
// spent waiting for those processes (a demo loading, a browser, kills and
// restarts), so the package takes about as long as its longest test.
package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // read-only checks of the store's files

	"github.com/portrait-cdp/portrait"
)

const (
	adminToken = "e2e-admin-token-0123456789"
	writeKey   = "e2e-write-key-0123456789"
	// writeKeyName is the name serve gives the write key it bootstraps from
	// PORTRAIT_WRITE_KEY; traits carry it as their source.
	writeKeyName = "default"
)

var (
	binPath  string // the built portrait binary
	repoRoot string // the module root (parent of e2e/)
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "portrait-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "portrait")
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is needed to build the binary:", err)
		return 1
	}
	args := []string{"build"}
	if os.Getenv("PORTRAIT_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "-o", binPath, "./cmd/portrait")
	build := exec.Command(goBin, args...)
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/portrait failed:", err)
		return 1
	}
	return m.Run()
}

// server is one portrait serve subprocess on a data directory; it can be
// killed and restarted on the same directory.
type server struct {
	t       testing.TB
	dataDir string
	logPath string
	args    []string // more serve flags (--bus, --role...)

	mu     sync.Mutex
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
}

// startServer starts portrait serve on a fresh data directory and waits
// until /healthz answers. The process is stopped when the test ends.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log"), args: args}
	s.start()
	t.Cleanup(func() {
		s.kill()
		s.checkLog()
		if t.Failed() {
			s.dumpLog()
		}
	})
	return s
}

// URL is the server's current base URL (the port may change on a restart
// if the old one could not be bound again).
func (s *server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start launches the process (on the previous address when there is one)
// and waits for /healthz; it retries on a new port if the process dies
// before it is healthy (e.g. the port was taken meanwhile).
func (s *server) start() {
	s.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		s.mu.Lock()
		if s.addr == "" || attempt > 0 {
			s.addr = freeAddr(s.t)
		}
		addr := s.addr
		s.mu.Unlock()
		logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			s.t.Fatal(err)
		}
		s.starts++
		fmt.Fprintf(logf, "\n=== start %d on %s ===\n", s.starts, addr)
		cmd := exec.Command(binPath, append([]string{"serve", "--addr", addr, "--data", s.dataDir}, s.args...)...)
		cmd.Env = append(os.Environ(), "PORTRAIT_ADMIN_TOKEN="+adminToken, "PORTRAIT_WRITE_KEY="+writeKey)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			s.t.Fatalf("cannot start portrait: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			logf.Close()
			close(exited)
		}()
		s.mu.Lock()
		s.cmd, s.exited = cmd, exited
		s.mu.Unlock()
		if lastErr = waitHealthy("http://"+addr, exited, 60*time.Second); lastErr == nil {
			return
		}
		s.kill()
	}
	s.dumpLog()
	s.t.Fatalf("portrait serve did not become healthy: %v", lastErr)
}

func waitHealthy(base string, exited <-chan struct{}, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the process exited before it was healthy")
		default:
		}
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from %s/healthz within %s", base, timeout)
}

// kill sends SIGKILL, as a crash or the OOM killer would, and reaps.
func (s *server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// restart starts the server again on the same data directory.
func (s *server) restart() { s.start() }

// stop shuts the server down gracefully (SIGTERM) and waits for it.
func (s *server) stop() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		s.t.Errorf("portrait serve did not stop within 60s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Errorf("portrait serve exited with code %d after SIGTERM", code)
	}
}

// checkLog fails the test if the server panicked or (built with
// PORTRAIT_E2E_RACE=1) reported a data race in any of its lives, and
// reports the errors it logged.
func (s *server) checkLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if bytes.Contains(b, []byte(bad)) {
			s.t.Errorf("the server log contains %q", bad)
		}
	}
	if n := bytes.Count(b, []byte("level=ERROR")); n > 0 {
		s.t.Logf("the server logged %d errors (see the log below if the test failed)", n)
	}
}

func (s *server) dumpLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	s.t.Logf("server log (tail):\n%s", b)
}

// client is what tests use to talk to the server.
var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
}

// getJSON GETs path with the admin token and decodes the answer into out;
// it returns the status code.
func (s *server) getJSON(t testing.TB, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: bad JSON %q: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// batchResponse is the tracking API's answer.
type batchResponse struct {
	Success    bool `json:"success"`
	Accepted   int  `json:"accepted"`
	Duplicates int  `json:"duplicates"`
	Rejected   []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} `json:"rejected"`
}

// postBatch sends a body to /v1/batch with the write key; an error means
// no HTTP answer was read (connection refused or reset, timeout).
func postBatch(ctx context.Context, base string, body []byte) (int, batchResponse, error) {
	var br batchResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return 0, br, err
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, br, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, br, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &br); err != nil {
			return resp.StatusCode, br, fmt.Errorf("bad JSON answer %q: %w", b, err)
		}
	}
	return resp.StatusCode, br, nil
}

// profileDoc is the profile as the query API returns it.
type profileDoc struct {
	ID     string `json:"id"`
	Traits map[string]struct {
		Value     any    `json:"value"`
		Source    string `json:"source"`
		Time      string `json:"time"`
		MessageID string `json:"message_id"`
	} `json:"traits"`
	Identifiers []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identifiers"`
	MergedFrom  []string       `json:"merged_from"`
	EventCount  int            `json:"event_count"`
	EventCounts map[string]int `json:"event_counts"`
	TrackCounts map[string]int `json:"track_counts"`
}

func (p *profileDoc) hasIdentifier(typ, value string) bool {
	for _, id := range p.Identifiers {
		if id.Type == typ && id.Value == value {
			return true
		}
	}
	return false
}

// lookup finds the profile holding an identifier; ok is false on 404.
func (s *server) lookup(t testing.TB, typ, value string) (profileDoc, bool) {
	t.Helper()
	var p profileDoc
	code := s.getJSON(t, "/v1/profiles/lookup?type="+url.QueryEscape(typ)+"&value="+url.QueryEscape(value), &p)
	switch code {
	case http.StatusOK:
		return p, true
	case http.StatusNotFound:
		return p, false
	}
	t.Fatalf("lookup %s=%s: HTTP %d", typ, value, code)
	return p, false
}

// waitCaughtUp polls /readyz until the processor has applied the whole log.
func (s *server) waitCaughtUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		last = nil
		if code := s.getJSON(t, "/readyz", &last); code == http.StatusOK {
			if n, ok := last["processing_lag_events"].(float64); ok && n == 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("profile processing did not catch up within %s (last /readyz: %v)", timeout, last)
}

// openReadOnly opens one of the store's SQLite files for reading only.
func openReadOnly(t testing.TB, path string) *sql.DB {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store file: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// logCounts reads every message id in the event log with how many times it
// is there, leaving out the events Portrait appends itself (analysis
// results written back, linkage decisions): a scheduled analysis may run
// while a test sends, and those are not the client's events.
func logCounts(t testing.TB, dataDir string) map[string]int {
	t.Helper()
	db := openReadOnly(t, filepath.Join(dataDir, "events.db"))
	rows, err := db.Query(`SELECT message_id, count(*) FROM events WHERE source <> ? AND source NOT LIKE ? GROUP BY message_id`,
		portrait.SourceLinkage, portrait.SourceAnalyticsPrefix+"%")
	if err != nil {
		t.Fatalf("read the event log: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// runPortrait runs a portrait command (not serve) and returns its stdout.
func runPortrait(t testing.TB, timeout time.Duration, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("portrait %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// systemSeqs reads the sequence numbers of the events Portrait appended to
// the log itself (portrait.IsSystemSource).
func systemSeqs(t testing.TB, dataDir string) map[int64]bool {
	t.Helper()
	db := openReadOnly(t, filepath.Join(dataDir, "events.db"))
	rows, err := db.Query(`SELECT seq FROM events WHERE source = ? OR source LIKE ?`, portrait.SourceLinkage, portrait.SourceAnalyticsPrefix+"%")
	if err != nil {
		t.Fatalf("read the event log: %v", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		out[seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
