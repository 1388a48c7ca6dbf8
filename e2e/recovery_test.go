package e2e_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// customerBatch is a batch of identify and track events about users
// prefix-0..users-1 (Chinese names, mobile numbers), message ids
// prefix-b<n>-<i>.
func customerBatch(prefix string, n, size, users int) ([]byte, []string) {
	names := []string{"王芳", "李伟", "张敏", "刘洋", "陈静", "杨磊"}
	events := make([]map[string]any, size)
	ids := make([]string, size)
	at := time.Now().UTC().Add(-time.Hour)
	for i := range events {
		k := (n*size + i) % users
		id := fmt.Sprintf("%s-b%d-%d", prefix, n, i)
		ids[i] = id
		e := map[string]any{"messageId": id, "userId": fmt.Sprintf("%s-%d", prefix, k), "timestamp": at.Add(time.Duration(n*size+i) * time.Millisecond).Format(time.RFC3339Nano)}
		if i%2 == 0 {
			e["type"], e["traits"] = "identify", map[string]any{"name": names[k%len(names)], "phone": fmt.Sprintf("+86139%08d", k), "city": "杭州市"}
		} else {
			e["type"], e["event"], e["properties"] = "track", "Order Completed", map[string]any{"revenue": 88}
		}
		events[i] = e
	}
	body, _ := json.Marshal(map[string]any{"batch": events, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
	return body, ids
}

func sendOK(t *testing.T, base string, body []byte) {
	t.Helper()
	code, br, err := postBatch(context.Background(), base, body)
	if err != nil || code != http.StatusOK || len(br.Rejected) > 0 {
		t.Fatalf("batch: HTTP %d, %+v, %v", code, br, err)
	}
}

// readyz is /readyz's answer.
type readyz struct {
	Status     string  `json:"status"`
	LagEvents  float64 `json:"processing_lag_events"`
	Recoveries []struct {
		Problem string `json:"problem"`
		Action  string `json:"action"`
		MovedTo string `json:"moved_to"`
	} `json:"recoveries"`
	Cannot []struct {
		Cannot string `json:"cannot"`
		Reason string `json:"reason"`
	} `json:"cannot"`
}

func getReadyz(t *testing.T, base string) (int, readyz) {
	t.Helper()
	var out readyz
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	return resp.StatusCode, out
}

// eventCount is the profile's event_count for a user (0 when no profile).
func (s *server) eventCount(t *testing.T, user string) int {
	p, ok := s.lookup(t, "user_id", user)
	if !ok {
		return 0
	}
	return p.EventCount
}

// checkpointLog copies the log's WAL into events.db, as SQLite's automatic
// checkpoint does once the WAL has grown: what follows is only in the WAL.
func checkpointLog(t *testing.T, dataDir string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryTruncatedLogWAL: the event log loses the last pages of its
// WAL in a crash after the processor applied them. Before, the next
// events got the lost sequence numbers, were acknowledged, and never
// reached a profile while /readyz said lag 0. Now the start says so at
// ERROR, /readyz lists the recovery, the state is moved aside and rebuilt,
// and events acknowledged afterwards reach their profiles.
func TestRecoveryTruncatedLogWAL(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for n := range 3 {
		body, _ := customerBatch("kept", n, 100, 50)
		sendOK(t, s.URL(), body)
	}
	s.waitCaughtUp(t, time.Minute)
	s.stop()
	checkpointLog(t, s.dataDir)
	s.restart()
	for n := range 3 {
		body, _ := customerBatch("lost", n, 100, 50)
		sendOK(t, s.URL(), body)
	}
	s.waitCaughtUp(t, time.Minute)
	if c := s.eventCount(t, "lost-0"); c == 0 {
		t.Fatal("lost-0 has no profile before the crash")
	}
	s.kill()
	wal := filepath.Join(s.dataDir, "events.db-wal")
	st, err := os.Stat(wal)
	if err != nil || st.Size() == 0 {
		t.Fatalf("events.db-wal: %v (size %d): the later events should be only there", err, st.Size())
	}
	// The crash took the WAL's second half: its last commits are gone.
	if err := os.Truncate(wal, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	s.restart()

	code, rz := getReadyz(t, s.URL())
	if code != http.StatusOK || len(rz.Recoveries) != 1 {
		t.Fatalf("/readyz %d %+v: want the recovery listed", code, rz)
	}
	r := rz.Recoveries[0]
	if !strings.Contains(r.Problem, "the event log ends at sequence number") || !strings.Contains(r.Problem, "acknowledged events are gone") {
		t.Errorf("recovery problem %q", r.Problem)
	}
	if st, err := os.Stat(r.MovedTo); err != nil || st.Size() == 0 || filepath.Dir(r.MovedTo) != s.dataDir {
		t.Errorf("the state set aside at %q is not kept: %v", r.MovedTo, err)
	}
	logText, _ := os.ReadFile(s.logPath)
	if !strings.Contains(string(logText), "level=ERROR msg=\"store recovered at start: the event log ends at sequence number") {
		t.Errorf("no ERROR about the lost log tail in the server log")
	}
	s.waitCaughtUp(t, time.Minute)

	// Every event the log still has is in a profile, counted once.
	log := logCounts(t, s.dataDir)
	for k := range 50 {
		want := 0
		for id := range log {
			if n, i := 0, 0; func() bool { _, err := fmt.Sscanf(id, "kept-b%d-%d", &n, &i); return err == nil }() && (n*100+i)%50 == k {
				want++
			}
		}
		if got := s.eventCount(t, fmt.Sprintf("kept-%d", k)); got != want {
			t.Errorf("kept-%d: event_count %d, want %d", k, got, want)
		}
	}
	// Events acknowledged now take the lost numbers, and reach profiles.
	body, _ := customerBatch("after", 0, 100, 10)
	sendOK(t, s.URL(), body)
	s.waitCaughtUp(t, time.Minute)
	for k := range 10 {
		if got := s.eventCount(t, fmt.Sprintf("after-%d", k)); got != 10 {
			t.Errorf("after-%d: event_count %d, want 10: an acknowledged event did not reach its profile", k, got)
		}
	}
}

// TestRecoveryGarbledState: a garbled state.db no longer stops serve or
// portrait rebuild; each moves it aside (kept), says so, and rebuilds the
// profiles from the log.
func TestRecoveryGarbledState(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const users = 400
	for n := range 20 {
		body, _ := customerBatch("c", n, 100, users)
		sendOK(t, s.URL(), body)
	}
	s.waitCaughtUp(t, time.Minute)
	before := map[string]int{}
	for k := 0; k < users; k += 37 {
		u := fmt.Sprintf("c-%d", k)
		before[u] = s.eventCount(t, u)
	}
	s.stop()
	state := filepath.Join(s.dataDir, "state.db")
	garbleFile(t, state, 0, 8192) // header and first pages

	// serve
	s.restart()
	code, rz := getReadyz(t, s.URL())
	if code != http.StatusOK || len(rz.Recoveries) != 1 || !strings.Contains(rz.Recoveries[0].Problem, "state.db is damaged") {
		t.Fatalf("/readyz %d %+v: want the damaged state listed", code, rz)
	}
	if _, err := os.Stat(rz.Recoveries[0].MovedTo); err != nil {
		t.Errorf("the damaged state is not kept: %v", err)
	}
	s.waitCaughtUp(t, time.Minute)
	for u, n := range before {
		if got := s.eventCount(t, u); got != n {
			t.Errorf("%s: event_count %d after the rebuild, %d before", u, got, n)
		}
	}
	s.stop()

	// portrait rebuild, on a state.db cut to a third
	st, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(state, st.Size()/3); err != nil {
		t.Fatal(err)
	}
	out := runPortrait(t, 2*time.Minute, "rebuild", "--data", s.dataDir, "--json")
	var res struct {
		Events     int  `json:"events"`
		Profiles   int  `json:"profiles"`
		Identical  bool `json:"identical"`
		Recoveries []struct {
			Problem string `json:"problem"`
			MovedTo string `json:"moved_to"`
		} `json:"recoveries"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("rebuild --json: %q: %v", out, err)
	}
	if res.Events != 2000 || res.Profiles != users || res.Identical || len(res.Recoveries) != 1 || !strings.Contains(res.Recoveries[0].Problem, "state.db is damaged") {
		t.Fatalf("rebuild on a truncated state.db: %s", out)
	}
	if _, err := os.Stat(res.Recoveries[0].MovedTo); err != nil {
		t.Errorf("the truncated state is not kept: %v", err)
	}
	text := runPortrait(t, 2*time.Minute, "rebuild", "--data", s.dataDir)
	if !strings.Contains(string(text), "identical to before: true") {
		t.Errorf("a second rebuild, on the rebuilt state: %s", text)
	}
	s.restart()
	for u, n := range before {
		if got := s.eventCount(t, u); got != n {
			t.Errorf("%s: event_count %d after portrait rebuild, %d before", u, got, n)
		}
	}
}

func garbleFile(t *testing.T, path string, at, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestReadyzDiskFull runs serve on a real, small tmpfs (mounted in a user
// and mount namespace of its own, so no privilege is needed) and fills it:
// the real write path meets ENOSPC, as it would on a full disk. /readyz
// must then answer 503 and say what the server cannot do; after space is
// freed, the batch that failed is retried and nothing acknowledged is lost.
func TestReadyzDiskFull(t *testing.T) {
	t.Parallel()
	if err := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt").Run(); err != nil {
		t.Skipf("cannot mount a tmpfs in a user namespace here (unshare: %v); the full-disk test needs one", err)
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// unshare and sh exec: the pid is portrait's, and /proc/<pid>/root
	// reaches its tmpfs from here.
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
		`mount -t tmpfs -o size=96m tmpfs "$1" && exec "$2" serve --addr "$3" --data "$1/data"`, "sh", mnt, binPath, addr)
	cmd.Env = append(os.Environ(), "PORTRAIT_ADMIN_TOKEN="+adminToken, "PORTRAIT_WRITE_KEY="+writeKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Logf("server log:\n%s", b)
		}
	})
	base := "http://" + addr
	if err := waitHealthy(base, exited, time.Minute); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, addr: addr, dataDir: filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "root", mnt, "data")}
	if code, rz := getReadyz(t, base); code != http.StatusOK || rz.Status != "ready" {
		t.Fatalf("/readyz on an empty tmpfs: %d %+v", code, rz)
	}
	acked := 0
	for n := range 5 {
		body, _ := customerBatch("d", n, 100, 20)
		sendOK(t, base, body)
		acked += 100
	}

	// Fill the disk.
	ballast := filepath.Join(filepath.Dir(s.dataDir), "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatalf("cannot reach the server's tmpfs: %v", err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	code, rz := getReadyz(t, base)
	if code != http.StatusServiceUnavailable || rz.Status != "degraded" || !cannot(rz, "accept events", "free") {
		t.Fatalf("/readyz on a full disk: %d %+v, want 503 degraded: cannot accept events", code, rz)
	}

	// Writes now fail: a batch is refused, not acknowledged.
	var failed []byte
	for n := 5; n < 200 && failed == nil; n++ {
		body, _ := customerBatch("d", n, 100, 20)
		code, _, err := postBatch(context.Background(), base, body)
		if err != nil {
			t.Fatal(err)
		}
		switch code {
		case http.StatusOK:
			acked += 100
		case http.StatusInternalServerError, http.StatusServiceUnavailable:
			failed = body
		default:
			t.Fatalf("batch on a full disk: HTTP %d", code)
		}
	}
	if failed == nil {
		t.Fatal("200 batches acknowledged on a full disk")
	}
	code, rz = getReadyz(t, base)
	if code != http.StatusServiceUnavailable || !cannot(rz, "accept events", "the disk is full") {
		t.Fatalf("/readyz after a write failed on the full disk: %d %+v", code, rz)
	}

	// Space is freed: the SDK's retry succeeds, and everything acknowledged
	// reaches the profiles.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	sendOK(t, base, failed)
	acked += 100
	deadline := time.Now().Add(time.Minute)
	for {
		code, rz = getReadyz(t, base)
		if code == http.StatusOK && rz.LagEvents == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after space was freed: %d %+v", code, rz)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.addr = addr
	total := 0
	for k := range 20 {
		total += s.eventCount(t, fmt.Sprintf("d-%d", k))
	}
	if total != acked {
		t.Errorf("profiles count %d events, %d were acknowledged", total, acked)
	}
}

func cannot(rz readyz, what, reason string) bool {
	for _, c := range rz.Cannot {
		if c.Cannot == what && strings.Contains(c.Reason, reason) {
			return true
		}
	}
	return false
}
