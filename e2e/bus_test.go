package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	natsbus "github.com/portrait-cdp/portrait/nats"
)

// natsURL is the local NATS server's URL; the test skips where none
// answers, unless PORTRAIT_REQUIRE_SERVICES is set.
func natsURL(t *testing.T) string {
	t.Helper()
	addr := "127.0.0.1:4222"
	if v := os.Getenv("PORTRAIT_NATS_ADDR"); v != "" {
		addr = v
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("PORTRAIT_REQUIRE_SERVICES") != "" {
			t.Fatalf("NATS is not answering on %s: %v", addr, err)
		}
		t.Skipf("NATS is not answering on %s (start it, or set PORTRAIT_NATS_ADDR): %v", addr, err)
	}
	c.Close()
	return "nats://" + addr
}

// busStream names a stream of the test's own and deletes it (and its
// leases) when the test ends.
func busStream(t *testing.T, url string, partitions int) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "portrait_e2e_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		bus, err := natsbus.Open(ctx, natsbus.Config{URL: url, Stream: name, Partitions: partitions})
		if err != nil {
			t.Errorf("cannot open stream %s to delete it: %v", name, err)
			return
		}
		defer bus.Close()
		if err := bus.Delete(ctx); err != nil {
			t.Errorf("cannot delete stream %s: %v", name, err)
		}
	})
	return name
}

// TestBusCrashDurability is TestCrashDurability with the events going
// through NATS JetStream (serve --bus, one node, role all, embedded
// store): an event is acknowledged once the stream has it; the node's
// consumers append it to the log and acknowledge it to the stream after
// the commit. The server is killed with SIGKILL mid-stream and restarted
// (its partition leases expire, its unacknowledged batches come back);
// afterwards every acknowledged event is in the log exactly once, counted
// once in profiles, and rebuild reproduces them.
func TestBusCrashDurability(t *testing.T) {
	url := natsURL(t)
	stream := busStream(t, url, 4)
	cfg := crashConfig{Workers: 4, Kills: 3, Users: 300, BatchSize: 100, MinBatchesPerLife: 5, MaxKillDelay: 1500 * time.Millisecond,
		ServeArgs: []string{"--bus", url, "--bus-stream", stream, "--bus-partitions", "4", "--bus-ack-wait", "3s", "--lease-ttl", "2s"}}
	if testing.Short() {
		cfg.Kills = 2
	}
	runCrash(t, cfg)
}
