package tracking_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tracking"
)

var received = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestParseSingle(t *testing.T) {
	p := tracking.New()
	p.Blocked = func(v string) bool { return v == "null" || v == "undefined" }
	cases := []struct {
		name, typ, body string
		reason          string // "" = accepted
		check           func(t *testing.T, e *portrait.Event)
	}{
		{name: "identify", typ: "identify", body: `{"userId":"u1","traits":{"name":"张三"},"messageId":"m1","timestamp":"2026-04-30T10:00:00.000Z"}`,
			check: func(t *testing.T, e *portrait.Event) {
				if e.UserID != "u1" || e.MessageID != "m1" || !e.Timestamp.Equal(time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC)) || string(e.Traits) != `{"name":"张三"}` {
					t.Errorf("%+v", e)
				}
			}},
		{name: "numeric user id", typ: "track", body: `{"userId":12345,"event":"Order Completed"}`,
			check: func(t *testing.T, e *portrait.Event) {
				if e.UserID != "12345" {
					t.Errorf("user id %q", e.UserID)
				}
			}},
		{name: "no time means receivedAt", typ: "page", body: `{"anonymousId":"a"}`,
			check: func(t *testing.T, e *portrait.Event) {
				if !e.Timestamp.Equal(received) {
					t.Errorf("timestamp %s", e.Timestamp)
				}
			}},
		{name: "python isoformat without zone", typ: "track", body: `{"userId":"u","event":"x","timestamp":"2026-04-30T10:00:00.123456"}`,
			check: func(t *testing.T, e *portrait.Event) {
				if e.Timestamp.Nanosecond() != 123456000 {
					t.Errorf("timestamp %s", e.Timestamp)
				}
			}},
		{name: "offset zone", typ: "track", body: `{"userId":"u","event":"x","timestamp":"2026-04-30T18:00:00+08:00"}`,
			check: func(t *testing.T, e *portrait.Event) {
				if !e.Timestamp.Equal(time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC)) {
					t.Errorf("timestamp %s", e.Timestamp)
				}
			}},
		{name: "generated message id is stable", typ: "track", body: `{"userId":"u","event":"x"}`,
			check: func(t *testing.T, e *portrait.Event) {
				res, _ := tracking.New().ParseSingle([]byte(`{"userId":"u","event":"x"}`), "track", "web", received.Add(time.Hour))
				if !strings.HasPrefix(e.MessageID, "gen-") || res.Events[0].MessageID != e.MessageID {
					t.Errorf("generated ids %q vs %q", e.MessageID, res.Events[0].MessageID)
				}
			}},
		{name: "rudderstack channel", typ: "track", body: `{"userId":"u","event":"x","channel":"mobile","context":{"library":{"name":"some-sdk"}}}`,
			check: func(t *testing.T, e *portrait.Event) {
				if e.Channel != "mobile" {
					t.Errorf("channel %q", e.Channel)
				}
			}},
		{name: "channel not a string", typ: "track", body: `{"userId":"u","event":"x","channel":1}`, reason: "channel must be a string"},
		{name: "blocked user id with an anonymous id", typ: "track", body: `{"userId":"undefined","anonymousId":"a1","event":"x"}`},
		{name: "no ids", typ: "track", body: `{"event":"x"}`, reason: "neither userId nor anonymousId"},
		{name: "blocked ids only", typ: "identify", body: `{"userId":"null"}`, reason: "blocked value"},
		{name: "track without event", typ: "track", body: `{"userId":"u"}`, reason: `no "event" name`},
		{name: "event not a string", typ: "track", body: `{"userId":"u","event":42}`, reason: "event must be a string"},
		{name: "group without groupId", typ: "group", body: `{"userId":"u"}`, reason: "groupId"},
		{name: "alias without previousId", typ: "alias", body: `{"userId":"u"}`, reason: "previousId"},
		{name: "properties array", typ: "track", body: `{"userId":"u","event":"x","properties":[1]}`, reason: "properties must be an object, not an array"},
		{name: "context string", typ: "track", body: `{"userId":"u","event":"x","context":"web"}`, reason: "context must be an object"},
		{name: "bad timestamp", typ: "track", body: `{"userId":"u","event":"x","timestamp":"next tuesday"}`, reason: "not an ISO 8601 time"},
		{name: "numeric timestamp", typ: "track", body: `{"userId":"u","event":"x","timestamp":1714550400}`, reason: "must be an ISO 8601 string"},
		{name: "future timestamp", typ: "track", body: `{"userId":"u","event":"x","timestamp":"2027-01-01T00:00:00Z"}`, reason: "in the future"},
		{name: "float user id", typ: "track", body: `{"userId":1.5,"event":"x"}`, reason: "string or an integer"},
		{name: "array", typ: "track", body: `[1,2]`, reason: "must be a JSON object"},
		{name: "not json", typ: "track", body: `{"userId":`, reason: "not valid JSON"},
		{name: "invalid utf-8", typ: "track", body: "{\"userId\":\"\xc3\x28\",\"event\":\"x\"}", reason: "UTF-8"},
		{name: "type mismatch", typ: "track", body: `{"type":"page","userId":"u"}`, reason: "does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := p.ParseSingle([]byte(c.body), c.typ, "web", received)
			if err != nil {
				t.Fatal(err)
			}
			if c.reason == "" {
				if len(res.Events) != 1 {
					t.Fatalf("rejected: %+v", res.Rejected[0])
				}
				if c.check != nil {
					c.check(t, res.Events[0])
				}
				return
			}
			if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, c.reason) {
				t.Fatalf("want rejection %q, got events %d rejected %+v", c.reason, len(res.Events), res.Rejected)
			}
			if string(res.Rejected[0].Raw) != c.body {
				t.Errorf("the raw event is not kept whole")
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	p := tracking.New()
	// Client clock 1 h slow: it says it sent at 11:00, we received at 12:00.
	body := `{"batch":[{"type":"track","userId":"u","event":"x","originalTimestamp":"2026-05-01T10:50:00Z"}],"sentAt":"2026-05-01T11:00:00Z"}`
	res, err := p.ParseBatch([]byte(body), "web", received)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Events[0].Timestamp, time.Date(2026, 5, 1, 11, 50, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("corrected time %s, want %s", got, want)
	}
	// Within the tolerance the client's time is kept exactly.
	body = `{"batch":[{"type":"track","userId":"u","event":"x","timestamp":"2026-05-01T11:59:00Z","sentAt":"2026-05-01T11:59:59.700Z"}]}`
	res, _ = p.ParseBatch([]byte(body), "web", received)
	if got := res.Events[0].Timestamp; !got.Equal(time.Date(2026, 5, 1, 11, 59, 0, 0, time.UTC)) {
		t.Errorf("latency was taken for skew: %s", got)
	}
}

