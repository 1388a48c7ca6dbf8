package main

import (
	"context"
	"fmt"
	"io"
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
	case "compare":
		return runBenchCompare(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "portrait bench: unknown benchmark %q (ingest, segments, compare)\n", args[0])
	return errUsage
}
