package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/nats/natstest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// feedStore is one embedded store shared by several apps of one test
// process, standing in for a shared store: it keeps a change feed of the
// profiles its state transactions write, entered once their writes are
// durable, which is what the PostgreSQL store's ProfileChanges gives.
type feedStore struct {
	*sqlite.DB
	mu      sync.Mutex
	pending []feedEntry // committed, maybe still being written
	feed    recordedFeed
}

func (s *feedStore) BeginState(ctx context.Context) (profile.StateTx, error) {
	tx, err := s.DB.BeginState(ctx)
	if err != nil {
		return nil, err
	}
	return &feedTx{StateTx: tx, s: s}, nil
}

// Close leaves the shared store open: the test closes it.
func (s *feedStore) Close() error { return nil }

func (s *feedStore) ProfileChanges(ctx context.Context, after int64, limit int) ([]string, []string, int64, error) {
	// What was committed before this call is written once WaitState
	// returns: only then does it enter the feed.
	s.mu.Lock()
	ready := s.pending
	s.pending = nil
	s.mu.Unlock()
	if err := s.DB.WaitState(ctx); err != nil {
		s.mu.Lock()
		s.pending = append(ready, s.pending...)
		s.mu.Unlock()
		return nil, nil, after, err
	}
	s.feed.mu.Lock()
	s.feed.entries = append(s.feed.entries, ready...)
	s.feed.mu.Unlock()
	return s.feed.ProfileChanges(ctx, after, limit)
}

type feedTx struct {
	profile.StateTx
	s   *feedStore
	mu  sync.Mutex // PutProfile may be called from several goroutines
	ids []feedEntry
}

func (t *feedTx) note(id string, deleted bool) {
	t.mu.Lock()
	t.ids = append(t.ids, feedEntry{id: id, deleted: deleted})
	t.mu.Unlock()
}

func (t *feedTx) PutProfile(p *portrait.Profile) error {
	t.note(p.ID, false)
	return t.StateTx.PutProfile(p)
}

func (t *feedTx) PutProfiles(ps []*portrait.Profile) error {
	for _, p := range ps {
		t.note(p.ID, false)
	}
	return t.StateTx.PutProfiles(ps)
}

func (t *feedTx) DeleteProfile(id string) error {
	t.note(id, true)
	return t.StateTx.DeleteProfile(id)
}

func (t *feedTx) Commit() error {
	if err := t.StateTx.Commit(); err != nil {
		return err
	}
	t.s.mu.Lock()
	t.s.pending = append(t.s.pending, t.ids...)
	t.s.mu.Unlock()
	return nil
}

