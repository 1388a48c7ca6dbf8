package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

const (
	writeKey = "test-write-key"
	adminKey = "test-admin-token"
)

// testKeyCost is the bcrypt cost of the keys the tests create: bcrypt's
// minimum. The default (10) took ~8 s per hash under -race on the shared
// 2-core machine, paid at every key's creation and first use; what the
// tests check does not depend on the cost (a hash carries its own).
const testKeyCost = 4

type server struct {
	url  string
	db   *sqlite.DB
	proc *profile.Processor
}

// start runs the real server on a free loopback port, with the embedded
// store and the processor running behind it, as serve wires them; wire
// adds optional parts (analytics, ...) before the server opens.
func start(t *testing.T, wire ...func(*porthttp.Server, *sqlite.DB)) *server {
	t.Helper()
	return startProc(t, nil, wire...)
}

// startProc is start with the processor configured (standardizers...)
// before it runs.
func startProc(t *testing.T, cfg func(*profile.Processor), wire ...func(*porthttp.Server, *sqlite.DB)) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	db.KeyHashCost = testKeyCost
	for kind, secret := range map[string]string{portrait.KeyWrite: writeKey, portrait.KeyAdmin: adminKey} {
		if err := db.CreateKey(ctx, &portrait.Key{Kind: kind, Name: "web"}, secret); err != nil {
			t.Fatal(err)
		}
	}
	rules := identity.DefaultRules()
	proc := profile.NewProcessor(db, rules)
	proc.Notify = db.Appended
	if cfg != nil {
		cfg(proc)
	}
	done := make(chan struct{})
	go func() { proc.Run(ctx); close(done) }()
	s := porthttp.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Parser.Blocked = rules.IsBlocked
	s.NormalizeID = identity.DefaultNormalize
	s.Lag = func() (int64, float64, error) { return 0, 0, nil }
	for _, w := range wire {
		w(s, db)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		cancel()
		<-done
		db.Close()
	})
	return &server{url: s.URL(), db: db, proc: proc}
}

