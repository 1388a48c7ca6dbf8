package e2e_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// post sends body to path with the write key (unless auth is false) and
// returns the status and decoded JSON answer.
func post(t *testing.T, s *server, path string, body []byte, auth bool, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth(writeKey, "")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: HTTP %d, answer is not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestTrackingContract checks the tracking API's contract from the issue
// against the real binary: auth, per-event rejections kept in the
// quarantine, size limits, idempotency, compression, clock-skew correction
// and JSON errors.
func TestTrackingContract(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	now := time.Now().UTC()

	t.Run("unauthorized", func(t *testing.T) {
		code, out := post(t, s, "/v1/track", mustJSON(map[string]any{"userId": "u1", "event": "x"}), false, nil)
		if code != http.StatusUnauthorized || errorCode(out) != "unauthorized" {
			t.Errorf("no write key: HTTP %d %v, want 401 unauthorized", code, out)
		}
		if code := s.getJSON(t, "/v1/quarantine", nil); code != http.StatusOK {
			t.Errorf("GET /v1/quarantine with the admin token: HTTP %d", code)
		}
	})

	t.Run("partial batch", func(t *testing.T) {
		body := mustJSON(map[string]any{"batch": []any{
			map[string]any{"type": "track", "userId": "contract-1", "event": "Signed Up", "messageId": "c-ok-1"},
			map[string]any{"type": "track", "event": "No Ids", "messageId": "c-bad-1"},
			map[string]any{"type": "identify", "userId": "contract-1", "timestamp": "not a time", "messageId": "c-bad-2"},
			map[string]any{"type": "bogus", "userId": "contract-1", "messageId": "c-bad-3"},
		}})
		code, out := post(t, s, "/v1/batch", body, true, nil)
		rej, _ := out["rejected"].([]any)
		if code != http.StatusOK || out["accepted"] != 1.0 || len(rej) != 3 {
			t.Fatalf("batch with 1 valid and 3 invalid events: HTTP %d %v; want 200, accepted 1, 3 rejected", code, out)
		}
		for i, r := range rej {
			m, _ := r.(map[string]any)
			if m["index"] != float64(i+1) || m["reason"] == "" {
				t.Errorf("rejected[%d] = %v, want index %d with a reason", i, m, i+1)
			}
		}
		var q struct {
			Items []struct {
				Index  int    `json:"index"`
				Reason string `json:"reason"`
				Raw    string `json:"raw"`
			} `json:"items"`
		}
		if code := s.getJSON(t, "/v1/quarantine?limit=1000", &q); code != http.StatusOK {
			t.Fatalf("GET /v1/quarantine: HTTP %d", code)
		}
		found := map[string]bool{}
		for _, it := range q.Items {
			for _, id := range []string{"c-bad-1", "c-bad-2", "c-bad-3"} {
				if strings.Contains(it.Raw, id) && it.Reason != "" {
					found[id] = true
				}
			}
		}
		if len(found) != 3 {
			t.Errorf("quarantine holds %v of the 3 rejected events with raw bytes and reason: %+v", found, q.Items)
		}
	})

	t.Run("all invalid", func(t *testing.T) {
		code, out := post(t, s, "/v1/batch", mustJSON(map[string]any{"batch": []any{map[string]any{"type": "track", "event": "x"}}}), true, nil)
		if code != http.StatusBadRequest || errorCode(out) != "invalid" || len(out["rejected"].([]any)) != 1 {
			t.Errorf("batch of only invalid events: HTTP %d %v, want 400 with the rejection", code, out)
		}
	})

	t.Run("sizes", func(t *testing.T) {
		big := strings.Repeat("长", 12<<10) // 36 KB of UTF-8
		code, out := post(t, s, "/v1/track", mustJSON(map[string]any{"userId": "contract-1", "event": "Big", "properties": map[string]any{"s": big}}), true, nil)
		if code != http.StatusRequestEntityTooLarge || errorCode(out) == "" {
			t.Errorf("a 36 KB event: HTTP %d %v, want 413 with a JSON error", code, out)
		}
		var events []any
		for i := 0; i < 20; i++ {
			events = append(events, map[string]any{"type": "track", "userId": "contract-1", "event": "Filler", "properties": map[string]any{"s": strings.Repeat("x", 30<<10)}})
		}
		code, out = post(t, s, "/v1/batch", mustJSON(map[string]any{"batch": events}), true, nil)
		if code != http.StatusRequestEntityTooLarge || errorCode(out) == "" {
			t.Errorf("a 600 KB request: HTTP %d %v, want 413 with a JSON error", code, out)
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		ev := mustJSON(map[string]any{"userId": "contract-2", "traits": map[string]any{"email": "contract2@example.com"}, "messageId": "c-idem-1"})
		for i, want := range []string{"accepted", "duplicates"} {
			code, out := post(t, s, "/v1/identify", ev, true, nil)
			if code != http.StatusOK || out[want] != 1.0 {
				t.Errorf("identify #%d with one messageId: HTTP %d %v, want %s 1", i+1, code, out, want)
			}
		}
	})

	t.Run("gzip and import", func(t *testing.T) {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(mustJSON(map[string]any{"batch": []any{map[string]any{"type": "track", "userId": "contract-2", "event": "Zipped", "messageId": "c-gz-1"}}}))
		zw.Close()
		code, out := post(t, s, "/v1/batch", zb.Bytes(), true, map[string]string{"Content-Encoding": "gzip"})
		if code != http.StatusOK || out["accepted"] != 1.0 {
			t.Errorf("gzip batch: HTTP %d %v", code, out)
		}
		code, out = post(t, s, "/v1/import", mustJSON(map[string]any{"batch": []any{map[string]any{"type": "track", "userId": "contract-2", "event": "Old Order", "timestamp": "2019-03-01T08:00:00+08:00", "messageId": "c-imp-1"}}}), true, nil)
		if code != http.StatusOK || out["accepted"] != 1.0 {
			t.Errorf("/v1/import: HTTP %d %v", code, out)
		}
	})

	t.Run("clock skew", func(t *testing.T) {
		// The client's clock is two hours ahead: its originalTimestamp
		// and sentAt are both off by as much, and the event time must be
		// corrected to about now.
		ahead := now.Add(2 * time.Hour)
		code, out := post(t, s, "/v1/track", mustJSON(map[string]any{
			"userId": "contract-3", "event": "Skewed", "messageId": "c-skew-1",
			"originalTimestamp": ahead.Format(time.RFC3339Nano), "sentAt": ahead.Add(50 * time.Millisecond).Format(time.RFC3339Nano),
		}), true, nil)
		if code != http.StatusOK {
			t.Fatalf("skewed track: HTTP %d %v", code, out)
		}
		p := waitEventCount(t, s, "user_id", "contract-3", 1)
		var ev struct {
			Events []struct {
				MessageID string    `json:"messageId"`
				Timestamp time.Time `json:"timestamp"`
			} `json:"events"`
		}
		if code := s.getJSON(t, "/v1/profiles/"+url.PathEscape(p.ID)+"/events", &ev); code != http.StatusOK || len(ev.Events) != 1 {
			t.Fatalf("events of the skewed profile: HTTP %d %+v", code, ev)
		}
		// Generous: the correction removes two hours, latency stays.
		if d := ev.Events[0].Timestamp.Sub(now); d > 10*time.Minute || d < -10*time.Minute {
			t.Errorf("event time %s with a client clock 2h ahead; want it corrected to about %s", ev.Events[0].Timestamp, now)
		}
	})

	t.Run("query errors", func(t *testing.T) {
		var out map[string]any
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/profiles/lookup?type=email&value=nobody@example.com", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || errorCode(out) != "not_found" {
			t.Errorf("lookup of an unknown email: HTTP %d %v, want 404 not_found", resp.StatusCode, out)
		}
		req, _ = http.NewRequest(http.MethodGet, s.URL()+"/v1/profiles/lookup?type=email&value=contract2@example.com", nil)
		req.Header.Set("Authorization", "Bearer "+writeKey) // a write key is not an admin token
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("query with a write key: HTTP %d, want 401 or 403", resp.StatusCode)
		}
		// Lookups standardise the value as the identity graph does.
		p := waitEventCount(t, s, "email", " Contract2@Example.COM ", 3)
		if !p.hasIdentifier("user_id", "contract-2") {
			t.Errorf("profile of contract2@example.com: %+v", p)
		}
	})
}
