package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
)

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	csv := filepath.Join(dir, "people.csv")
	os.WriteFile(csv, []byte("customer_id,email,phone\nc1, Zhang.San@Example.COM ,１３８ ００１３ ８０００\nc2,bad,\n,x@example.com,\n"), 0o600)
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
