package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crashConfig sizes a crash run.
type crashConfig struct {
	Workers   int // concurrent load generators
	Kills     int // SIGKILLs
	Users     int // distinct customers the events are about
	BatchSize int
	// MinBatchesPerLife is how many batches must be acknowledged after a
	// (re)start before the next kill, so that every kill hits a server
	// under load; the kill then comes after a random extra delay.
	MinBatchesPerLife int
	MaxKillDelay      time.Duration
	// ServeArgs are more serve flags (TestBusCrashDurability: --bus).
	ServeArgs []string
}

// TestCrashDurability: a load generator sends batches of 100 events from
// several goroutines while the server is killed with SIGKILL and restarted
// on the same data directory. Every batch is retried with the same
// messageIds until it is answered 200, as an SDK does. Afterwards every
// acknowledged event must be in the log exactly once, profiles must count
// every event exactly once, and `portrait rebuild` must reproduce them.
//
// The short version (5 kills, 3 with -short) runs in CI. The soak version runs with
//
//	PORTRAIT_SOAK=1 go test ./e2e/ -run TestCrashDurability -v -timeout 30m
//
// and takes PORTRAIT_SOAK_KILLS (default 25) and PORTRAIT_SOAK_WORKERS
// (default 8); see e2e/README.md.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	cfg := crashConfig{Workers: 4, Kills: 5, Users: 300, BatchSize: 100, MinBatchesPerLife: 5, MaxKillDelay: 1500 * time.Millisecond}
	if os.Getenv("PORTRAIT_SOAK") == "1" {
		cfg.Workers, cfg.Kills, cfg.Users, cfg.MinBatchesPerLife, cfg.MaxKillDelay = 8, 25, 5000, 20, 5*time.Second
		if n, err := strconv.Atoi(os.Getenv("PORTRAIT_SOAK_KILLS")); err == nil && n > 0 {
			cfg.Kills = n
		}
		if n, err := strconv.Atoi(os.Getenv("PORTRAIT_SOAK_WORKERS")); err == nil && n > 0 {
			cfg.Workers = n
		}
	} else if testing.Short() {
		cfg.Kills = 3
	}
	runCrash(t, cfg)
}

// loadGen is the load generator's ledger.
type loadGen struct {
	cfg     crashConfig
	srv     *server
	batches atomic.Int64 // acknowledged batches
	retries atomic.Int64 // requests that got no 200 and were re-sent
	// alreadyDurable counts retried batches the server already had: the
	// answer was lost in a kill after the commit.
	alreadyDurable atomic.Int64

	mu    sync.Mutex
	acked map[string]bool // messageId -> acknowledged
}

func (g *loadGen) makeBatch(worker, n int) ([]byte, []string) {
	rng := rand.New(rand.NewPCG(uint64(worker), uint64(n)))
	base := time.Now().UTC()
	events := make([]map[string]any, g.cfg.BatchSize)
	ids := make([]string, g.cfg.BatchSize)
	for i := range events {
		k := rng.IntN(g.cfg.Users)
		id := fmt.Sprintf("crash-w%d-b%d-e%d", worker, n, i)
		ids[i] = id
		user, anon := fmt.Sprintf("cu-%d", k), fmt.Sprintf("ca-%d", k)
		ts := base.Add(-time.Duration(rng.IntN(3600)) * time.Second).Format(time.RFC3339Nano)
		var e map[string]any
		switch r := rng.IntN(10); {
		case r < 2: // anonymous browsing
			e = map[string]any{"type": "page", "anonymousId": anon, "name": "商品页", "properties": map[string]any{"path": "/p/" + strconv.Itoa(rng.IntN(50))}}
		case r < 4: // identify ties the anonymous id to the user
			e = map[string]any{"type": "identify", "userId": user, "anonymousId": anon, "traits": map[string]any{
				"email": fmt.Sprintf("cu-%d@example.com", k), "name": fmt.Sprintf("客户 %d", k), "visits": rng.IntN(100)}}
		default:
			e = map[string]any{"type": "track", "userId": user, "event": "Order Completed", "properties": map[string]any{"revenue": rng.IntN(500), "order_id": id}}
		}
		e["messageId"], e["timestamp"] = id, ts
		events[i] = e
	}
	body, _ := json.Marshal(map[string]any{"batch": events, "sentAt": base.Format(time.RFC3339Nano)})
	return body, ids
}

