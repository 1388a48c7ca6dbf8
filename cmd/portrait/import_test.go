package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/importer"
)

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	csv := filepath.Join(dir, "people.csv")
	os.WriteFile(csv, []byte("customer_id,email,phone\nc1, Zhang.San@Example.COM ,１３８ ００１３ ８０００\nc2,bad,\n,x-at-example.com,\n"), 0o600)
	var out, errb bytes.Buffer
	// No mapping: inferred from the header (customer_id identifies).
	if err := run(context.Background(), []string{"import", "--source", "crm", csv, "--data", data, "--json"}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	var sum struct {
		Rows, Accepted, Quarantined, Duplicates int
		Reasons                                 map[string]int
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatal(err, out.String())
	}
	if sum.Rows != 3 || sum.Accepted != 2 || sum.Quarantined != 1 || sum.Reasons["event has neither userId nor anonymousId"] != 1 {
		t.Fatalf("summary %s", out.String())
	}
	// Again: nothing new.
	out.Reset()
	if err := run(context.Background(), []string{"import", "--source", "crm", "--data", data, "--json", csv}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(out.Bytes(), &sum)
	if sum.Accepted != 0 || sum.Duplicates != 2 {
		t.Fatalf("re-import %s", out.String())
	}
	// The quality report sees the import.
	out.Reset()
	if err := run(context.Background(), []string{"quality", "--data", data, "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"field":"trait:email"`) || !strings.Contains(out.String(), `"quarantined":1`) {
		t.Errorf("quality %s", out.String())
	}
	// A locked data directory points at the API.
	lock, err := lockDir(data)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	err = run(context.Background(), []string{"import", "--source", "crm", "--data", data, csv}, &out, &errb)
	if portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), "POST") && !strings.Contains(portrait.ErrorMessage(err), "/v1/imports") {
		t.Errorf("locked: %v", err)
	}
}

// The progress line's rate is over the rows of the current pass and the
// time it has run, and is not shown before there is time to measure: a
// first update a moment after a pass starts must not claim billions of
// rows per second.
func TestProgressRate(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	now := t0
	b := &progressBar{w: &out, now: func() time.Time { return now }}
	now = now.Add(200 * time.Millisecond)
	b.update(importer.Progress{Phase: "checking", Rows: 8, TotalRows: 0, TotalSize: 100, Bytes: 1})
	if s := out.String(); strings.Contains(s, "00000 rows/s") || !strings.Contains(s, "8 rows") {
		t.Errorf("first update: %q", s)
	}
	out.Reset()
	now = now.Add(2 * time.Second)
	b.update(importer.Progress{Phase: "checking", Rows: 2008, TotalSize: 100, Bytes: 50})
	if s := out.String(); !strings.Contains(s, " 1000 rows/s") {
		t.Errorf("after 2 s and 2000 more rows: %q, want 1000 rows/s", s)
	}
	// A new pass starts its own rate.
	out.Reset()
	now = now.Add(150 * time.Millisecond)
	b.update(importer.Progress{Phase: "importing", Rows: 5, TotalRows: 3000})
	if s := out.String(); strings.Contains(s, "00000 rows/s") {
		t.Errorf("a new pass: %q", s)
	}
	out.Reset()
	now = now.Add(time.Second)
	b.update(importer.Progress{Phase: "importing", Rows: 505, TotalRows: 3000})
	if s := out.String(); !strings.Contains(s, " 500 rows/s") {
		t.Errorf("importing 500 rows in 1 s: %q", s)
	}
}
