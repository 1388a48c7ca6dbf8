package e2e_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeSetup makes sure e2e/node has its packages and returns the node
// binary. It skips only when node or npm are not installed at all.
func nodeSetup(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the @segment/analytics-node test (CI installs node and npm)")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed: skipping the @segment/analytics-node test (CI installs node and npm)")
	}
	// The script returns at once when node_modules matches the lock file.
	cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts", "setup-e2e.sh"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/setup-e2e.sh failed (npm ci in e2e/node): %v\n%s", err, out.String())
	}
	return node
}

// wireRequest is one HTTP request the SDK sent, as seen by the proxy.
type wireRequest struct {
	Method, Path                    string
	UserAgent, Auth, ContentType    string
	ContentEncoding, RetryCount     string
	WriteKey                        string
	HasSentAt                       bool
	MessageIDs                      []string
	Timestamps                      map[string]string // messageId -> timestamp
	Status                          int               // what the SDK got
	ServerStatus                    int               // what the server answered
	ServerAccepted, ServerDuplicate int
	Injected                        bool // the proxy replaced a 200 by a 503
}

// wireProxy is a logging reverse proxy between the SDK and the server. It
// can lose the server's answer to one request (answering 503 although the
// server committed the batch), which is exactly when an SDK retries a batch
// that is already durable.
type wireProxy struct {
	t        *testing.T
	target   *url.URL
	failNth  int // 1-based index of the first-attempt request whose 200 is replaced by 503; 0: none
	mu       sync.Mutex
	requests []*wireRequest
	firsts   int
}

func (p *wireProxy) snapshot() []*wireRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*wireRequest(nil), p.requests...)
}

