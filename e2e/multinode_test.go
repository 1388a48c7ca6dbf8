package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// skipWithoutPostgresStore skips when the binary answers that it has no
// PostgreSQL store (a build before postgres/ is wired into serve).
func skipWithoutPostgresStore(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--store", "postgres://nobody@127.0.0.1:1/none")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	if strings.Contains(out.String(), "not built into this binary") {
		t.Skipf("portrait serve has no PostgreSQL store in this build: %s", strings.TrimSpace(out.String()))
	}
}

// TestMultiNode is issue 17 §6: two nodes --role ingest,process and one
// --role api on loopback ports, over a fresh PostgreSQL database and a NATS
// stream of their own. Batches go to both ingest nodes (as the SDKs send
// them, retried with the same messageIds until answered 200); one of the
// process nodes is killed with SIGKILL mid-run and restarted. Afterwards,
// through the api node: every acknowledged event is in the log exactly
// once and counted once in profiles; and `portrait rebuild` (one processor
// replaying the same log) finds the profiles identical.
func TestMultiNode(t *testing.T) {
	skipWithoutPostgresStore(t)
	natsU := natstest.URL(t)
	pg := pgtest.URL(t)
	stream := natstest.Stream(t, natsU, "portrait_e2e")
	common := []string{"--store", pg, "--bus", natsU, "--bus-stream", stream, "--bus-partitions", "8",
		"--lease-ttl", "2s", "--bus-ack-wait", "3s", "--analytics-every", "0"}
	n1 := startServer(t, append([]string{"--role", "ingest,process", "--node", "n1"}, common...)...)
	n2 := startServer(t, append([]string{"--role", "ingest,process", "--node", "n2"}, common...)...)
	api := startServer(t, append([]string{"--role", "api", "--node", "api"}, common...)...)

	// Each role answers its own routes only.
	if code, _, err := postBatch(context.Background(), api.URL(), []byte(`{"batch":[]}`)); err != nil || code != 404 {
		t.Errorf("the api node answered a batch with HTTP %d (%v), want 404", code, err)
	}
	if code := n1.getJSON(t, "/v1/profiles/lookup?type=user_id&value=x", nil); code != 404 {
		t.Errorf("an ingest node answered a lookup with HTTP %d, want 404", code)
	}

	cfg := crashConfig{Workers: 4, Users: 300, BatchSize: 100}
	gens := []*loadGen{{cfg: cfg, srv: n1, acked: map[string]bool{}}, {cfg: cfg, srv: n2, acked: map[string]bool{}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			g := gens[w%2]
			for n := 0; !stop.Load(); n++ {
				body, ids := g.makeBatch(w, n)
				if !g.send(ctx, t, body, ids) {
					return
				}
			}
		}(w)
	}
	batches := func() int64 { return gens[0].batches.Load() + gens[1].batches.Load() }
	waitBatches := func(n int64) {
		deadline := time.Now().Add(2 * time.Minute)
		for batches() < n && time.Now().Before(deadline) && !t.Failed() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitBatches(20)
	before := batches()
	n2.kill()
	t.Logf("SIGKILL of n2 with %d batches acknowledged", before)
	time.Sleep(time.Second)
	n2.restart()
	waitBatches(batches() + 20)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	acked := map[string]bool{}
	for _, g := range gens {
		for id := range g.acked {
			acked[id] = true
		}
	}
	t.Logf("%d batches, %d events acknowledged by two ingest nodes; %d requests re-sent", batches(), len(acked), gens[0].retries.Load()+gens[1].retries.Load())

	api.waitCaughtUp(t, 3*time.Minute)

	// 1. The log: every acknowledged event once, nothing else.
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT message_id, count(*) FROM events WHERE source <> $1 AND source NOT LIKE $2 GROUP BY message_id`,
		portrait.SourceLinkage, portrait.SourceAnalyticsPrefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		logged[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, twice, unknown := 0, 0, 0
	for id := range acked {
		switch logged[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	for id := range logged {
		if !acked[id] {
			unknown++
		}
	}
	if missing+twice+unknown > 0 {
		t.Fatalf("event log: %d acknowledged events missing, %d duplicated, %d unknown (of %d acknowledged, %d logged)", missing, twice, unknown, len(acked), len(logged))
	}

	// 2. Profiles through the api node: every event counted once.
	profiles := map[string]int{}
	for k := 0; k < cfg.Users; k++ {
		for _, id := range [][2]string{{"user_id", fmt.Sprintf("cu-%d", k)}, {"anonymous_id", fmt.Sprintf("ca-%d", k)}} {
			if p, ok := api.lookup(t, id[0], id[1]); ok {
				profiles[p.ID] = p.EventCount
			}
		}
	}
	sum := 0
	for _, n := range profiles {
		sum += n
	}
	if sum != len(acked) {
		t.Errorf("api node: event_count summed over %d profiles = %d, want %d distinct events", len(profiles), sum, len(acked))
	}

	// 3. One processor replaying the same log gives the same profiles.
	n1.stop()
	n2.stop()
	api.stop()
	var rb struct {
		Events    int64 `json:"events"`
		Profiles  int   `json:"profiles"`
		Identical bool  `json:"identical"`
	}
	out := runPortrait(t, 5*time.Minute, "rebuild", "--json", "--store", pg, "--data", t.TempDir())
	if err := json.Unmarshal(out, &rb); err != nil {
		t.Fatalf("portrait rebuild --json: %v: %s", err, out)
	}
	t.Logf("rebuild: %s", out)
	if !rb.Identical || rb.Profiles != len(profiles) {
		t.Errorf("portrait rebuild: identical=%v profiles=%d; want true, %d", rb.Identical, rb.Profiles, len(profiles))
	}
}