// send delivers one batch, retrying with the same body until it is
// answered 200 (or ctx ends, which fails the test).
func (g *loadGen) send(ctx context.Context, t *testing.T, body []byte, ids []string) bool {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		code, br, err := postBatch(rctx, g.srv.URL(), body)
		cancel()
		if err == nil && code == http.StatusOK {
			if br.Accepted+br.Duplicates != len(ids) || len(br.Rejected) > 0 {
				t.Errorf("batch %s..: accepted %d + duplicates %d != %d (rejected %v)", ids[0], br.Accepted, br.Duplicates, len(ids), br.Rejected)
			}
			if attempt == 0 && br.Duplicates != 0 {
				t.Errorf("batch %s.. sent for the first time: %d duplicates reported", ids[0], br.Duplicates)
			}
			if attempt > 0 && br.Duplicates > 0 {
				g.alreadyDurable.Add(1)
			}
			g.mu.Lock()
			for _, id := range ids {
				g.acked[id] = true
			}
			g.mu.Unlock()
			g.batches.Add(1)
			return true
		}
		if err == nil && code != http.StatusServiceUnavailable && code < 500 {
			t.Errorf("batch %s..: HTTP %d, a valid batch must be accepted", ids[0], code)
			return false
		}
		g.retries.Add(1)
		select {
		case <-ctx.Done():
			t.Errorf("batch %s.. never acknowledged (%d attempts, last error %v, HTTP %d)", ids[0], attempt+1, err, code)
			return false
		case <-time.After(time.Duration(50+rand.IntN(150)) * time.Millisecond):
		}
	}
}

