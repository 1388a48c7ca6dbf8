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

// bench compare alternates the builds round by round, keeps every run and
// summarises each build. One real `bench ingest --json` run (in process)
// is held to what a run must report; the builds bench compare alternates
// are then scripts that check the arguments they get and print that run's
// output, so that the four runs the alternation needs cost no more servers
// (each real run opens the app twice under the race detector: minutes at
// CI's load).
func TestBenchCompareAlternates(t *testing.T) {
	ingestArgs := []string{"--events", "200", "--batch", "50", "--concurrency", "2", "--users", "40"}
	var real, stderr bytes.Buffer
	if err := runBenchIngest(context.Background(), append([]string{"--json"}, ingestArgs...), &real, &stderr); err != nil {
		t.Fatalf("bench ingest: %v\n%s", err, stderr.String())
	}
	var res ingestResult
	if err := json.Unmarshal(real.Bytes(), &res); err != nil {
		t.Fatalf("bench ingest --json: %v\n%s", err, real.String())
	}
	if res.Events != 200 || res.AckedPerSec <= 0 || res.Profiles == 0 {
		t.Errorf("bench ingest: %+v", res)
	}
	// CPU per event: the acknowledging phase is part of the span up to
	// caught-up processing, so it cannot cost more.
	if res.CPUMsPer1kAcked <= 0 || res.CPUMsPer1kProcessed < res.CPUMsPer1kAcked || res.ReplayCPUMsPer1k <= 0 {
		t.Errorf("bench ingest: CPU ms per 1k acked %.1f, processed %.1f, replay %.1f",
			res.CPUMsPer1kAcked, res.CPUMsPer1kProcessed, res.ReplayCPUMsPer1k)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run.json"), real.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "bench ingest --json " + strings.Join(ingestArgs, " ")
	build := func(label string) string {
		path := filepath.Join(dir, label)
		script := "#!/bin/sh\n" +
			`[ "$*" = "` + want + `" ] || { echo "called with: $*" >&2; exit 2; }` + "\n" +
			`cat "` + filepath.Join(dir, "run.json") + `"` + "\n"
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return label + "=" + path
	}
	out := filepath.Join(dir, "runs.jsonl")
	var stdout bytes.Buffer
	stderr.Reset()
	err := runBenchCompare(context.Background(), append([]string{"--rounds", "2", "--out", out, build("old"), build("new"), "--"}, ingestArgs...), &stdout, &stderr)
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
		if r.Result != res {
			t.Errorf("run %s/%d kept %+v, the build printed %+v", r.Build, r.Round, r.Result, res)
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
