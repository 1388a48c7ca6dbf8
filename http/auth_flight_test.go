package http_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portrait-cdp/portrait"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/sqlite"
)

// countedKeys is the real key store, counting the slow verifications
// (bcrypt) the server asks of it.
type countedKeys struct {
	*sqlite.DB
	checks atomic.Int64
}

func (c *countedKeys) Authenticate(ctx context.Context, kind, secret string) (*portrait.Key, error) {
	c.checks.Add(1)
	return c.DB.Authenticate(ctx, kind, secret)
}

// Clients that start together with one write key (bench ingest's 16, any
// SDK's pool) share one bcrypt check instead of paying one each before the
// first event is acknowledged; a wrong key is refused to every one of them,
// and its refusal is not kept for the right one.
func TestConcurrentRequestsShareOneKeyCheck(t *testing.T) {
	var keys *countedKeys
	s := start(t, func(s *porthttp.Server, db *sqlite.DB) {
		keys = &countedKeys{DB: db}
		s.Keys = keys
	})
	const clients = 16
	send := func(secret string) []int {
		statuses := make([]int, clients)
		var ready, wg sync.WaitGroup
		ready.Add(clients)
		gate := make(chan struct{})
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := `{"batch":[{"type":"track","event":"Viewed","userId":"u-` + strings.Repeat("x", i) + `","messageId":"m-` + secret[:2] + strings.Repeat("y", i) + `"}]}`
				req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/batch", strings.NewReader(body))
				req.SetBasicAuth(secret, "")
				req.Header.Set("Content-Type", "application/json")
				ready.Done()
				<-gate
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		ready.Wait()
		close(gate)
		wg.Wait()
		return statuses
	}

	for i, st := range send(writeKey) {
		if st != http.StatusOK {
			t.Errorf("client %d with the write key: %d", i, st)
		}
	}
	if n := keys.checks.Load(); n != 1 {
		t.Errorf("%d clients starting together made %d slow key checks, want 1", clients, n)
	}

	keys.checks.Store(0)
	for i, st := range send("wrong-" + writeKey) {
		if st != http.StatusUnauthorized {
			t.Errorf("client %d with a wrong key: %d, want 401", i, st)
		}
	}
	if t.Failed() {
		return
	}
	// The refusal is not remembered: the right key still works.
	for i, st := range send(writeKey) {
		if st != http.StatusOK {
			t.Errorf("client %d with the write key after the refusals: %d", i, st)
		}
	}
}