// settle waits until every logged event is applied to profiles.
func (s *server) settle(t *testing.T) {
	t.Helper()
	last, err := s.db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.proc.Checkpoint() < last {
		if time.Now().After(deadline) {
			t.Fatalf("processing stuck at %d of %d", s.proc.Checkpoint(), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type resp struct {
	status int
	body   map[string]any
	raw    string
}

func (s *server) do(t *testing.T, method, path string, body []byte, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if _, ok := hdr["Authorization"]; !ok && strings.HasPrefix(path, "/v1/") && method == http.MethodPost {
		req.SetBasicAuth(writeKey, "")
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	out := resp{status: r.StatusCode, raw: string(raw)}
	json.Unmarshal(raw, &out.body)
	return out
}

func (s *server) post(t *testing.T, path, body string) resp {
	return s.do(t, http.MethodPost, path, []byte(body), nil)
}

func (s *server) get(t *testing.T, path string) resp {
	return s.do(t, http.MethodGet, path, nil, map[string]string{"Authorization": "Bearer " + adminKey})
}

func TestIdentifyThenLookup(t *testing.T) {
	s := start(t)
	r := s.post(t, "/v1/identify", `{"userId":"u-1","anonymousId":"a-1","messageId":"m-1","timestamp":"2026-03-01T08:00:00Z",
		"traits":{"email":"Li.Lei@Example.com","name":"李雷","plan":"gold"}}`)
	if r.status != 200 || r.body["accepted"] != 1.0 {
		t.Fatalf("identify: %d %s", r.status, r.raw)
	}
	s.post(t, "/v1/track", `{"anonymousId":"a-1","event":"Order Completed","messageId":"m-2","timestamp":"2026-03-01T09:00:00Z","properties":{"revenue":99.5}}`)
	s.settle(t)

	r = s.get(t, "/v1/profiles/lookup?type=email&value=li.lei@example.com")
	if r.status != 200 {
		t.Fatalf("lookup: %d %s", r.status, r.raw)
	}
	traits := r.body["traits"].(map[string]any)
	name := traits["name"].(map[string]any)
	if name["value"] != "李雷" || name["source"] != "web" || name["time"] != "2026-03-01T08:00:00Z" || name["message_id"] != "m-1" {
		t.Errorf("name trait with provenance: %v", name)
	}
	if traits["email"].(map[string]any)["value"] != "li.lei@example.com" {
		t.Errorf("email not standardised: %v", traits["email"])
	}
	if r.body["event_count"] != 2.0 {
		t.Errorf("event_count %v", r.body["event_count"])
	}
	ids := map[string]bool{}
	for _, x := range r.body["identifiers"].([]any) {
		m := x.(map[string]any)
		ids[m["type"].(string)+" "+m["value"].(string)] = true
	}
	for _, want := range []string{"user_id u-1", "anonymous_id a-1", "email li.lei@example.com"} {
		if !ids[want] {
			t.Errorf("identifiers %v lack %s", ids, want)
		}
	}
	id := r.body["id"].(string)
	if r2 := s.get(t, "/v1/profiles/"+id); r2.status != 200 || r2.body["id"] != id {
		t.Errorf("get by id: %d %s", r2.status, r2.raw)
	}
	// Mixed-case lookups find the standardised value too.
	if r2 := s.get(t, "/v1/profiles/lookup?type=email&value=LI.LEI@example.COM"); r2.status != 200 {
		t.Errorf("case-insensitive email lookup: %d", r2.status)
	}
	ev := s.get(t, "/v1/profiles/"+id+"/events?limit=1")
	evs := ev.body["events"].([]any)
	if ev.status != 200 || len(evs) != 1 || evs[0].(map[string]any)["messageId"] != "m-2" || ev.body["next"] == "" {
		t.Fatalf("events page 1 (newest first): %s", ev.raw)
	}
	ev2 := s.get(t, "/v1/profiles/"+id+"/events?limit=1&cursor="+ev.body["next"].(string))
	evs2 := ev2.body["events"].([]any)
	if len(evs2) != 1 || evs2[0].(map[string]any)["messageId"] != "m-1" || ev2.body["next"] != "" {
		t.Fatalf("events page 2: %s", ev2.raw)
	}
	// A cursor of the old (time:message id) form, or none at all, is a
	// clear 400, not an empty page.
	for _, c := range []string{"bm90LWEtY3Vyc29y", base64.RawURLEncoding.EncodeToString([]byte("1767225600000000:m-2"))} {
		if r := s.get(t, "/v1/profiles/"+id+"/events?cursor="+c); r.status != 400 || !strings.Contains(r.raw, "invalid cursor") {
			t.Errorf("bad cursor %q: %d %s", c, r.status, r.raw)
		}
	}
	if m := s.get(t, "/v1/profiles/"+id+"/merges"); m.status != 200 {
		t.Errorf("merges: %d %s", m.status, m.raw)
	}
}

func TestNotFoundIsJSON(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/v1/profiles/p_nope", "/v1/profiles/lookup?type=email&value=nobody@example.com", "/v1/profiles/p_nope/events"} {
		r := s.get(t, path)
		errObj, _ := r.body["error"].(map[string]any)
		if r.status != 404 || errObj["code"] != "not_found" || errObj["message"] == "" {
			t.Errorf("%s: %d %s", path, r.status, r.raw)
		}
	}
}

func TestAuth(t *testing.T) {
	s := start(t)
	body := []byte(`{"userId":"u","event":"x"}`)
	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"no write key", "POST", "/v1/track", map[string]string{"Authorization": ""}, 401},
		{"wrong write key", "POST", "/v1/track", map[string]string{"Authorization": "Basic d3Jvbmc6"}, 401},
		{"admin token is not a write key", "POST", "/v1/track", map[string]string{"Authorization": "Bearer " + adminKey}, 401},
		{"no admin token", "GET", "/v1/profiles/p_1", map[string]string{"Authorization": ""}, 401},
		{"write key is not an admin token", "GET", "/v1/quarantine", map[string]string{"Authorization": "Bearer " + writeKey}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, c.method, c.path, body, c.hdr)
			if r.status != c.want || r.body["error"] == nil {
				t.Errorf("%d %s, want %d with a JSON error", r.status, r.raw, c.want)
			}
		})
	}
	// analytics.js may send the write key in the body instead.
	r := s.do(t, "POST", "/v1/track", []byte(`{"userId":"u","event":"x","writeKey":"`+writeKey+`"}`), map[string]string{"Authorization": ""})
	if r.status != 200 {
		t.Errorf("writeKey in body: %d %s", r.status, r.raw)
	}
}

