package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

func TestTagsTraitsAndNPSOverHTTP(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	defer db.Close()
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyAdmin, Name: "admin"}, adminKey); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	proc := profile.NewProcessor(db, identity.DefaultRules())
	proc.Now = func() time.Time { return now }
	ten, _ := traits.New(traits.DefaultConfig(), nil)
	ts := traits.NewService(db, ten)
	ts.Each, ts.Refresh, ts.Now = db.AllProfiles, proc.Refresh, proc.Now
	gen := tag.NewEnricher()
	gs := tag.NewService(db, gen, ten.Schema)
	gs.Refresh, gs.Count, gs.Now = proc.Refresh, db.CountProfiles, proc.Now
	ts.Changed = gs.Reactivate
	proc.Enrichers = []profile.Enricher{ten, gen}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Traits, s.Tags = ts, gs
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	msg := func(out map[string]any) string {
		e, _ := out["error"].(map[string]any)
		m, _ := e["message"].(string)
		return m
	}

	for _, c := range []struct{ body, want string }{
		{`{"name":"vip","dimension":"value","expression":"revenue >"}`, "invalid expression"},
		{`{"name":"vip","dimension":"value","expression":"revenu > 10"}`, "unknown name revenu"},
		{`{"name":"vip","dimension":"value","expression":"revenue > \"x\""}`, "mismatched types"},
		{`{"name":"vip","dimension":"value","expresion":"true"}`, "unknown field"},
	} {
		if code, out := call("POST", "/v1/tags", c.body); code != 400 || !strings.Contains(msg(out), c.want) {
			t.Errorf("POST /v1/tags %s: %d %v, want 400 mentioning %q", c.body, code, out, c.want)
		}
	}
	if code, out := call("POST", "/v1/traits", `{"name":"orders_0d","aggregate":"count","event":"Order Completed","window":"0d"}`); code != 400 || !strings.Contains(msg(out), "positive") {
		t.Errorf("zero window: %d %v", code, out)
	}
	if code, out := call("POST", "/v1/traits", `{"name":"orders_90d","aggregate":"count","event":"Order Completed","window":"90d"}`); code != 201 {
		t.Fatalf("POST /v1/traits: %d %v", code, out)
	}
	// The new computed trait is in the schema, so a tag may use it.
	if code, out := call("POST", "/v1/tags", `{"name":"active_buyer","dimension":"behaviour","category":"purchase","name_zh":"活跃买家","expression":"orders_90d >= 2"}`); code != 201 {
		t.Fatalf("POST /v1/tags: %d %v", code, out)
	}
	if code, out := call("POST", "/v1/tags", `{"name":"promoter","dimension":"feedback","expression":"nps_category == \"promoter\""}`); code != 201 {
		t.Fatalf("POST /v1/tags: %d %v", code, out)
	}

	ev := func(msg, name string, at time.Duration, props string) *portrait.Event {
		return &portrait.Event{MessageID: msg, Type: portrait.EventTrack, Name: name, Source: "web", UserID: "u1",
			Properties: json.RawMessage(props), Timestamp: now.Add(-at), ReceivedAt: now}
	}
	if _, err := db.Append(ctx, []*portrait.Event{
		ev("o1", "Order Completed", 10*24*time.Hour, `{"revenue":30}`),
		ev("o2", "Order Completed", 5*24*time.Hour, `{"total":12.5}`),
		ev("s1", "Survey Submitted", 24*time.Hour, `{"nps":10,"csat":5}`),
	}, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastSeq(ctx)
	if err := proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	p, err := db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "user_id", Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	code, out := call("GET", "/v1/profiles/"+p.ID, "")
	if code != 200 {
		t.Fatalf("GET profile: %d %v", code, out)
	}
	tr := out["traits"].(map[string]any)
	for name, want := range map[string]any{"purchase_count": 2.0, "revenue": 42.5, "avg_order_value": 21.25, "orders_90d": 2.0, "lifecycle_stage": "repeat", "nps_category": "promoter"} {
		if got := tr[name].(map[string]any)["value"]; got != want {
			t.Errorf("trait %s = %v, want %v", name, got, want)
		}
	}
	tags, _ := out["tags"].([]any)
	if len(tags) != 2 || tags[0].(map[string]any)["name"] != "active_buyer" || tags[0].(map[string]any)["since"] == nil {
		t.Errorf("tags %v", out["tags"])
	}
	if code, out := call("GET", "/v1/tags", ""); code != 200 || len(out["tags"].([]any)) != 2 || out["taxonomy"] == nil || out["backfill"] == nil {
		t.Errorf("GET /v1/tags: %d %v", code, out)
	}
	if code, out := call("GET", "/v1/traits", ""); code != 200 || len(out["definitions"].([]any)) != 1 {
		t.Errorf("GET /v1/traits: %d %v", code, out)
	}
	code, out = call("GET", "/v1/analytics/nps?by=tag&interval=all", "")
	rows, _ := out["rows"].([]any)
	if code != 200 || len(rows) != 2 || rows[1].(map[string]any)["group"] != "promoter" || rows[1].(map[string]any)["nps"] != 100.0 || rows[1].(map[string]any)["csat"] != 5.0 {
		t.Errorf("GET /v1/analytics/nps: %d %v", code, out)
	}
	if code, _ := call("GET", "/v1/analytics/nps?interval=year", ""); code != 400 {
		t.Errorf("bad interval: %d", code)
	}
}
