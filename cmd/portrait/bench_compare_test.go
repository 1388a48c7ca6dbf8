package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets this test binary act as the portrait command when
// PORTRAIT_TEST_AS_CLI is set: bench compare runs real builds as
// subprocesses, and this binary is one.
func TestMain(m *testing.M) {
	if os.Getenv("PORTRAIT_TEST_AS_CLI") == "1" {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bench compare alternates the builds round by round, keeps every run and
// summarises each build.
func TestBenchCompareAlternates(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTRAIT_TEST_AS_CLI", "1")
	out := filepath.Join(t.TempDir(), "runs.jsonl")
	var stdout, stderr bytes.Buffer
	err = runBenchCompare(context.Background(), []string{"--rounds", "2", "--out", out, "old=" + exe, "new=" + exe,
		"--", "--events", "200", "--batch", "50", "--concurrency", "2", "--users", "40"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r compareRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Result.Events != 200 || r.Result.AckedPerSec <= 0 || r.Result.Profiles == 0 {
			t.Errorf("run %s/%d: %+v", r.Build, r.Round, r.Result)
		}
		// CPU per event: the acknowledging phase is part of the span up to
		// caught-up processing, so it cannot cost more.
		if c := r.Result; c.CPUMsPer1kAcked <= 0 || c.CPUMsPer1kProcessed < c.CPUMsPer1kAcked || c.ReplayCPUMsPer1k <= 0 {
			t.Errorf("run %s/%d: CPU ms per 1k acked %.1f, processed %.1f, replay %.1f", r.Build, r.Round,
				c.CPUMsPer1kAcked, c.CPUMsPer1kProcessed, c.ReplayCPUMsPer1k)
		}
		order = append(order, r.Build)
	}
	if got := strings.Join(order, ","); got != "old,new,old,new" {
		t.Errorf("runs in order %s, want old,new,old,new", got)
	}
	if !strings.Contains(stdout.String(), "CPU ms/1k acked") {
		t.Errorf("summary lacks the CPU per event column:\n%s", stdout.String())
	}
	for _, b := range []string{"old", "new"} {
		if !regexp.MustCompile(`(?m)^` + b + `\s+2\s`).MatchString(stdout.String()) {
			t.Errorf("summary lacks %s with 2 runs:\n%s", b, stdout.String())
		}
	}
}