func TestBatchAcceptsValidRejectsInvalid(t *testing.T) {
	s := start(t)
	big := strings.Repeat("x", 33<<10)
	r := s.post(t, "/v1/batch", `{"batch":[
		{"type":"track","userId":"u1","event":"Signed Up","messageId":"b-0"},
		{"type":"track","event":"No Ids","messageId":"b-1"},
		{"type":"bogus","userId":"u1","messageId":"b-2"},
		{"type":"identify","userId":"u1","traits":[1,2],"messageId":"b-3"},
		{"type":"track","userId":"u1","event":"Bad Time","timestamp":"yesterday","messageId":"b-4"},
		{"type":"track","userId":{"id":1},"event":"Bad Id","messageId":"b-5"},
		{"type":"track","userId":"u1","messageId":"b-6"},
		{"type":"alias","userId":"u1","messageId":"b-7"},
		{"type":"track","userId":"u1","event":"Huge","properties":{"blob":"`+big+`"},"messageId":"b-8"},
		{"type":"identify","userId":"null","messageId":"b-9"}
	]}`)
	if r.status != 200 || r.body["accepted"] != 1.0 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	rej := r.body["rejected"].([]any)
	wantReason := map[float64]string{1: "neither userId nor anonymousId", 2: "unknown event type", 3: "traits must be an object", 4: "timestamp", 5: "userId must be a string",
		6: `no "event" name`, 7: "previousId", 8: "limit per event", 9: "blocked value"}
	if len(rej) != len(wantReason) {
		t.Fatalf("rejected %d, want %d: %s", len(rej), len(wantReason), r.raw)
	}
	for _, x := range rej {
		m := x.(map[string]any)
		idx := m["index"].(float64)
		if !strings.Contains(m["reason"].(string), wantReason[idx]) {
			t.Errorf("index %v: reason %q lacks %q", idx, m["reason"], wantReason[idx])
		}
	}
	q := s.get(t, "/v1/quarantine")
	items := q.body["items"].([]any)
	if len(items) != len(wantReason) {
		t.Fatalf("quarantine holds %d, want %d", len(items), len(wantReason))
	}
	first := items[0].(map[string]any)
	if !strings.Contains(first["raw"].(string), `"No Ids"`) || first["source"] != "web" {
		t.Errorf("quarantined record does not keep the raw event: %v", first)
	}
}

func TestStatusCodes(t *testing.T) {
	s := start(t)
	hugeEvent := `{"userId":"u","event":"x","properties":{"b":"` + strings.Repeat("y", 40<<10) + `"}}`
	var many []string
	for range 30 {
		many = append(many, `{"type":"track","userId":"u","event":"x","properties":{"b":"`+strings.Repeat("z", 20<<10)+`"}}`)
	}
	cases := []struct {
		name, path, body string
		want             int
		code             string
	}{
		{"event over 32 KB", "/v1/track", hugeEvent, 413, "too_large"},
		{"request over 500 KB", "/v1/batch", `{"batch":[` + strings.Join(many, ",") + `]}`, 413, "too_large"},
		{"all invalid", "/v1/batch", `{"batch":[{"type":"track","event":"x"}]}`, 400, "invalid"},
		{"malformed JSON", "/v1/batch", `{"batch":[{"type":`, 400, "invalid"},
		{"no batch array", "/v1/batch", `{"events":[]}`, 400, "invalid"},
		{"type contradicts endpoint", "/v1/track", `{"type":"identify","userId":"u"}`, 400, "invalid"},
		{"invalid UTF-8", "/v1/track", "{\"userId\":\"u\",\"event\":\"\xff\xfe\"}", 400, "invalid"},
		{"empty batch", "/v1/batch", `{"batch":[]}`, 200, ""},
		{"empty body", "/v1/track", ``, 400, "invalid"},
		{"empty batch body", "/v1/batch", ``, 400, "invalid"},
		{"looks like an import record", "/v1/batch", `{"import_key":"abc`, 400, "invalid"},
		{"import-like and valid JSON", "/v1/track", `{"import_key":"abc","userId":5.5}`, 400, "invalid"},
		{"the same again is kept again", "/v1/track", `{"import_key":"abc","userId":5.5}`, 400, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.post(t, c.path, c.body)
			if r.status != c.want {
				t.Fatalf("%d %s, want %d", r.status, r.raw, c.want)
			}
			if c.code != "" {
				e, _ := r.body["error"].(map[string]any)
				if e == nil || e["code"] != c.code || e["message"] == "" {
					t.Errorf("error body %s, want code %s", r.raw, c.code)
				}
			}
		})
	}
	// Nothing sent was lost: every rejected request is in the quarantine.
	q := s.get(t, "/v1/quarantine?limit=1000")
	if n := len(q.body["items"].([]any)); n < 11 {
		t.Errorf("quarantine holds %d records, want every rejected event or body", n)
	}
}

