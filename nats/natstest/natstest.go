// Package natstest gives a test the NATS JetStream server the machine
// provides and a stream name of its own, removed when the test ends. It
// does not import the bus package (its own tests use it too), so it
// removes what the bus made by name: every stream whose name contains the
// test's, which covers the bus's stream and its lease bucket (a key-value
// bucket is a stream named KV_<bucket>) and whatever the bus adds later
// under its stream's name.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL is the local NATS server's URL (PORTRAIT_NATS_ADDR, else
// 127.0.0.1:4222). Where none answers the test is skipped, unless
// PORTRAIT_REQUIRE_SERVICES is set (./scripts/test sets it), where it
// fails: CI must not pass by skipping.
func URL(t testing.TB) string {
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

// Stream returns a new stream name, prefix and a random suffix, on the
// server at url. When the test ends every stream whose name contains it is
// deleted; a failure to delete fails the test (a leftover stream keeps its
// messages on the shared server).
func Stream(t testing.TB, url, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := remove(url, name); err != nil {
			t.Errorf("cannot remove the test's streams %s*: %v", name, err)
		}
	})
	return name
}

func remove(url, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	names := js.StreamNames(ctx)
	var found []string
	for n := range names.Name() {
		if strings.Contains(n, name) {
			found = append(found, n)
		}
	}
	if err := names.Err(); err != nil {
		return err
	}
	for _, n := range found {
		if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
	}
	return nil
}
