package main

import (
	"context"
	"fmt"
	"io"
)

// runBench dispatches "portrait bench <what>".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: portrait bench ingest [flags]")
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
	}
	fmt.Fprintf(stderr, "portrait bench: unknown benchmark %q (ingest)\n", args[0])
	return errUsage
}