func TestGzipAndRetries(t *testing.T) {
	s := start(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"batch":[{"type":"track","userId":"u1","event":"Zipped","messageId":"z-1"}]}`))
	zw.Close()
	for i, want := range []struct{ accepted, dups float64 }{{1, 0}, {0, 1}} {
		r := s.do(t, "POST", "/v1/batch", buf.Bytes(), map[string]string{"Content-Encoding": "gzip"})
		if r.status != 200 || r.body["accepted"] != want.accepted || r.body["duplicates"] != want.dups {
			t.Fatalf("attempt %d: %d %s", i, r.status, r.raw)
		}
	}
	s.settle(t)
	p := s.get(t, "/v1/profiles/lookup?type=user_id&value=u1")
	if p.body["event_count"] != 1.0 {
		t.Errorf("a retried event was applied twice: %s", p.raw)
	}
	if r := s.do(t, "POST", "/v1/batch", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}); r.status != 400 {
		t.Errorf("corrupt gzip: %d", r.status)
	}
}

func TestClockSkewCorrected(t *testing.T) {
	s := start(t)
	// The client's clock is two hours fast: its event time and sentAt are
	// both off by the same amount.
	now := time.Now().UTC()
	skew := 2 * time.Hour
	evTime := now.Add(skew).Add(-10 * time.Minute)
	body := fmt.Sprintf(`{"batch":[{"type":"track","userId":"skewed","event":"x","messageId":"s-1","originalTimestamp":%q}],"sentAt":%q}`,
		evTime.Format(time.RFC3339Nano), now.Add(skew).Format(time.RFC3339Nano))
	if r := s.post(t, "/v1/batch", body); r.status != 200 {
		t.Fatal(r.raw)
	}
	s.settle(t)
	p := s.get(t, "/v1/profiles/lookup?type=user_id&value=skewed")
	ev := s.get(t, "/v1/profiles/"+p.body["id"].(string)+"/events")
	ts, err := time.Parse(time.RFC3339Nano, ev.body["events"].([]any)[0].(map[string]any)["timestamp"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if d := ts.Sub(now.Add(-10 * time.Minute)); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("event time %s, want about %s (corrected by the skew)", ts, now.Add(-10*time.Minute))
	}
}

func TestOperationsEndpoints(t *testing.T) {
	s := start(t)
	s.post(t, "/v1/track", `{"userId":"u","event":"x"}`)
	for _, c := range []struct{ path, contains string }{
		{"/healthz", `"ok"`}, {"/readyz", `"ready"`},
		{"/metrics", "portrait_events_accepted_total"}, {"/openapi.json", `"openapi": "3.1.0"`},
	} {
		r := s.do(t, "GET", c.path, nil, nil)
		if r.status != 200 || !strings.Contains(r.raw, c.contains) {
			t.Errorf("%s: %d, body lacks %s", c.path, r.status, c.contains)
		}
	}
	var doc map[string]any
	r := s.do(t, "GET", "/openapi.json", nil, nil)
	if err := json.Unmarshal([]byte(r.raw), &doc); err != nil || doc["paths"].(map[string]any)["/v1/profiles/{id}"] == nil {
		t.Errorf("openapi document: %v", err)
	}
}

// A known path with another method is 405 with Allow and the JSON error,
// not the catch-all's 404; an unknown path stays 404.
func TestWrongMethodIs405(t *testing.T) {
	s := start(t)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/identify", "POST"},
		{http.MethodGet, "/v1/batch", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPut, "/v1/profiles/p_x/events", "GET, HEAD"},
	} {
		req, _ := http.NewRequest(c.method, s.url+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(r.Body).Decode(&body)
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != c.allow || body.Error.Code != "method_not_allowed" || body.Error.Message == "" {
			t.Errorf("%s %s: %d Allow=%q %+v, want 405 Allow=%q", c.method, c.path, r.StatusCode, r.Header.Get("Allow"), body, c.allow)
		}
	}
	if r := s.do(t, http.MethodPost, "/v1/no-such-route", nil, nil); r.status != 404 {
		t.Errorf("unknown path: %d %s", r.status, r.raw)
	}
}

// A lag the server cannot read is reported as an error by readiness, and
// as NaN by the metrics, not as 0 (caught up).
func TestReadinessReportsALagItCannotRead(t *testing.T) {
	s := start(t, func(s *porthttp.Server, _ *sqlite.DB) {
		s.Lag = func() (int64, float64, error) {
			return 0, 0, portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the applier's checkpoint: timeout")
		}
	})
	r := s.do(t, "GET", "/readyz", nil, nil)
	if r.status != 200 || !strings.Contains(r.raw, `"processing_lag_error":"cannot read the applier's checkpoint: timeout"`) || strings.Contains(r.raw, "processing_lag_events") {
		t.Errorf("readiness: %d %s", r.status, r.raw)
	}
	if m := s.do(t, "GET", "/metrics", nil, nil); !strings.Contains(m.raw, "portrait_processing_lag_events NaN") || !strings.Contains(m.raw, "portrait_processing_lag_seconds NaN") {
		t.Error("metrics: the lag is not NaN")
	}
}
