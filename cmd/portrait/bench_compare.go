package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portrait-cdp/portrait"
)

// compareRun is one run of one build in `portrait bench compare`.
type compareRun struct {
	Build  string       `json:"build"`
	Round  int          `json:"round"`
	Start  time.Time    `json:"start"`
	Load1  string       `json:"load1"` // the 1-minute load average when the run began
	Result ingestResult `json:"result"`
}

// runBenchCompare runs `bench ingest --json` of several builds in turn,
// round after round, and prints each build's median and range: on a
// shared machine two runs of one build can differ by more than the builds
// do, so builds are compared only when measured alternately in one run.
func runBenchCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rounds := fs.Int("rounds", 4, "rounds; each runs every build once, in the order given")
	out := fs.String("out", "", "append each run as a JSON line to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portrait bench compare [--rounds N] [--out F] BINARY... [-- bench ingest flags]")
		fmt.Fprintln(stderr, "BINARY is a portrait executable, optionally label=path (e.g. 6f67bab=/tmp/p-6f67bab)")
		fs.PrintDefaults()
	}
	var rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 || *rounds < 1 {
		fs.Usage()
		return errUsage
	}
	type build struct{ label, path string }
	var builds []build
	for _, a := range fs.Args() {
		label, path, ok := strings.Cut(a, "=")
		if !ok {
			label, path = filepath.Base(a), a
		}
		builds = append(builds, build{label, path})
	}
	var sink io.Writer = io.Discard
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return portrait.Wrap(err, "cannot open "+*out)
		}
		defer f.Close()
		sink = f
	}
	runs := map[string][]ingestResult{}
	for r := range *rounds {
		for _, b := range builds {
			run := compareRun{Build: b.label, Round: r + 1, Start: time.Now().UTC(), Load1: load1()}
			cmd := exec.CommandContext(ctx, b.path, append([]string{"bench", "ingest", "--json"}, rest...)...)
			var so bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, stderr
			if err := cmd.Run(); err != nil {
				return portrait.Wrap(err, fmt.Sprintf("%s (round %d)", b.label, r+1))
			}
			if err := json.Unmarshal(so.Bytes(), &run.Result); err != nil {
				return portrait.Wrap(err, b.label+": unreadable bench output")
			}
			line, _ := json.Marshal(run)
			fmt.Fprintf(sink, "%s\n", line)
			fmt.Fprintf(stderr, "round %d %s: %.0f acked/s, %.0f live/s, CPU ms per 1k %.0f acked / %.0f processed, peak %.0f MiB (load %s)\n",
				r+1, b.label, run.Result.AckedPerSec, run.Result.LiveProcPerSec, run.Result.CPUMsPer1kAcked, run.Result.CPUMsPer1kProcessed, run.Result.PeakRSSMiB, run.Load1)
			runs[b.label] = append(runs[b.label], run.Result)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	// The CPU columns rank builds where the rates cannot: a loaded machine
	// stretches a run's wall clock far more than its CPU time.
	fmt.Fprintf(tw, "build\truns\tacked/s median (range)\tCPU ms/1k acked\tlive processing/s\tCPU ms/1k processed\treplay served/s\treplay CPU ms/1k\tpeak RSS MiB\n")
	for _, b := range builds {
		rs := runs[b.label]
		col := func(f func(ingestResult) float64) string {
			v := make([]float64, len(rs))
			for i, x := range rs {
				v[i] = f(x)
			}
			sort.Float64s(v)
			return fmt.Sprintf("%.0f (%.0f–%.0f)", medianOf(v), v[0], v[len(v)-1])
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.label, len(rs),
			col(func(x ingestResult) float64 { return x.AckedPerSec }),
			col(func(x ingestResult) float64 { return x.CPUMsPer1kAcked }),
			col(func(x ingestResult) float64 { return x.LiveProcPerSec }),
			col(func(x ingestResult) float64 { return x.CPUMsPer1kProcessed }),
			col(func(x ingestResult) float64 { return x.ReplayPerSec }),
			col(func(x ingestResult) float64 { return x.ReplayCPUMsPer1k }),
			col(func(x ingestResult) float64 { return x.PeakRSSMiB }))
	}
	return tw.Flush()
}

func load1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
