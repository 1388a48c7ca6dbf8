package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/membus"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func TestParseRoles(t *testing.T) {
	for in, want := range map[string]string{
		"": "ingest,process,api", "all": "ingest,process,api", "ingest": "ingest", "ingest,process": "ingest,process",
		" api , process ": "process,api",
	} {
		r, err := parseRoles(in)
		if err != nil || r.String() != want {
			t.Errorf("parseRoles(%q) = %q, %v; want %q", in, r, err, want)
		}
	}
	if _, err := parseRoles("ingest,apply"); err == nil {
		t.Error("an unknown role was accepted")
	}
}

// TestServeRefusesWhatCannotWork: a role short of all on the embedded
// store, a PostgreSQL URL in a build without that store, and an unknown
// store or bus scheme, each with a message that says what to do.
func TestServeRefusesWhatCannotWork(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: dir, nodeConfig: nodeConfig{Role: "api"}}, "needs a shared store"},
		{Config{DataDir: dir, nodeConfig: nodeConfig{Role: "ingest,process"}}, "needs a shared store"},
		// A role the local server does not know: refused, with the
		// password kept out of the message.
		{Config{Store: "postgres://portrait_nobody:secret@127.0.0.1:5432/p"}, "cannot connect to PostgreSQL"},
		{Config{Store: "mysql://x"}, "use sqlite:DIR or postgres://"},
		{Config{DataDir: dir, Bus: "kafka://x"}, "use nats://host:port"},
		// Partitioned application locks rows: the embedded store has none
		// to lock, and an unknown mode is named.
		{Config{DataDir: dir, nodeConfig: nodeConfig{Apply: "partitioned"}}, "needs a store that locks rows"},
		{Config{DataDir: dir, nodeConfig: nodeConfig{Apply: "sharded"}}, "use leased"},
	} {
		a, err := OpenApp(ctx, c.cfg, io.Discard)
		if err == nil {
			a.Close()
			t.Errorf("%+v: opened", c.cfg)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.cfg, err, c.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("the store's password is in the error: %v", err)
		}
	}
	// The data directory was let go after each refusal: a real open works.
	a, err := OpenApp(ctx, Config{DataDir: dir, LogLevel: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

// TestRoleFilter: an ingest-only node answers the tracking API and health
// only; an api-only node everything but the tracking API.
func TestRoleFilter(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	ingest, _ := parseRoles("ingest,process")
	api, _ := parseRoles("api")
	all, _ := parseRoles("all")
	if roleFilter(all) != nil {
		t.Error("a node with every role filters routes")
	}
	for _, c := range []struct {
		r     roles
		path  string
		serve bool
	}{
		{ingest, "/v1/batch", true}, {ingest, "/v1/track", true}, {ingest, "/v1/import", true}, {ingest, "/healthz", true},
		{ingest, "/readyz", true}, {ingest, "/metrics", true},
		{ingest, "/v1/profiles/lookup", false}, {ingest, "/v1/segments", false}, {ingest, "/", false}, {ingest, "/v1/imports", false},
		{api, "/v1/batch", false}, {api, "/v1/identify", false}, {api, "/v1/profiles/x", true}, {api, "/", true}, {api, "/readyz", true},
	} {
		w := httptest.NewRecorder()
		roleFilter(c.r)(ok).ServeHTTP(w, httptest.NewRequest(http.MethodPost, c.path, nil))
		if got := w.Code == http.StatusTeapot; got != c.serve {
			t.Errorf("role %s, %s: served %v (HTTP %d %s)", c.r, c.path, got, w.Code, w.Body.String())
		}
	}
}

// TestBusLogAcknowledgesOnTheBus: through an ingest node's log, accepted
// events go to the bus and not to the store's log; rejected records are
// quarantined in the store, as on a single node.
func TestBusLogAcknowledgesOnTheBus(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bus := membus.New(1)
	l := &busLog{Store: db, bus: bus}
	now := time.Now().UTC()
	evs := []*portrait.Event{
		{MessageID: "m1", Type: portrait.EventTrack, Source: "web", UserID: "u1", Name: "Viewed", Timestamp: now, ReceivedAt: now},
		{MessageID: "m2", Type: portrait.EventPage, Source: "web", AnonymousID: "a1", Timestamp: now, ReceivedAt: now},
	}
	res, err := l.Append(ctx, evs, []*portrait.Rejected{{Source: "web", Reason: "bad", Raw: []byte(`{"x":1}`), ReceivedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 {
		t.Errorf("accepted %d, want 2", res.Accepted)
	}
	if last, err := db.LastSeq(ctx); err != nil || last != 0 {
		t.Errorf("the store's log ends at %d (%v): events went around the bus", last, err)
	}
	q, err := db.ListQuarantine(ctx, portrait.QuarantineFilter{Limit: 10})
	if err != nil || len(q) != 1 || q[0].Reason != "bad" {
		t.Errorf("quarantine: %v %v, want the one rejected record", q, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got []string
	bus.Consume(cctx, 0, func(_ context.Context, batch []*portrait.Event) error {
		for _, e := range batch {
			got = append(got, e.MessageID)
		}
		if len(got) >= 2 {
			cancel()
		}
		return nil
	})
	if len(got) != 2 {
		t.Errorf("the bus holds %v, want m1 and m2", got)
	}
}
