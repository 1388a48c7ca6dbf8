package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// failingLog is a store whose log end cannot be read while fail is set:
// a store too loaded to answer within the lag's 2 s.
type failingLog struct {
	Store
	fail atomic.Bool
}

func (s *failingLog) LastSeq(ctx context.Context) (int64, error) {
	if s.fail.Load() {
		return 0, portrait.Errorf(portrait.EUNAVAILABLE, "timeout: the store did not answer")
	}
	return s.Store.LastSeq(ctx)
}

// A lag that cannot be read is reported as such by the metrics (NaN) and
// the app's lag (an error), not as a lag of 0, which says caught up: a
// loaded store looked caught up to a metrics scraper and to `bench
// nodes`, which stopped waiting. (Readiness with a lag error:
// http/TestReadinessReportsALagItCannotRead.)
func TestReadinessSaysWhenTheLagCannotBeRead(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), LogLevel: "error"}
	cfg.AnalyticsEvery = 0
	a, err := OpenApp(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	st := &failingLog{Store: a.DB}
	a.DB = st
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		r, err := http.Get(a.HTTP.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	ready := func() map[string]any {
		t.Helper()
		var out map[string]any
		if err := json.Unmarshal([]byte(get("/readyz")), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if r := ready(); r["processing_lag_events"] != float64(0) || r["processing_lag_error"] != nil {
		t.Fatalf("readable store: %v", r)
	}
	st.fail.Store(true)
	r := ready()
	if _, ok := r["processing_lag_events"]; ok {
		t.Errorf("readiness reports a lag of %v it could not read", r["processing_lag_events"])
	}
	if r["status"] == "ready" {
		t.Errorf("readiness: ready over a store that does not answer: %v", r)
	}
	if m := get("/metrics"); !strings.Contains(m, "portrait_processing_lag_events NaN") {
		t.Errorf("metrics: the lag is not NaN:\n%s", grepLines(m, "portrait_processing_lag"))
	}
	if _, _, err := a.lag(); err == nil {
		t.Error("lag: no error")
	}
	if n := a.backlog(); n < 1<<40 {
		t.Errorf("backlog %d: an unreadable backlog must hold the early RFM refresh back", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