func runCrash(t *testing.T, cfg crashConfig) {
	s := startServer(t, cfg.ServeArgs...)
	g := &loadGen{cfg: cfg, srv: s, acked: map[string]bool{}}
	// ctx bounds the whole run: a batch unacknowledged by then fails.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				body, ids := g.makeBatch(w, n)
				if !g.send(ctx, t, body, ids) {
					return
				}
			}
		}(w)
	}

	waitBatches := func(n int64) {
		deadline := time.Now().Add(2 * time.Minute)
		for g.batches.Load() < n && time.Now().Before(deadline) && !t.Failed() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := 1; k <= cfg.Kills && !t.Failed(); k++ {
		waitBatches(g.batches.Load() + int64(cfg.MinBatchesPerLife))
		time.Sleep(time.Duration(rng.Int64N(int64(cfg.MaxKillDelay))))
		before := g.batches.Load()
		s.kill()
		t.Logf("kill %d/%d: SIGKILL with %d batches acknowledged so far", k, cfg.Kills, before)
		s.restart()
	}
	// Some load on the last life too, then let every worker finish its
	// batch in hand (retried until acknowledged).
	waitBatches(g.batches.Load() + int64(cfg.MinBatchesPerLife))
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	g.mu.Lock()
	acked := g.acked
	g.mu.Unlock()
	t.Logf("%d kills; %d batches, %d events acknowledged; %d requests re-sent; %d re-sent batches were already durable",
		cfg.Kills, g.batches.Load(), len(acked), g.retries.Load(), g.alreadyDurable.Load())

	// 1. The log: every acknowledged event exactly once, nothing else.
	// Through a bus, an acknowledged event may still be on its way to the
	// log: wait until none is (the lag counts what the bus holds).
	if len(cfg.ServeArgs) > 0 {
		s.waitCaughtUp(t, 2*time.Minute)
	}
	log := logCounts(t, s.dataDir)
	missing, twice, unknown := 0, 0, 0
	for id := range acked {
		switch n := log[id]; {
		case n == 0:
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged event %s is not in the log", id)
			}
		case n > 1:
			twice++
			if twice <= 5 {
				t.Errorf("event %s is in the log %d times", id, n)
			}
		}
	}
	for id := range log {
		if !acked[id] {
			unknown++
			if unknown <= 5 {
				t.Errorf("the log holds %s, which no acknowledged batch carried", id)
			}
		}
	}
	if missing+twice+unknown > 0 {
		t.Fatalf("event log: %d acknowledged events missing, %d duplicated, %d unknown (of %d acknowledged, %d logged)", missing, twice, unknown, len(acked), len(log))
	}
	var quarantined int
	if err := openReadOnly(t, filepath.Join(s.dataDir, "events.db")).QueryRow(`SELECT count(*) FROM quarantine`).Scan(&quarantined); err != nil {
		t.Fatal(err)
	}
	if quarantined != 0 {
		t.Errorf("%d records quarantined; every event sent was valid", quarantined)
	}

	// 2. Profiles: once processing has caught up, every event is counted
	// exactly once across profiles, through the API and in the state.
	s.waitCaughtUp(t, 2*time.Minute)
	total := len(acked)
	profiles := map[string]int{}
	for k := 0; k < cfg.Users; k++ {
		for _, id := range [][2]string{{"user_id", fmt.Sprintf("cu-%d", k)}, {"anonymous_id", fmt.Sprintf("ca-%d", k)}} {
			if p, ok := s.lookup(t, id[0], id[1]); ok {
				profiles[p.ID] = p.EventCount
			}
		}
	}
	sum := 0
	for _, n := range profiles {
		sum += n
	}
	if sum != total {
		t.Errorf("API: event_count summed over %d profiles = %d, want %d distinct events", len(profiles), sum, total)
	}
	state := openReadOnly(t, filepath.Join(s.dataDir, "state.db"))
	var stateSum, stateProfiles, rows, distinct int
	if err := state.QueryRow(`SELECT coalesce(sum(json_extract(doc, '$.event_count')), 0), count(*) FROM profiles`).Scan(&stateSum, &stateProfiles); err != nil {
		t.Fatal(err)
	}
	// profile_events also holds what Portrait appended itself (a scheduled
	// analysis that ran after a restart writes its results back as
	// events): only the client's events are counted against the acks.
	system := systemSeqs(t, s.dataDir)
	seqRows, err := state.Query(`SELECT seq FROM profile_events`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for seqRows.Next() {
		var seq int64
		if err := seqRows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		if system[seq] {
			continue
		}
		rows++
		seen[seq] = true
	}
	if err := seqRows.Err(); err != nil {
		t.Fatal(err)
	}
	seqRows.Close()
	distinct = len(seen)
	if stateSum != total || rows != total || distinct != total || stateProfiles != len(profiles) {
		t.Errorf("state: %d profiles (API reached %d), event_count sum %d, profile_events %d rows / %d distinct; want %d events",
			stateProfiles, len(profiles), stateSum, rows, distinct, total)
	}

	// 3. Rebuild: replaying the log after the last stop gives the very
	// same profiles.
	s.stop()
	var rb struct {
		Events    int64  `json:"events"`
		Profiles  int    `json:"profiles"`
		Identical bool   `json:"identical"`
		Before    string `json:"digest_before"`
		After     string `json:"digest_after"`
	}
	out := runPortrait(t, 5*time.Minute, "rebuild", "--json", "--data", s.dataDir)
	if err := json.Unmarshal(out, &rb); err != nil {
		t.Fatalf("portrait rebuild --json: %v: %s", err, out)
	}
	t.Logf("rebuild: %s", out)
	logged := total + len(systemSeqs(t, s.dataDir)) // the server is stopped: the log is final
	if !rb.Identical || rb.Events != int64(logged) || rb.Profiles != len(profiles) {
		t.Errorf("portrait rebuild: identical=%v events=%d profiles=%d; want true, %d (%d acknowledged + Portrait's own), %d", rb.Identical, rb.Events, rb.Profiles, logged, total, len(profiles))
	}
}
