package e2e_test

import (
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/nats/natstest"
)

// TestBusCrashDurability is TestCrashDurability with the events going
// through NATS JetStream (serve --bus, one node, role all, embedded
// store): an event is acknowledged once the stream has it; the node's
// consumers append it to the log and acknowledge it to the stream after
// the commit. The server is killed with SIGKILL mid-stream and restarted
// (its partition leases expire, its unacknowledged batches come back);
// afterwards every acknowledged event is in the log exactly once, counted
// once in profiles, and rebuild reproduces them.
func TestBusCrashDurability(t *testing.T) {
	url := natstest.URL(t)
	stream := natstest.Stream(t, url, "portrait_e2e")
	cfg := crashConfig{Workers: 4, Kills: 3, Users: 300, BatchSize: 100, MinBatchesPerLife: 5, MaxKillDelay: 1500 * time.Millisecond,
		ServeArgs: []string{"--bus", url, "--bus-stream", stream, "--bus-partitions", "4", "--bus-ack-wait", "3s", "--lease-ttl", "2s"}}
	if testing.Short() {
		cfg.Kills = 2
	}
	runCrash(t, cfg)
}
