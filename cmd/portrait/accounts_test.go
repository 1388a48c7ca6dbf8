package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// Every industry template loads into a fresh store with one command (its
// tag expressions compile against the trait schema, its segments parse),
// loading again changes nothing, and the scorecard is journalled: a new
// process finds it.
func TestTemplatesLoad(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"templates", "list"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"retail_banking", "corporate_banking", "insurance", "ecommerce", "b2b_software"} {
		if !strings.Contains(out.String(), name) {
			t.Fatalf("list lacks %s: %s", name, out.String())
		}
	}
	for _, name := range []string{"corporate_banking", "ecommerce", "retail_banking", "insurance", "b2b_software", "b2b_software"} {
		out.Reset()
		if err := run(ctx, []string{"templates", "load", name, "--data", data, "--json"}, &out, &errb); err != nil {
			t.Fatalf("%s: %v (%s)", name, err, errb.String())
		}
		var sum map[string]any
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum["scorecard"] != true || sum["tags"].(float64) < 2 {
			t.Fatalf("%s: %s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), `"segments":0,"segments_kept":2`) {
		t.Fatalf("second load created segments again: %s", out.String())
	}
	a, err := OpenApp(ctx, Config{DataDir: data, LogLevel: "error"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.HTTP.Accounts.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if c := a.HTTP.Accounts.Model.Scorecard(); c.Weights["engagement"] != 25 || c.Industries[0] != "I" {
		t.Fatalf("scorecard not the last template's: %+v", c)
	}
	if err := run(ctx, []string{"templates", "load", "nope", "--data", data}, &out, &errb); err == nil || !strings.Contains(err.Error(), "retail_banking") {
		t.Fatalf("unknown template: %v", err)
	}
}
