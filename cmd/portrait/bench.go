package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"syscall"
	"time"
)

// runBench dispatches "portrait bench <what>".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: portrait bench ingest|segments|compare [flags]")
		return errUsage
	}
	switch args[0] {
	case "ingest":
		return runBenchIngest(ctx, args[1:], stdout, stderr)
	case "segments":
		return runBenchSegments(ctx, args[1:], stdout, stderr)
	case "map": // customer business map (issue 14)
		return runBenchMap(ctx, args[1:], stdout, stderr)
	case "insight": // audience insight (issue 14)
		return runBenchInsight(args[1:], stdout, stderr)
	case "accounts":
		return runBenchAccounts(ctx, args[1:], stdout, stderr)
	case "compare":
		return runBenchCompare(ctx, args[1:], stdout, stderr)
	case "nodes": // several nodes (issue 17): bench_nodes.go
		return runBenchNodes(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "portrait bench: unknown benchmark %q (ingest, segments, map, insight, accounts, compare, nodes)\n", args[0])
	return errUsage
}

// cpuTime is the process's CPU time (user and system): on a shared,
// oversubscribed machine the wall clock says more about the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// medianOf is the median of measured rounds (the mean of the middle two
// when their number is even).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
