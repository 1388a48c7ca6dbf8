package main

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// A node applies each partition with a processor of its own, so that its
// partitions are applied at once (one processor for all took them one at
// a time), and no more at once than --apply-concurrency.
func TestPartitionsOfANodeAppliedAtOnce(t *testing.T) {
	a := &App{Proc: profile.NewProcessor(nil, identity.DefaultRules())}
	a.Proc.Partitioned = true
	a.Config.ApplyConcurrency = 2
	p0, p1 := a.partitionProc(0), a.partitionProc(1)
	if p0 == a.Proc || p1 == a.Proc || p0 == p1 {
		t.Fatal("partitions share a processor: their batches wait for each other")
	}
	if a.partitionProc(0) != p0 {
		t.Fatal("a partition's processor changed between batches")
	}
	if !p0.Partitioned {
		t.Fatal("a partition's processor is not partitioned")
	}
	ctx := context.Background()
	d1, err := a.applySlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := a.applySlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := a.applySlot(short); err == nil {
		t.Fatal("a third batch began with --apply-concurrency 2")
	}
	d1()
	d3, err := a.applySlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d2()
	d3()
	if n := applyConcurrency(0); n < 4 {
		t.Errorf("default concurrency %d, want at least 4", n)
	}
}

// Partitioned application takes larger batches from the bus than the
// leased mode's consumers (what is buffered, up to the cap), unless
// --bus-batch says otherwise.
func TestPartitionedConsumersTakeLargerBatches(t *testing.T) {
	cfg := Config{}
	cfg.Apply = applyPartitioned
	if got := busBatch(cfg); got != partitionedBusBatch {
		t.Errorf("partitioned: batch %d, want %d", got, partitionedBusBatch)
	}
	cfg.Apply = applyLeased
	if got := busBatch(cfg); got != 0 {
		t.Errorf("leased: batch %d, want the bus's default (0)", got)
	}
	cfg.BusBatch = 300
	if got := busBatch(cfg); got != 300 {
		t.Errorf("--bus-batch 300: batch %d", got)
	}
}