func (p *wireProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	wr := &wireRequest{
		Method: r.Method, Path: r.URL.Path, UserAgent: r.Header.Get("User-Agent"), Auth: r.Header.Get("Authorization"),
		ContentType: r.Header.Get("Content-Type"), ContentEncoding: r.Header.Get("Content-Encoding"),
		RetryCount: r.Header.Get("X-Retry-Count"), Timestamps: map[string]string{},
	}
	body := raw
	if strings.EqualFold(wr.ContentEncoding, "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			p.t.Errorf("SDK sent Content-Encoding gzip that does not decode: %v", err)
		}
	}
	var batch struct {
		WriteKey string          `json:"writeKey"`
		SentAt   json.RawMessage `json:"sentAt"`
		Batch    []struct {
			MessageID string `json:"messageId"`
			Timestamp string `json:"timestamp"`
		} `json:"batch"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		p.t.Errorf("SDK sent a body that is not a JSON batch: %v: %.200q", err, body)
	}
	wr.WriteKey, wr.HasSentAt = batch.WriteKey, len(batch.SentAt) > 0
	for _, e := range batch.Batch {
		wr.MessageIDs = append(wr.MessageIDs, e.MessageID)
		wr.Timestamps[e.MessageID] = e.Timestamp
	}
	p.mu.Lock()
	first := wr.RetryCount == ""
	if first {
		p.firsts++
	}
	inject := first && p.firsts == p.failNth
	p.requests = append(p.requests, wr)
	p.mu.Unlock()

	rp := httputil.NewSingleHostReverseProxy(p.target)
	rp.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var br batchResponse
		json.Unmarshal(b, &br)
		p.mu.Lock()
		wr.ServerStatus, wr.ServerAccepted, wr.ServerDuplicate = resp.StatusCode, br.Accepted, br.Duplicates
		wr.Status = resp.StatusCode
		if inject && resp.StatusCode == http.StatusOK {
			// The batch is committed, but the SDK will not know it.
			wr.Injected, wr.Status = true, http.StatusServiceUnavailable
			resp.StatusCode, resp.Status = http.StatusServiceUnavailable, "503 Service Unavailable"
			b = []byte(`{"error":{"code":"unavailable","message":"answer lost by the e2e proxy"}}`)
		}
		p.mu.Unlock()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		p.t.Errorf("proxy: %v", err)
		w.WriteHeader(http.StatusBadGateway)
	}
	rp.ServeHTTP(w, r)
}

// sdkRun is what send.mjs printed.
type sdkRun struct {
	Run          string            `json:"run"`
	UserID       string            `json:"userId"`
	AnonymousID  string            `json:"anonymousId"`
	SecondDevice string            `json:"secondDevice"`
	Email        string            `json:"email"`
	Traits       map[string]string `json:"traits"`
	BatchSize    int               `json:"batchSize"`
	Sent         []struct {
		Type      string `json:"type"`
		MessageID string `json:"messageId"`
	} `json:"sent"`
	Failed    []map[string]any `json:"failed"`
	Responses []int            `json:"responses"`
}

func runSendMJS(t *testing.T, node, base, run string, tracks, batch int) sdkRun {
	t.Helper()
	cmd := exec.Command(node, "send.mjs")
	cmd.Dir = filepath.Join(repoRoot, "e2e", "node")
	cmd.Env = append(os.Environ(), "PORTRAIT_URL="+base, "PORTRAIT_WRITE_KEY="+writeKey, "E2E_RUN="+run,
		"E2E_TRACKS="+strconv.Itoa(tracks), "E2E_BATCH="+strconv.Itoa(batch))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("node send.mjs: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node send.mjs: %v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("node send.mjs did not finish within 2 minutes\nstderr: %s", stderr.String())
	}
	var out sdkRun
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("send.mjs output is not JSON: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return out
}

// TestSegmentNodeSDK sends a customer journey with the real
// @segment/analytics-node SDK, through a logging proxy, and reads the
// profile back.
func TestSegmentNodeSDK(t *testing.T) {
	t.Parallel()
	node := nodeSetup(t)
	s := startServer(t)
	target, _ := url.Parse(s.URL())
	// The second first-attempt request loses its answer: the SDK retries
	// a batch the server has already made durable.
	proxy := &wireProxy{t: t, target: target, failNth: 2}
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	const tracks, batchSize = 25, 10
	start := time.Now()
	sent := runSendMJS(t, node, ps.URL, "sdk1", tracks, batchSize)
	end := time.Now()
	total := tracks + 5 // page, identify, tracks, group, page, alias
	if len(sent.Sent) != total {
		t.Fatalf("send.mjs reports %d calls, want %d", len(sent.Sent), total)
	}
	if len(sent.Failed) > 0 {
		t.Errorf("the SDK reports failed deliveries: %v", sent.Failed)
	}
	sentIDs := map[string]string{} // messageId -> type
	for _, e := range sent.Sent {
		sentIDs[e.MessageID] = e.Type
	}

	// What the SDK really did on the wire.
	reqs := proxy.snapshot()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
	onWire := map[string]int{} // first attempts only
	var firsts, retries []*wireRequest
	for _, r := range reqs {
		t.Logf("wire: %s %s events=%d retry=%q UA=%q enc=%q -> server %d (accepted %d, duplicates %d), SDK got %d",
			r.Method, r.Path, len(r.MessageIDs), r.RetryCount, r.UserAgent, r.ContentEncoding, r.ServerStatus, r.ServerAccepted, r.ServerDuplicate, r.Status)
		if r.Method != http.MethodPost || r.Path != "/v1/batch" {
			t.Errorf("SDK sent %s %s, want POST /v1/batch", r.Method, r.Path)
		}
		if r.Auth != wantAuth {
			t.Errorf("Authorization = %q, want HTTP Basic with the write key as user name (%q)", r.Auth, wantAuth)
		}
		if !strings.HasPrefix(r.ContentType, "application/json") {
			t.Errorf("Content-Type = %q", r.ContentType)
		}
		if !strings.HasPrefix(r.UserAgent, "analytics-node") {
			t.Errorf("User-Agent = %q, want the SDK's analytics-node...", r.UserAgent)
		}
		// analytics-node 3.x does not compress; the server accepts gzip too.
		if r.ContentEncoding != "" && !strings.EqualFold(r.ContentEncoding, "gzip") {
			t.Errorf("Content-Encoding = %q", r.ContentEncoding)
		}
		if r.WriteKey != writeKey || !r.HasSentAt {
			t.Errorf("batch body: writeKey=%q sentAt present=%v; the SDK sends both", r.WriteKey, r.HasSentAt)
		}
		if len(r.MessageIDs) > batchSize {
			t.Errorf("a batch of %d events, over maxEventsInBatch=%d", len(r.MessageIDs), batchSize)
		}
		if r.ServerStatus != http.StatusOK {
			t.Errorf("server answered %d to an SDK batch", r.ServerStatus)
		}
		if r.RetryCount == "" {
			firsts = append(firsts, r)
			for _, id := range r.MessageIDs {
				onWire[id]++
			}
			if r.ServerAccepted != len(r.MessageIDs) || r.ServerDuplicate != 0 {
				t.Errorf("first attempt of a batch of %d: server accepted %d, duplicates %d", len(r.MessageIDs), r.ServerAccepted, r.ServerDuplicate)
			}
		} else {
			retries = append(retries, r)
		}
	}
	// Batching really happened: 30 events in batches of at most 10.
	if min := (total + batchSize - 1) / batchSize; len(firsts) < min {
		t.Errorf("%d batches on the wire for %d events with maxEventsInBatch=%d; want at least %d", len(firsts), total, batchSize, min)
	}
	for id := range sentIDs {
		if onWire[id] != 1 {
			t.Errorf("messageId %s went out %d times in first attempts, want 1", id, onWire[id])
		}
	}
	if len(onWire) != total {
		t.Errorf("%d distinct messageIds on the wire, want %d", len(onWire), total)
	}
	// The retry: the SDK re-sent the batch whose answer was lost, with the
	// same messageIds, and the server recognised every one as a duplicate.
	var injected *wireRequest
	for _, r := range firsts {
		if r.Injected {
			injected = r
		}
	}
	if injected == nil {
		t.Fatalf("the proxy never replaced an answer (only %d batches?)", len(firsts))
	}
	if len(retries) != 1 {
		t.Fatalf("%d retried requests, want exactly 1 (after the lost answer)", len(retries))
	}
	rt := retries[0]
	if rt.RetryCount != "1" || strings.Join(rt.MessageIDs, ",") != strings.Join(injected.MessageIDs, ",") {
		t.Errorf("retry X-Retry-Count=%q ids=%v, want 1 and the lost batch's ids %v", rt.RetryCount, rt.MessageIDs, injected.MessageIDs)
	}
	if rt.ServerAccepted != 0 || rt.ServerDuplicate != len(injected.MessageIDs) {
		t.Errorf("retry of an already durable batch: server accepted %d, duplicates %d; want 0 and %d", rt.ServerAccepted, rt.ServerDuplicate, len(injected.MessageIDs))
	}

	// The profile, read back through the query API once processing has
	// applied every event.
	p := waitEventCount(t, s, "email", sent.Email, total)
	checkSDKProfile(t, s, sent, p, total, tracks, start, end)
	var identifyID string
	for _, e := range sent.Sent {
		if e.Type == "identify" {
			identifyID = e.MessageID
		}
	}
	for _, name := range []string{"email", "name", "note", "phone", "city"} {
		tr := p.Traits[name]
		if tr.MessageID != identifyID {
			t.Errorf("trait %s: message_id %q, want the identify's %q", name, tr.MessageID, identifyID)
		}
		if ts := wireTimestamp(reqs, identifyID); ts != "" {
			wire, err1 := time.Parse(time.RFC3339Nano, ts)
			got, err2 := time.Parse(time.RFC3339Nano, tr.Time)
			// Same machine, same clock: the skew correction is ~0, so the
			// trait time is the identify's timestamp (within a second).
			if err1 == nil && err2 == nil && (got.Sub(wire) > time.Second || wire.Sub(got) > time.Second) {
				t.Errorf("trait %s: time %s, identify sent with timestamp %s", name, tr.Time, ts)
			}
		}
	}

	// A second run re-sends the very same messageIds (new timestamps, new
	// HTTP requests), as a client that restarted and replayed its queue
	// would: nothing may be counted twice.
	before := len(proxy.snapshot())
	proxy.mu.Lock()
	proxy.failNth = 0
	proxy.mu.Unlock()
	again := runSendMJS(t, node, ps.URL, "sdk1", tracks, batchSize)
	if len(again.Failed) > 0 {
		t.Errorf("second run: failed deliveries %v", again.Failed)
	}
	dups := 0
	for _, r := range proxy.snapshot()[before:] {
		if r.ServerAccepted != 0 {
			t.Errorf("second run with the same messageIds: server accepted %d new events", r.ServerAccepted)
		}
		dups += r.ServerDuplicate
	}
	if dups != total {
		t.Errorf("second run: %d duplicates reported, want %d", dups, total)
	}
	s.waitCaughtUp(t, 60*time.Second)
	p2, ok := s.lookup(t, "email", sent.Email)
	if !ok || p2.EventCount != total {
		t.Errorf("after re-sending the same messageIds: event_count %d, want %d", p2.EventCount, total)
	}
	log := logCounts(t, s.dataDir)
	if len(log) != total {
		t.Errorf("event log holds %d events, want %d", len(log), total)
	}
	for id, n := range log {
		if _, ok := sentIDs[id]; !ok || n != 1 {
			t.Errorf("event log: %s appears %d times (sent by the SDK: %v)", id, n, ok)
		}
	}
}

func wireTimestamp(reqs []*wireRequest, id string) string {
	for _, r := range reqs {
		if ts, ok := r.Timestamps[id]; ok {
			return ts
		}
	}
	return ""
}

// waitEventCount polls the profile holding typ=value until its event_count
// reaches want (processing runs behind the acknowledgement).
func waitEventCount(t *testing.T, s *server, typ, value string, want int) profileDoc {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var p profileDoc
	var ok bool
	for time.Now().Before(deadline) {
		p, ok = s.lookup(t, typ, value)
		if ok && p.EventCount >= want {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("profile %s=%s: event_count %d (found %v) after 60s, want %d", typ, value, p.EventCount, ok, want)
	return p
}

func checkSDKProfile(t *testing.T, s *server, sent sdkRun, p profileDoc, total, tracks int, start, end time.Time) {
	t.Helper()
	if p.EventCount != total {
		t.Errorf("event_count = %d, want %d (every SDK call once)", p.EventCount, total)
	}
	wantCounts := map[string]int{"page": 2, "identify": 1, "track": tracks, "group": 1, "alias": 1}
	for typ, n := range wantCounts {
		if p.EventCounts[typ] != n {
			t.Errorf("event_counts[%s] = %d, want %d (all: %v)", typ, p.EventCounts[typ], n, p.EventCounts)
		}
	}
	if p.TrackCounts["Order Completed"] != tracks {
		t.Errorf("track_counts[Order Completed] = %d, want %d", p.TrackCounts["Order Completed"], tracks)
	}
	for _, id := range [][2]string{
		{"user_id", sent.UserID}, {"anonymous_id", sent.AnonymousID}, {"anonymous_id", sent.SecondDevice},
		{"email", sent.Email}, {"phone", "+8613912345678"},
	} {
		if !p.hasIdentifier(id[0], id[1]) {
			t.Errorf("identifier %s=%s missing: %v", id[0], id[1], p.Identifiers)
		}
	}
	want := map[string]string{
		"email": sent.Email,
		"name":  "张伟",                   // must come back intact
		"note":  "喜欢乌龙茶 · likes oolong", // no standardiser: byte for byte
		"phone": "+8613912345678",       // standardised to E.164 (sent as "+86 139 1234 5678")
		"city":  "上海",                   // cities are standardised: 上海 may come back as 上海市
	}
	if sent.Traits["name"] != want["name"] || sent.Traits["note"] != want["note"] {
		t.Errorf("send.mjs sent name %q, note %q", sent.Traits["name"], sent.Traits["note"])
	}
	for name, v := range want {
		tr, ok := p.Traits[name]
		if !ok {
			t.Errorf("trait %s missing: %v", name, p.Traits)
			continue
		}
		if s, _ := tr.Value.(string); s != v && !(name == "city" && strings.HasPrefix(s, v)) {
			t.Errorf("trait %s = %q, want %q", name, tr.Value, v)
		}
		if tr.Source != writeKeyName {
			t.Errorf("trait %s: source %q, want the write key's name %q", name, tr.Source, writeKeyName)
		}
		at, err := time.Parse(time.RFC3339Nano, tr.Time)
		if err != nil {
			t.Errorf("trait %s: time %q is not RFC 3339: %v", name, tr.Time, err)
		} else if at.Before(start.Add(-time.Minute)) || at.After(end.Add(time.Minute)) {
			t.Errorf("trait %s: time %s outside the run (%s .. %s)", name, at, start, end)
		}
	}
	// Group traits describe the account, not the person.
	if tr, ok := p.Traits["industry"]; ok {
		t.Errorf("group trait industry landed on the person: %v", tr)
	}
	// Every identifier leads to the same profile, and so does its id.
	for _, id := range [][2]string{{"user_id", sent.UserID}, {"anonymous_id", sent.AnonymousID}, {"anonymous_id", sent.SecondDevice}, {"phone", "+86 139 1234 5678"}} {
		q, ok := s.lookup(t, id[0], id[1])
		if !ok || q.ID != p.ID {
			t.Errorf("lookup %s=%s: profile %q (found %v), want %q", id[0], id[1], q.ID, ok, p.ID)
		}
	}
	var byID profileDoc
	if code := s.getJSON(t, "/v1/profiles/"+url.PathEscape(p.ID), &byID); code != http.StatusOK || byID.EventCount != total {
		t.Errorf("GET /v1/profiles/%s: HTTP %d, event_count %d", p.ID, code, byID.EventCount)
	}
	if code := s.getJSON(t, "/v1/profiles/p_doesnotexist", nil); code != http.StatusNotFound {
		t.Errorf("GET an absent profile: HTTP %d, want 404", code)
	}

	// The events, paged: every messageId once, revenue kept as sent.
	seen := map[string]bool{}
	revenue := 0.0
	cursor := ""
	for page := 0; page < 100; page++ {
		var ev struct {
			Events []struct {
				MessageID  string         `json:"messageId"`
				Type       string         `json:"type"`
				Properties map[string]any `json:"properties"`
			} `json:"events"`
			Next string `json:"next"`
		}
		path := "/v1/profiles/" + url.PathEscape(p.ID) + "/events?limit=7"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if code := s.getJSON(t, path, &ev); code != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d", path, code)
		}
		for _, e := range ev.Events {
			if seen[e.MessageID] {
				t.Errorf("events: %s listed twice", e.MessageID)
			}
			seen[e.MessageID] = true
			if e.Type == "track" {
				r, _ := e.Properties["revenue"].(float64)
				revenue += r
			}
		}
		if ev.Next == "" || len(ev.Events) == 0 {
			break
		}
		cursor = ev.Next
	}
	var ids []string
	for _, e := range sent.Sent {
		if !seen[e.MessageID] {
			ids = append(ids, e.MessageID)
		}
	}
	sort.Strings(ids)
	if len(ids) > 0 || len(seen) != total {
		t.Errorf("profile events: %d listed, missing %v", len(seen), ids)
	}
	wantRevenue := 0.0
	for i := 0; i < tracks; i++ {
		wantRevenue += float64(10 + i)
	}
	if revenue != wantRevenue {
		t.Errorf("sum of properties.revenue over the profile's events = %v, want %v", revenue, wantRevenue)
	}
}
