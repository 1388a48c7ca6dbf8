package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// partitionedPeople are people whose anonymous events go to one partition
// and whose identified events and alias go to another: every one of them
// is a merge across partitions, decided by whichever node applies the
// alias, while the other node applies their browsing.
func partitionedPeople(t *testing.T, people, parts int) (anon, user []string) {
	t.Helper()
	// (FNV-1a modulo a power of two depends on the low bits of each byte
	// only: ids of one shape, such as "pa-k" and "pu-k", land together;
	// the two kinds of id here differ in length.)
	for k := 0; len(anon) < people; k++ {
		if k > 100*people {
			t.Fatalf("no anonymous and user ids on different partitions among %d", k)
		}
		a, u := fmt.Sprintf("anon-%d", k), fmt.Sprintf("pu-%d", 7*k+3)
		pa := portrait.Partition(&portrait.Event{AnonymousID: a}, parts)
		pu := portrait.Partition(&portrait.Event{UserID: u}, parts)
		if pa != pu {
			anon, user = append(anon, a), append(user, u)
		}
	}
	return anon, user
}

// TestMultiNodePartitioned is the test of partitioned application
// (docs/scaling.md, serve --apply partitioned): two nodes --role
// ingest,process that each apply the partitions they consume, and one
// --role api, over a fresh PostgreSQL database and a NATS stream. 20
// people's anonymous events are on one partition and their identified
// events and alias on another, among 5,000 other events; one process node
// is killed with SIGKILL mid-run and restarted. Afterwards every
// acknowledged event is logged once and applied once (profile_events holds
// each logged event once), no merge is journalled twice, each person is
// one profile holding all their events, and `portrait rebuild` (one
// processor replaying the log) finds the profiles identical.
func TestMultiNodePartitioned(t *testing.T) {
	skipWithoutPostgresStore(t)
	natsU := natstest.URL(t)
	pg := pgtest.URL(t)
	const parts = 8
	stream := natstest.Stream(t, natsU, "portrait_e2e")
	common := []string{"--store", pg, "--bus", natsU, "--bus-stream", stream, "--bus-partitions", fmt.Sprint(parts),
		"--lease-ttl", "2s", "--bus-ack-wait", "3s", "--analytics-every", "0", "--apply", "partitioned"}
	n1 := startServer(t, append([]string{"--role", "ingest,process", "--node", "n1"}, common...)...)
	n2 := startServer(t, append([]string{"--role", "ingest,process", "--node", "n2"}, common...)...)
	api := startServer(t, append([]string{"--role", "api", "--node", "api"}, common...)...)

	// The events: each person browses anonymously (6 pages), is identified
	// (traits) and aliased in the middle of the browsing, and buys after.
	rng := rand.New(rand.NewPCG(17, 17))
	base := time.Now().UTC().Add(-time.Hour)
	var events []map[string]any
	add := func(e map[string]any, at time.Duration) {
		e["messageId"] = fmt.Sprintf("pt-%05d", len(events))
		e["timestamp"] = base.Add(at).Format(time.RFC3339Nano)
		events = append(events, e)
	}
	anon, user := partitionedPeople(t, 20, parts)
	perPerson := 9
	for k := range anon {
		at := time.Duration(k) * time.Minute
		for i := range 6 {
			add(map[string]any{"type": "page", "anonymousId": anon[k], "name": "商品页", "properties": map[string]any{"path": fmt.Sprintf("/p/%d", i)}}, at+time.Duration(i*5)*time.Second)
		}
		add(map[string]any{"type": "identify", "userId": user[k], "traits": map[string]any{"email": user[k] + "@example.com", "plan": "gold"}}, at+2*time.Second)
		add(map[string]any{"type": "alias", "userId": user[k], "previousId": anon[k]}, at+12*time.Second)
		add(map[string]any{"type": "track", "userId": user[k], "event": "Order Completed", "properties": map[string]any{"revenue": 10 + k}}, at+40*time.Second)
	}
	for i := range 5000 {
		k := rng.IntN(400)
		at := time.Duration(rng.IntN(3600)) * time.Second
		switch r := rng.IntN(10); {
		case r < 3:
			add(map[string]any{"type": "page", "anonymousId": fmt.Sprintf("oa-%d", k), "name": "首页"}, at)
		case r < 5:
			add(map[string]any{"type": "identify", "userId": fmt.Sprintf("ou-%d", k), "anonymousId": fmt.Sprintf("oa-%d", k), "traits": map[string]any{"visits": i}}, at)
		default:
			add(map[string]any{"type": "track", "userId": fmt.Sprintf("ou-%d", k), "event": "Viewed", "properties": map[string]any{"n": i}}, at)
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	var bodies [][]byte
	var idsOf [][]string
	for i := 0; i < len(events); i += 50 {
		b := events[i:min(i+50, len(events))]
		body, _ := json.Marshal(map[string]any{"batch": b, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
		var ids []string
		for _, e := range b {
			ids = append(ids, e["messageId"].(string))
		}
		bodies, idsOf = append(bodies, body), append(idsOf, ids)
	}

	// Sent by 4 clients to both ingest nodes in turn, each batch retried
	// with the same messageIds until answered 200; n2 is killed a third of
	// the way through and restarted.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next, sent atomic.Int64
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || t.Failed() {
					return
				}
				for attempt := 0; ; attempt++ {
					srv := []*server{n1, n2}[(i+attempt+w)%2]
					rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
					code, br, err := postBatch(rctx, srv.URL(), bodies[i])
					rcancel()
					if err == nil && code == http.StatusOK {
						if br.Accepted+br.Duplicates != len(idsOf[i]) || len(br.Rejected) > 0 {
							t.Errorf("batch %d: accepted %d + duplicates %d != %d (rejected %v)", i, br.Accepted, br.Duplicates, len(idsOf[i]), br.Rejected)
						}
						mu.Lock()
						for _, id := range idsOf[i] {
							acked[id] = true
						}
						mu.Unlock()
						sent.Add(1)
						break
					}
					if err == nil && code != http.StatusServiceUnavailable && code < 500 {
						t.Errorf("batch %d: HTTP %d, a valid batch must be accepted", i, code)
						return
					}
					select {
					case <-ctx.Done():
						t.Errorf("batch %d never acknowledged (last error %v, HTTP %d)", i, err, code)
						return
					case <-time.After(time.Duration(50+rand.IntN(150)) * time.Millisecond):
					}
				}
			}
		}()
	}
	for sent.Load() < int64(len(bodies)/3) && !t.Failed() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	n2.kill()
	t.Logf("SIGKILL of n2 with %d of %d batches acknowledged", sent.Load(), len(bodies))
	time.Sleep(time.Second)
	n2.restart()
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acked) != len(events) {
		t.Fatalf("%d events acknowledged of %d sent", len(acked), len(events))
	}
	api.waitCaughtUp(t, 3*time.Minute)

	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	// 1. The log: every acknowledged event once, with its partition.
	if n := count(`SELECT count(*) FROM events WHERE message_id LIKE 'pt-%'`); n != len(acked) {
		t.Errorf("the log holds %d of the %d acknowledged events", n, len(acked))
	}
	if n := count(`SELECT count(*) FROM events WHERE message_id LIKE 'pt-%' AND partition IS NULL`); n != 0 {
		t.Errorf("%d events consumed from the bus were logged without their partition", n)
	}
	// 2. Applied once: each logged event in profile_events exactly once.
	if n := count(`SELECT count(*) FROM events e WHERE e.type <> $1 AND NOT EXISTS (SELECT 1 FROM profile_events pe WHERE pe.seq = e.seq)`, portrait.EventErased); n != 0 {
		t.Errorf("%d logged events applied to no profile", n)
	}
	if n := count(`SELECT count(*) - count(DISTINCT seq) FROM profile_events`); n != 0 {
		t.Errorf("%d events applied more than once", n)
	}
	if n := count(`SELECT count(*) FROM (SELECT 1 FROM merges GROUP BY kind, into_id, from_id, message_id, reason HAVING count(*) > 1) x`); n != 0 {
		t.Errorf("%d merge decisions journalled twice", n)
	}
	if n := count(`SELECT count(*) FROM identities WHERE profile_id = ''`); n != 0 {
		t.Errorf("%d identity claims left without an owner", n)
	}
	// 3. Each person is one profile through the api node, with every
	// event of theirs.
	for k := range anon {
		pa, okA := api.lookup(t, "anonymous_id", anon[k])
		pu, okU := api.lookup(t, "user_id", user[k])
		if !okA || !okU || pa.ID != pu.ID {
			t.Errorf("person %d: anonymous id on %q, user id on %q: want one profile", k, pa.ID, pu.ID)
			continue
		}
		if pu.EventCount != perPerson || pu.Traits["email"].Value != user[k]+"@example.com" {
			t.Errorf("person %d: %d events, email %v; want %d and their email", k, pu.EventCount, pu.Traits["email"].Value, perPerson)
		}
	}
	profiles := count(`SELECT count(*) FROM profiles`)

	// 4. One processor replaying the same log gives the same profiles.
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
	if !rb.Identical || rb.Profiles != profiles {
		t.Errorf("portrait rebuild: identical=%v profiles=%d; want true, %d", rb.Identical, rb.Profiles, profiles)
	}
}
