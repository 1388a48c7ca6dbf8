package http_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
)

// TestSignInStateInTheStore: sign-in failure counts and one-time codes are
// kept in the store, not in one server's memory: a code made by one server
// (node) signs in on another, once; failures counted on one node throttle
// the client on the other, and on a server started afresh (a restart).
func TestSignInStateInTheStore(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	t.Cleanup(func() { db.Close() })
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "ops"}, adminKey); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	node := func() *consoleServer {
		s := porthttp.NewServer()
		s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
		s.Now = c.Now
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		return &consoleServer{Server: s, url: ts.URL, clock: c}
	}
	a, b := node(), node()

	// A code made on a is taken on b, once; then on a it is spent.
	link, err := a.SignInLink(ctx, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	code := link[strings.Index(link, "/console/signin"):]
	if r := b.call(t, "GET", code, "", "", nil); r.status != 303 || r.header.Get("Location") != "/" || r.cookie == nil {
		t.Fatalf("the code on another node: %d %v", r.status, r.header)
	}
	if r := a.call(t, "GET", code, "", "", nil); r.cookie != nil || r.header.Get("Location") != "/signin?reason=link" {
		t.Errorf("the code reused on the node that made it: %d %v", r.status, r.header)
	}

	// Failures: 4 on a and 5 on b (with the spent code above, 10): the
	// client is throttled on both, and on a node started afresh.
	for i := 0; i < 9; i++ {
		n := []*consoleServer{a, b}[i%2]
		if r := n.call(t, "POST", "/v1/session", `{"token":"pat_guess-`+string(rune('a'+i))+`"}`, "", nil); r.status != 401 {
			t.Fatalf("guess %d: %d %s", i, r.status, r.raw)
		}
	}
	restarted := node()
	for _, n := range []*consoleServer{a, b, restarted} {
		r := n.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil)
		if r.status != 401 || r.cookie != nil || r.header.Get("Retry-After") == "" || !strings.Contains(r.raw, "too many") {
			t.Errorf("after 10 failures over two nodes: %d %s", r.status, r.raw)
		}
	}
	c.advance(5*time.Minute + time.Second)
	if r := restarted.call(t, "POST", "/v1/session", `{"token":"`+adminKey+`"}`, "", nil); r.status != 200 || r.cookie == nil {
		t.Errorf("after the window: %d %s", r.status, r.raw)
	}
}
