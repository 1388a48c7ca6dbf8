package http_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/sqlite"
)

func TestSecurityHeaders(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/v1/profiles/nobody", "/healthz"} {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %v", path, h)
		}
		if strings.HasPrefix(path, "/v1/") && (h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'")) {
			t.Errorf("%s: an API answer may be cached or framed: %v", path, h)
		}
	}
}

// A flood from one key gets 429 with Retry-After; another key is not
// affected.
func TestRateLimitPerKey(t *testing.T) {
	s := start(t, func(srv *porthttp.Server, _ *sqlite.DB) {
		srv.Limits.AdminRate, srv.Limits.WriteRate = 2, 2 // bursts of 8
	})
	codes := map[int]int{}
	var retry string
	for range 20 {
		req, _ := http.NewRequest("GET", s.url+"/v1/quarantine", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retry = resp.Header.Get("Retry-After")
		}
	}
	if codes[200] < 8 || codes[429] < 10 {
		t.Errorf("admin flood: %v", codes)
	}
	if n, err := strconv.Atoi(retry); err != nil || n < 1 {
		t.Errorf("Retry-After %q", retry)
	}
	// The write key has its own bucket.
	if r := s.post(t, "/v1/track", `{"userId":"u1","event":"x"}`); r.status != 200 {
		t.Errorf("the write key was limited by the admin key's flood: %d %s", r.status, r.raw)
	}
	n429 := 0
	for range 20 {
		if r := s.post(t, "/v1/track", `{"userId":"u1","event":"x"}`); r.status == http.StatusTooManyRequests {
			n429++
		}
	}
	if n429 < 10 {
		t.Errorf("write flood: only %d of 20 limited", n429)
	}
}

func TestMetricsBehindToken(t *testing.T) {
	s := start(t, func(srv *porthttp.Server, _ *sqlite.DB) { srv.MetricsToken = "metrics-secret" })
	get := func(auth string) int {
		req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(""); c != 401 {
		t.Errorf("metrics without the token: %d", c)
	}
	if c := get("Bearer wrong"); c != 401 {
		t.Errorf("metrics with a wrong token: %d", c)
	}
	if c := get("Bearer metrics-secret"); c != 200 {
		t.Errorf("metrics with the token: %d", c)
	}
}

// slowBody sends a little, then nothing until released.
type slowBody struct {
	first   []byte
	release chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.release
	return 0, io.EOF
}

// A wrong key in the headers is refused before the body is read: the
// answer comes while the body is still being sent. A request with no
// credential that dribbles its body is cut off after UnauthBodyTimeout.
func TestBodyReadOnlyAfterTheKey(t *testing.T) {
	s := start(t, func(srv *porthttp.Server, _ *sqlite.DB) { srv.Limits.UnauthBodyTimeout = 300 * time.Millisecond })
	send := func(withKey string) (int, time.Duration) {
		body := &slowBody{first: []byte(`{"batch":[`), release: make(chan struct{})}
		defer close(body.release)
		req, _ := http.NewRequest("POST", s.url+"/v1/batch", body)
		req.ContentLength = 10 << 20
		if withKey != "" {
			req.SetBasicAuth(withKey, "")
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, time.Since(start)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, took := send("not-a-key"); code != 401 || took > 3*time.Second {
		t.Errorf("a wrong key: %d after %s (the body was waited for)", code, took)
	}
	if code, took := send(""); code == 200 || took > 3*time.Second {
		t.Errorf("no key and a stalled body: %d after %s", code, took)
	}
}

// An upload over the configured limit is refused with 413.
func TestUploadLimit(t *testing.T) {
	s := start(t, func(srv *porthttp.Server, db *sqlite.DB) {
		srv.Importer = &importer.Importer{Log: db, Runs: db, Parser: srv.Parser}
		srv.ImportRuns, srv.QualityStore = db, db
		srv.ImportDir = t.TempDir()
		srv.MaxImportBytes = 1 << 20
	})
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("source", "crm")
	mw.WriteField("format", "csv")
	fw, _ := mw.CreateFormFile("file", "people.csv")
	fw.Write([]byte("email\n"))
	fw.Write(bytes.Repeat([]byte("someone@example.com\n"), 3<<20/20))
	mw.Close()
	req, _ := http.NewRequest("POST", s.url+"/v1/imports", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 3 MB upload over a 1 MB limit: %d", resp.StatusCode)
	}
}

// Without a metrics token, /metrics answers clients on the host itself
// only: a server listening on a public address must not give them to
// anyone (it did, when probed).
func TestMetricsWithoutTokenOnlyOnTheHost(t *testing.T) {
	var srv *porthttp.Server
	s := start(t, func(x *porthttp.Server, _ *sqlite.DB) { srv = x })
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("metrics from the host itself: %d", resp.StatusCode)
	}
	for _, remote := range []string{"203.0.113.7:5555", "10.0.0.8:80", "[2001:db8::1]:443"} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "metrics-token") {
			t.Errorf("metrics to %s without a token: %d %.100s", remote, rec.Code, rec.Body.String())
		}
	}
}
