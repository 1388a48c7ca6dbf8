package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/analytics/jobs"
)

// overStore reports whether analyze args ask for a run over the store: a
// data directory named and no input file.
func overStore(args []string) bool {
	has := func(name string) bool {
		for _, a := range args {
			if a == "--"+name || a == "-"+name || strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"=") {
				return true
			}
		}
		return false
	}
	return has("data") && !has("input")
}

// analyzeStore runs an analysis over the embedded store, as the server's
// schedule does, writes the results back onto the profiles and prints the
// recorded run. The server must not be running on the same data directory
// (it holds the lock); there, POST /v1/analytics/runs does the same.
func analyzeStore(ctx context.Context, kind string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of the store")
	asJSON := fs.Bool("json", false, "machine-readable output")
	var params []string
	fs.Func("param", "analysis parameter name=value (repeatable), e.g. min_support=0.01, k=5, horizon_days=60", func(s string) error {
		params = append(params, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	p := jobs.Params{}
	for _, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return portrait.Errorf(portrait.EINVALID, "--param must be name=value, not %q", kv)
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			p[k] = f
		} else {
			p[k] = v
		}
	}
	a, err := OpenApp(ctx, Config{DataDir: *data, LogLevel: "error"}, stderr)
	if err != nil {
		if portrait.ErrorCode(err) == portrait.ECONFLICT {
			return portrait.Errorf(portrait.ECONFLICT, "%s; while the server runs, use: curl -X POST -H 'Authorization: Bearer $PORTRAIT_ADMIN_TOKEN' -d '{\"kind\":\"%s\"}' http://HOST/v1/analytics/runs", portrait.ErrorMessage(err), kind)
		}
		return err
	}
	defer a.Close()
	// Profiles first: the analysis reads what is derived from the log.
	last, err := a.DB.LastSeq(ctx)
	if err != nil {
		return err
	}
	if err := a.Proc.CatchUp(ctx, last); err != nil {
		return err
	}
	run, runErr := a.Jobs.RunNow(ctx, kind, p)
	if run == nil {
		return runErr
	}
	// Then the results written back.
	if last, err = a.DB.LastSeq(ctx); err != nil {
		return err
	}
	if err := a.Proc.CatchUp(ctx, last); err != nil {
		return err
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(run)
		return runErr
	}
	fmt.Fprintf(stdout, "%s run %s: %s, %d profiles written in %d ms\n", kind, run.ID, run.Status, run.Profiles, run.DurationMS)
	if run.Error != "" {
		fmt.Fprintf(stdout, "  error: %s\n", run.Error)
	}
	keys := make([]string, 0, len(run.Metrics))
	for k := range run.Metrics {
		keys = append(keys, k)
	}
	for _, k := range sortedStrings(keys) {
		b, _ := json.Marshal(run.Metrics[k])
		if len(b) > 100 {
			b = append(b[:100], []byte("…")...)
		}
		fmt.Fprintf(stdout, "  %-22s %s\n", k, b)
	}
	return runErr
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
