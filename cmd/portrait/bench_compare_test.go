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
		order = append(order, r.Build)
	}
	if got := strings.Join(order, ","); got != "old,new,old,new" {
		t.Errorf("runs in order %s, want old,new,old,new", got)
	}
	for _, b := range []string{"old", "new"} {
		if !regexp.MustCompile(`(?m)^` + b + `\s+2\s`).MatchString(stdout.String()) {
			t.Errorf("summary lacks %s with 2 runs:\n%s", b, stdout.String())
		}
	}
}
