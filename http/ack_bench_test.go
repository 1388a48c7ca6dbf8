package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// BenchmarkAckPath is the acknowledgement path alone: 16 clients send
// batches of 100 Segment events (the mix `portrait bench ingest` sends) to
// the real server with the embedded store, and a 200 means the events are
// committed; no processor runs, so the CPU it reports (getrusage, the
// process's user+sys per event: the machine is shared, wall time measures
// the neighbours) is what the ack path costs, client included.
func BenchmarkAckPath(b *testing.B) {
	const perRequest, clients = 100, 16
	ctx := context.Background()
	bodies := ackBodies(20_000, perRequest)
	db, err := sqlite.Open(ctx, sqlitetest.Dir(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.KeyHashCost = testKeyCost
	if err := db.CreateKey(ctx, &portrait.Key{Kind: portrait.KeyWrite, Name: "bench"}, writeKey); err != nil {
		b.Fatal(err)
	}
	s := porthttp.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Events, s.Quarantine, s.Keys, s.Profiles = db, db, db, db
	s.Parser.Blocked = identity.DefaultRules().IsBlocked
	s.Lag = func() (int64, float64, error) { return 0, 0, nil }
	s.Limits.WriteRate = 0
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	url := s.URL() + "/v1/batch"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var sent atomic.Int64 // requests so far: every request has a new body
	send := func(n int) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					i := sent.Add(1) - 1
					body := bodies[i%int64(len(bodies))]
					if i >= int64(len(bodies)) { // a new round: new message ids
						body = bytes.ReplaceAll(body, []byte(`"bench-`), fmt.Appendf(nil, `"r%d-`, i/int64(len(bodies))))
					}
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.SetBasicAuth(writeKey, "")
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						failed.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			return err
		}
		return nil
	}
	if err := send(clients); err != nil { // the key check, connections
		b.Fatal(err)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	if err := send(b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(used.Microseconds())/float64(b.N*perRequest), "cpu-µs/event")
	b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "events/s")
	if last, _ := db.LastSeq(ctx); last != int64((b.N+clients)*perRequest) {
		b.Fatalf("log holds %d events, sent %d", last, (b.N+clients)*perRequest)
	}
}

// ackBodies are request bodies of the mix bench ingest sends (identify,
// track and page calls of users customers), built with encoding/json as a
// client library would.
func ackBodies(users, perRequest int) [][]byte {
	names := []string{"王芳", "李伟", "张敏", "Emma Rossi", "Liam Smith"}
	base := time.Now().UTC().Add(-time.Hour)
	var out [][]byte
	var cur []map[string]any
	for i := range 20_000 {
		u := (i * 7919) % users
		e := map[string]any{"messageId": fmt.Sprintf("bench-%09d", i), "timestamp": base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"anonymousId": fmt.Sprintf("anon-%06d", u), "context": map[string]any{"library": map[string]any{"name": "analytics-node", "version": "2.1.0"}, "ip": "10.0.0.1", "userAgent": "bench"}}
		switch r := i % 10; {
		case r == 0:
			e["type"], e["userId"] = "identify", fmt.Sprintf("user-%06d", u)
			e["traits"] = map[string]any{"email": fmt.Sprintf("user%06d@example.com", u), "name": names[u%len(names)], "city": "上海市", "plan": "pro"}
		case r < 7:
			e["type"], e["userId"], e["event"] = "track", fmt.Sprintf("user-%06d", u), []string{"Product Viewed", "Order Completed", "Added to Cart"}[r%3]
			e["properties"] = map[string]any{"sku": fmt.Sprintf("SKU-%04d", i%2000), "revenue": float64(i%100000) / 100, "currency": "CNY", "category": "数码 Electronics"}
		default:
			e["type"], e["name"] = "page", "Home"
			e["properties"] = map[string]any{"path": "/", "referrer": "https://www.baidu.com/"}
		}
		cur = append(cur, e)
		if len(cur) == perRequest {
			body, _ := json.Marshal(map[string]any{"batch": cur, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
			out = append(out, body)
			cur = nil
		}
	}
	return out
}
