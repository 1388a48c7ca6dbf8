package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/tag"
)

// An api node opens a store that accepts no writes (a database whose
// transactions are read-only by default, as a standby's are): no
// migration runs, the schema version is checked, reads work, and writes
// are refused with a message saying why; a node with any other role is
// refused at start.
func TestAPINodeOnAReadOnlyStore(t *testing.T) {
	dbURL := pgtest.Dedicated(t, "")
	ctx := context.Background()
	// Through the primary: the schema and one tag.
	rw, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if rw.ReadOnly() {
		t.Fatal("a writable database opened read-only")
	}
	if err := rw.SaveTag(ctx, &tag.Definition{Name: "seen", Dimension: "basic", Expression: `event_count >= 1`}); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	u, _ := url.Parse(dbURL)
	name := strings.TrimPrefix(u.Path, "/")
	c, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	ro, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("opening a read-only store: %v", err)
	}
	if !ro.ReadOnly() {
		t.Error("a read-only database opened writable")
	}
	if tags, err := ro.Tags(ctx); err != nil || len(tags) != 1 {
		t.Errorf("reading the tags of a read-only store: %v, %v", tags, err)
	}
	if err := ro.SaveTag(ctx, &tag.Definition{Name: "other", Dimension: "basic", Expression: `event_count >= 2`}); err == nil {
		t.Error("a write to a read-only store succeeded")
	}
	ro.Close()

	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: dbURL, LogLevel: "error"}
	cfg.Role, cfg.Node = "all", "writer"
	if a, err := OpenApp(ctx, cfg, io.Discard); err == nil {
		a.Close()
		t.Fatal("a node with every role started on a read-only store")
	} else if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(portrait.ErrorMessage(err), "accepts none") {
		t.Errorf("role all on a read-only store: %v", err)
	}
	a := openSharedApp(t, dbURL, "reader", "api")
	if got := a.Enrich.Tags.List(); len(got) != 1 || got[0].Name != "seen" {
		t.Errorf("the api node holds tags %v", got)
	}
	resp, err := http.Post(a.HTTP.URL()+"/v1/tags", "application/json", bytes.NewReader([]byte(`{"name":"x","dimension":"basic","expression":"event_count >= 3"}`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "accepts no writes") {
		t.Errorf("a write through the read-only api node: HTTP %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(a.HTTP.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health of the read-only api node: HTTP %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
}
