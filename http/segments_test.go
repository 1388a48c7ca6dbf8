package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

func TestSegmentsOverHTTP(t *testing.T) {
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
	svc := segment.NewService(segment.NewIndex(), db)
	svc.Now, svc.Behaviour = proc.Now, db.SegmentBehaviour
	svc.Webhooks = segment.NewDispatcher(db)
	proc.OnChange = func(c []*portrait.Profile, d []string, applied map[string][]*portrait.Event) {
		if err := svc.Apply(ctx, c, d, applied); err != nil {
			t.Error(err)
		}
	}
	s := porthttp.NewServer()
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Segments = svc
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	// The event stream answers through the instrumentation wrapper.
	func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/segments/stream", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(line, ": portrait") {
			t.Fatalf("stream: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), line)
		}
	}()

	seq := 0
	send := func(evs ...*portrait.Event) {
		t.Helper()
		for _, e := range evs {
			seq++
			e.MessageID = fmt.Sprintf("m%d", seq)
			e.ReceivedAt = e.Timestamp
		}
		if _, err := db.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := proc.Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
	}
	identify := func(user string, traits string) *portrait.Event {
		return &portrait.Event{Type: portrait.EventIdentify, UserID: user, Traits: json.RawMessage(traits), Timestamp: now.Add(-time.Hour)}
	}
	order := func(user string, amount int, ago time.Duration) *portrait.Event {
		return &portrait.Event{Type: portrait.EventTrack, Name: "Order Completed", UserID: user, Properties: json.RawMessage(fmt.Sprintf(`{"amount": %d}`, amount)), Timestamp: now.Add(-ago)}
	}
	send(identify("u1", `{"age": 35, "province": "广东省", "name": "张三"}`), identify("u2", `{"age": 28, "province": "浙江省"}`),
		order("u1", 800, 48*time.Hour), order("u1", 900, 24*time.Hour), order("u2", 100, time.Hour))

	call := func(method, path, body string) (int, map[string]any, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		json.Unmarshal(raw, &out)
		return res.StatusCode, out, raw
	}
	code, out, raw := call("POST", "/v1/segments", `{"name": "big buyers", "expression": "traits.age >= 30 && event_count(\"Order Completed\", \"30d\", amount > 500) >= 2"}`)
	if code != 201 || out["size"] != 1.0 || out["id"] == "" {
		t.Fatalf("create: %d %s", code, raw)
	}
	id := out["id"].(string)
	code, out, raw = call("GET", "/v1/segments/"+id, "")
	if code != 200 || out["size"] != 1.0 || out["evaluated_at"] == "" {
		t.Fatalf("get: %d %s", code, raw)
	}
	code, out, raw = call("GET", "/v1/segments/"+id+"/members?traits=name,age", "")
	members, _ := out["members"].([]any)
	if code != 200 || len(members) != 1 || !strings.Contains(string(raw), "张三") {
		t.Fatalf("members: %d %s", code, raw)
	}
	u1 := members[0].(map[string]any)["id"].(string)
	// u2 buys big twice: enters in real time
	send(order("u2", 600, 2*time.Hour), order("u2", 700, time.Hour), identify("u2", `{"age": 31}`))
	code, out, raw = call("GET", "/v1/segments/"+id+"/events", "")
	if evs, _ := out["events"].([]any); code != 200 || len(evs) != 2 {
		t.Fatalf("events: %d %s", code, raw)
	}
	code, out, raw = call("GET", "/v1/segments/"+id+"/explain/"+u1, "")
	if code != 200 || out["member"] != true || !strings.Contains(string(raw), `"value":35`) {
		t.Fatalf("explain: %d %s", code, raw)
	}
	code, out, raw = call("POST", "/v1/segments/preview", `{"condition": {"region": {"province": "广东"}}}`)
	if code != 200 || out["size"] != 1.0 {
		t.Fatalf("preview: %d %s", code, raw)
	}
	code, out, raw = call("POST", "/v1/segments", `{"name": "bad", "expression": "traits.age >"}`)
	if code != 400 || !strings.Contains(string(raw), "invalid expression") {
		t.Fatalf("invalid: %d %s", code, raw)
	}
	_, out, _ = call("POST", "/v1/segments", `{"name": "all", "expression": "traits.age > 0"}`)
	code, out, raw = call("GET", "/v1/segments/overlap?ids="+id+","+out["id"].(string), "")
	if code != 200 || !strings.Contains(string(raw), `"matrix":[[2,2],[2,2]]`) {
		t.Fatalf("overlap: %d %s", code, raw)
	}
	code, _, raw = call("GET", "/v1/segments/"+id+"/export?format=csv&traits=age", "")
	if code != 200 || !strings.HasPrefix(string(raw), "\ufeffid,age\n") || strings.Count(string(raw), "\n") != 3 {
		t.Fatalf("csv: %d %s", code, raw)
	}
	exportsAndPreviews(t, call, id)
	code, _, raw = call("GET", "/v1/segments/"+id+"/export?format=xlsx", "")
	if code != 200 || !bytes.HasPrefix(raw, []byte("PK")) {
		t.Fatalf("xlsx: %d %.40q", code, raw)
	}
	if code, _, _ = call("GET", "/v1/segments/nope", ""); code != 404 {
		t.Fatalf("unknown segment: %d", code)
	}
	code, _, _ = call("DELETE", "/v1/segments/"+id, "")
	if code != 204 {
		t.Fatalf("delete: %d", code)
	}
}