func TestBatchContextMerged(t *testing.T) {
	res, err := tracking.New().ParseBatch([]byte(`{"batch":[{"type":"track","userId":"u","event":"x","context":{"ip":"1.2.3.4"}}],"context":{"ip":"9.9.9.9","library":{"name":"analytics-python"}}}`), "web", received)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(res.Events[0].Context, &c)
	if c["ip"] != "1.2.3.4" || c["library"] == nil {
		t.Errorf("context %v: the event's keys win, the batch's fill in", c)
	}
}

// The batch context is copied into each event, so it counts against the
// limits: a small request must not store a large copy per event.
func TestBatchContextCountsAgainstLimits(t *testing.T) {
	pad := strings.Repeat("x", 20<<10)
	var evs []string
	for range 100 {
		evs = append(evs, `{"type":"page","anonymousId":"a"}`)
	}
	_, err := tracking.New().ParseBatch([]byte(`{"batch":[`+strings.Join(evs, ",")+`],"context":{"pad":"`+pad+`"}}`), "web", received)
	if portrait.ErrorCode(err) != portrait.ETOOLARGE {
		t.Fatalf("a 20 KB batch context: %v, want too_large", err)
	}
	small := strings.Repeat("y", 10<<10)
	big := `{"type":"page","anonymousId":"a","properties":{"p":"` + strings.Repeat("z", 25<<10) + `"}}`
	res, err := tracking.New().ParseBatch([]byte(`{"batch":[`+big+`,{"type":"page","anonymousId":"b"}],"context":{"pad":"`+small+`"}}`), "web", received)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || len(res.Rejected) != 1 || res.TooLarge != 1 {
		t.Errorf("an event over the limit with the context: %d accepted, %+v", len(res.Events), res.Rejected)
	}
}

