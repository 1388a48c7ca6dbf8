package main

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// portrait bench insight --json prints insight_ms beside its baseline, and
// the generated population has real differences to find (the target's
// lean towards v0 and higher numbers) among null ones.
func TestBenchInsightJSON(t *testing.T) {
	var out bytes.Buffer
	if err := runBenchInsight([]string{"--profiles", "5000", "--rounds", "1", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if m["insight_ms"] <= 0 || m["breakdown_ms"] <= 0 || m["attributes"] != 50 || m["tests"] < 100 {
		t.Errorf("bench insight: %s", out.String())
	}
	if m["significant"] < 5 || m["significant"] > m["tests"]/2 {
		t.Errorf("%v significant of %v tests: the planted differences (10 of 30 categorical traits, 5 of 10 numeric) should show, the rest not", m["significant"], m["tests"])
	}
}