// exportsAndPreviews: CSV exports open in Excel (a UTF-8 byte order mark),
// and exports, member lists and previews give names and key traits unless
// columns are chosen; columns=id still gives ids only. The segment has u1
// (张三, 广东省) and u2.
func exportsAndPreviews(t *testing.T, call func(method, path, body string) (int, map[string]any, []byte), id string) {
	t.Helper()
	code, _, raw := call("GET", "/v1/segments/"+id+"/export", "")
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if code != 200 || !strings.HasPrefix(lines[0], "\ufeffid,name,phone,email,") || len(lines) != 3 || !strings.Contains(string(raw), "张三") {
		t.Fatalf("default export: %d %q", code, raw)
	}
	code, _, raw = call("GET", "/v1/segments/"+id+"/export?columns=id", "")
	if lines := strings.Split(strings.TrimSpace(string(raw)), "\n"); code != 200 || lines[0] != "\ufeffid" || len(lines) != 3 || strings.Contains(lines[1], ",") {
		t.Fatalf("ids-only export: %d %q", code, raw)
	}
	code, _, raw = call("GET", "/v1/segments/"+id+"/export?columns=name,province", "")
	if code != 200 || !strings.HasPrefix(string(raw), "\ufeffid,name,province\n") || !strings.Contains(string(raw), ",张三,广东省") {
		t.Fatalf("chosen columns: %d %q", code, raw)
	}
	code, out, raw := call("GET", "/v1/segments/"+id+"/members", "")
	members, _ := out["members"].([]any)
	if code != 200 || len(members) != 2 || !strings.Contains(string(raw), `"name":"张三"`) {
		t.Fatalf("default members: %d %s", code, raw)
	}
	// A preview of the same definition gives the same rows.
	code, prev, raw := call("POST", "/v1/segments/preview", `{"expression": "traits.age > 0"}`)
	sample, _ := prev["sample"].([]any)
	if code != 200 || len(sample) != 2 {
		t.Fatalf("preview: %d %s", code, raw)
	}
	byID := map[string]any{}
	for _, m := range members {
		byID[m.(map[string]any)["id"].(string)] = m
	}
	for _, s := range sample {
		row := s.(map[string]any)
		want, ok := byID[row["id"].(string)]
		if a, _ := json.Marshal(row); !ok || string(a) != string(must(json.Marshal(want))) {
			t.Errorf("preview row %v, member row %v", row, want)
		}
	}
}

func must(b []byte, _ error) []byte { return b }