// TestNodesOverASharedStore runs serve's wiring for several nodes in one
// process: two "ingest,process" apps and one "api" app over one shared
// store (openPostgres answering with a store shared by the three) and a
// NATS stream. Batches go to both ingest nodes; exactly one node applies;
// the applier stops and the other takes over; afterwards every event is
// in the log once and applied once, the api node's segment index (kept by
// the change feed) holds exactly the stored profiles, and one processor
// replaying the log gives the same profiles.
func TestNodesOverASharedStore(t *testing.T) {
	url := natstest.URL(t)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	shared := &feedStore{DB: db}
	saved := openPostgres
	openPostgres = func(context.Context, string, storeOptions) (Store, error) { return shared, nil }
	defer func() { openPostgres = saved }()
	stream := natstest.Stream(t, url, "portrait_nodes")
	open := func(name, role string) *App {
		t.Helper()
		cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: "postgres://shared.test/portrait", Bus: url, LogLevel: "error"}
		cfg.BusStream, cfg.BusPartitions, cfg.BusAckWait, cfg.LeaseTTL = stream, 4, 3*time.Second, 1500*time.Millisecond
		cfg.Role, cfg.Node = role, name
		a, err := OpenApp(ctx, cfg, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	n1, n2, api := open("n1", "ingest,process"), open("n2", "ingest,process"), open("api", "api")
	const wk = "nodes-write-key"
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: "web"}, wk); err != nil {
		t.Fatal(err)
	}
	// Some traits depend on the instant they are evaluated at (days in a
	// journey stage, days since the last purchase, rounded to hundredths
	// of a day): the nodes and the replay below evaluate them as of one
	// instant, as `portrait rebuild` does, or a write and the replay that
	// straddle a rounding step differ.
	asOf := time.Now().UTC()
	clock := func() time.Time { return asOf }
	for _, a := range []*App{n1, n2, api} {
		a.Proc.Now = clock
		if a.Enrich != nil {
			a.Enrich.Traits.Now = clock
		}
	}
	for _, a := range []*App{n1, n2, api} {
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	sent := 0
	post := func(a *App, batch int) {
		t.Helper()
		var evs []map[string]any
		for i := range 50 {
			k := (batch*50 + i) % 97
			e := map[string]any{"messageId": fmt.Sprintf("m-%d-%d", batch, i), "timestamp": time.Date(2026, 4, 1, 0, 0, batch*50+i, 0, time.UTC).Format(time.RFC3339)}
			switch i % 3 {
			case 0:
				e["type"], e["anonymousId"], e["name"] = "page", fmt.Sprintf("a-%d", k), "home"
			case 1:
				e["type"], e["userId"], e["anonymousId"] = "identify", fmt.Sprintf("u-%d", k), fmt.Sprintf("a-%d", k)
				e["traits"] = map[string]any{"email": fmt.Sprintf("u%d@example.com", k)}
			default:
				e["type"], e["userId"], e["event"] = "track", fmt.Sprintf("u-%d", k), "Order Completed"
			}
			evs = append(evs, e)
		}
		body, _ := json.Marshal(map[string]any{"batch": evs})
		req, _ := http.NewRequest(http.MethodPost, a.HTTP.URL()+"/v1/batch", bytes.NewReader(body))
		req.SetBasicAuth(wk, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch %d to %s: HTTP %d %s", batch, a.Config.Node, resp.StatusCode, b)
		}
		sent += len(evs)
	}
	caughtUp := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			// lag fails when it cannot read the store in 2 s (a loaded
			// machine); the stored checkpoint must also have reached
			// every event sent.
			n, _, err := api.lag()
			if err == nil && n == 0 {
				last, err1 := db.LastSeq(ctx)
				cp, err2 := db.Checkpoint(ctx, profile.CheckpointName)
				if err1 == nil && err2 == nil && last >= int64(sent) && cp >= last {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: lag %d events after 60 s", what, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The api node takes no events; an ingest node serves no admin API.
	req, _ := http.NewRequest(http.MethodPost, api.HTTP.URL()+"/v1/batch", bytes.NewReader([]byte(`{"batch":[]}`)))
	req.SetBasicAuth(wk, "")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("api node and a batch: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	for b := range 10 {
		post([]*App{n1, n2}[b%2], b)
	}
	caughtUp("two nodes")
	if n1.applying.Load() == n2.applying.Load() || api.applying.Load() {
		t.Fatalf("applying: n1 %v, n2 %v, api %v; want exactly one process node", n1.applying.Load(), n2.applying.Load(), api.applying.Load())
	}
	// The applier stops; the other takes over and applies what follows.
	applier, other := n1, n2
	if n2.applying.Load() {
		applier, other = n2, n1
	}
	// Scheduled jobs and deliveries: on the api node (the only one with
	// the api role), under the jobs lease.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := api.bus.LeaseHolder(ctx, "jobs")
		if err != nil {
			t.Fatal(err)
		}
		if h == "api" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the jobs lease is held by %q, want the api node", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Profile rewrites outside the log: on the applier only.
	if err := applier.mayRewrite(); err != nil {
		t.Errorf("the applier may not rewrite profiles: %v", err)
	}
	_, err = api.HTTP.Erasure.EraseByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u-1"}, "test", "test")
	if portrait.ErrorCode(err) != portrait.EUNAVAILABLE {
		t.Errorf("an erasure on the api node: %v, want it refused (unavailable)", err)
	}
	if _, err := api.Enrich.Tags.Refresh(ctx); portrait.ErrorCode(err) != portrait.EUNAVAILABLE {
		t.Errorf("a tag refresh on the api node: %v, want it refused", err)
	}
	applier.Close()
	for b := 10; b < 20; b++ {
		post(other, b)
	}
	caughtUp("after the applier stopped")
	if !other.applying.Load() {
		t.Fatal("the remaining node does not apply")
	}

	logged := map[string]int{}
	events, err := db.ReadLog(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		logged[e.MessageID]++
	}
	if len(events) != sent || len(logged) != sent {
		t.Errorf("log: %d events, %d distinct; sent %d", len(events), len(logged), sent)
	}
	sum, profiles := 0, 0
	if err := db.AllProfiles(ctx, func(p *portrait.Profile) error { sum += p.EventCount; profiles++; return nil }); err != nil {
		t.Fatal(err)
	}
	if sum != sent {
		t.Errorf("event_count summed over %d profiles = %d, want %d", profiles, sum, sent)
	}
	deadline = time.Now().Add(20 * time.Second)
	for api.HTTP.Segments.Index.Len() != profiles && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := api.HTTP.Segments.Index.Len(); n != profiles {
		t.Errorf("the api node's segment index holds %d profiles, the store %d", n, profiles)
	}
	if n := n1.HTTP.Segments; n != nil {
		t.Errorf("a process node built a segment index")
	}

	got, n, err := profilesDigest(ctx, db, map[[2]string]time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	// Copies: the events sent are held by the shared store's log tail,
	// which its processor may still be reading; Append numbers what it is
	// given.
	again := make([]*portrait.Event, len(events))
	for i, e := range events {
		c := *e
		c.Seq = 0
		again[i] = &c
	}
	res, err := ref.Append(ctx, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Configured as the nodes' (cleaning, computed traits, tags...).
	proc := profile.NewProcessor(ref, other.Rules)
	proc.Standardize, proc.Enrichers, proc.OnceTraits, proc.SourcePriority = other.Proc.Standardize, other.Proc.Enrichers, other.Proc.OnceTraits, other.Proc.SourcePriority
	proc.Now = clock
	if err := proc.CatchUp(ctx, res.LastSeq); err != nil {
		t.Fatal(err)
	}
	want, wantN, err := profilesDigest(ctx, ref, map[[2]string]time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want || n != wantN {
		t.Errorf("profiles over nodes: %d, digest %s; one processor: %d, digest %s", n, got, wantN, want)
		diffProfiles(t, ctx, db, ref)
	}
}

// diffProfiles logs the profiles two stores hold differently, as the
// digest sees them, so that a digest mismatch says which traits differ and
// their provenance (source, event time, message id).
func diffProfiles(t *testing.T, ctx context.Context, a, b interface {
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
}) {
	t.Helper()
	load := func(db interface {
		AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	}) map[string]*portrait.Profile {
		m := map[string]*portrait.Profile{}
		if err := db.AllProfiles(ctx, func(p *portrait.Profile) error { m[p.ID] = p; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	am, bm := load(a), load(b)
	shown := 0
	for id, pa := range am {
		pb := bm[id]
		if pb == nil {
			t.Logf("profile %s: only over nodes", id)
			continue
		}
		pa.UpdatedAt, pb.UpdatedAt = time.Time{}, time.Time{}
		for i := range pa.Tags {
			pa.Tags[i].Since = time.Time{}
		}
		for i := range pb.Tags {
			pb.Tags[i].Since = time.Time{}
		}
		ja, _ := json.Marshal(pa)
		jb, _ := json.Marshal(pb)
		if bytes.Equal(ja, jb) {
			continue
		}
		if shown++; shown > 5 {
			continue
		}
		for k, ta := range pa.Traits {
			if tb, ok := pb.Traits[k]; !ok {
				t.Logf("profile %s trait %s: over nodes %+v, not in the replay", id, k, ta)
			} else if x, y := fmt.Sprintf("%+v", ta), fmt.Sprintf("%+v", tb); x != y {
				t.Logf("profile %s trait %s: over nodes %s; replay %s", id, k, x, y)
			}
		}
		for k, tb := range pb.Traits {
			if _, ok := pa.Traits[k]; !ok {
				t.Logf("profile %s trait %s: only in the replay %+v", id, k, tb)
			}
		}
		pa.Traits, pb.Traits = nil, nil
		ja, _ = json.Marshal(pa)
		jb, _ = json.Marshal(pb)
		if !bytes.Equal(ja, jb) {
			t.Logf("profile %s over nodes: %s", id, ja)
			t.Logf("profile %s replay:     %s", id, jb)
		}
	}
	for id := range bm {
		if am[id] == nil {
			t.Logf("profile %s: only in the replay", id)
		}
	}
	t.Logf("%d profiles differ", shown)
}