func TestBatchErrors(t *testing.T) {
	for _, body := range []string{`{"batch":`, `[]`, `{"batch":{}}`, `{"nobatch":[]}`, `{"batch":[],"sentAt":"soon"}`, "\xff"} {
		if _, err := tracking.New().ParseBatch([]byte(body), "web", received); err == nil || portrait.ErrorCode(err) != portrait.EINVALID {
			t.Errorf("%q: want an invalid error, got %v", body, err)
		}
	}
}

// checkResult holds for anything the parser returns: every input event is
// accounted for exactly once, and what is accepted is well formed.
func checkResult(t *testing.T, res *tracking.Result, n int) {
	seen := map[int]bool{}
	for _, r := range res.Rejected {
		if r.Reason == "" || !utf8.ValidString(r.Reason) {
			t.Fatalf("rejection without a readable reason: %+v", r)
		}
		if seen[r.Index] {
			t.Fatalf("index %d rejected twice", r.Index)
		}
		seen[r.Index] = true
	}
	if n >= 0 && len(res.Events)+len(res.Rejected) != n {
		t.Fatalf("%d accepted + %d rejected != %d sent", len(res.Events), len(res.Rejected), n)
	}
	for _, e := range res.Events {
		switch {
		case e.MessageID == "":
			t.Fatal("accepted event without messageId")
		case e.UserID == "" && e.AnonymousID == "":
			t.Fatal("accepted event without ids")
		case e.Timestamp.IsZero():
			t.Fatal("accepted event without time")
		case !utf8.ValidString(e.UserID + e.AnonymousID + e.Name + e.MessageID):
			t.Fatal("accepted invalid UTF-8")
		}
		for _, raw := range [][]byte{e.Traits, e.Properties, e.Context} {
			if len(raw) > 0 {
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatalf("accepted a payload that is not an object: %s", raw)
				}
			}
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("accepted event cannot be stored: %v", err)
		}
	}
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"batch":[{"type":"track","userId":"u","event":"x","timestamp":"2026-01-01T00:00:00Z"}]}`,
		`{"batch":[{"type":"identify","anonymousId":1,"traits":{"a":[1,{"b":null}]}},{"type":"alias","userId":"u","previousId":"p"}],"sentAt":"2026-05-01T11:00:00Z","context":{"ip":"x"}}`,
		`{"batch":[{"type":"group","userId":"u","groupId":7},{"type":"page","anonymousId":"a","name":"首页"},null,1,"x"]}`,
		`{"batch":[]}`, `{"batch":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	p := tracking.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := p.ParseBatch(body, "fuzz", received)
		if err != nil {
			if portrait.ErrorCode(err) != portrait.EINVALID {
				t.Fatalf("unexpected error code: %v", err)
			}
			return
		}
		var b struct {
			Batch []json.RawMessage `json:"batch"`
		}
		json.Unmarshal(body, &b)
		checkResult(t, res, len(b.Batch))
	})
}

func FuzzParseSingle(f *testing.F) {
	for _, s := range []string{`{"userId":"u","event":"x"}`, `{"anonymousId":"a","traits":{"email":"x@y.z"},"timestamp":"2026-01-01"}`, `{"userId":-1,"event":""}`} {
		f.Add([]byte(s), "track")
		f.Add([]byte(s), "identify")
	}
	p := tracking.New()
	f.Fuzz(func(t *testing.T, body []byte, typ string) {
		res, err := p.ParseSingle(body, typ, "fuzz", received)
		if err != nil {
			t.Fatalf("single-event parsing never fails as a whole: %v", err)
		}
		checkResult(t, res, 1)
	})
}
