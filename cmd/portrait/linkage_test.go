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

// febrlDir finds the shared FEBRL folder: $PORTRAIT_SHARED or the first
// parent of the working directory with shared/data.
func febrlDir(t *testing.T) string {
	t.Helper()
	var candidates []string
	if d := os.Getenv("PORTRAIT_SHARED"); d != "" {
		candidates = append(candidates, filepath.Join(d, "data", "febrl"), filepath.Join(d, "febrl"))
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		candidates = append(candidates, filepath.Join(dir, "shared", "data", "febrl"))
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "dataset1.csv")); err == nil {
			return c
		}
	}
	t.Skip("FEBRL data not found: set PORTRAIT_SHARED or run below a directory containing shared/data/febrl")
	return ""
}

func evalJSON(t *testing.T, files ...string) evalOutput {
	t.Helper()
	var out, errOut bytes.Buffer
	args := append([]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, "--json"}, files...)
	if err := runLinkage(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("runLinkage: %v (stderr %s)", err, errOut.String())
	}
	var got evalOutput
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	return got
}

func TestDatasetLinkageEvalFEBRL(t *testing.T) {
	dir := febrlDir(t)
	for _, tc := range []struct {
		file               string
		records, truePairs int
	}{
		{"dataset1.csv", 1000, 500},
		{"dataset2.csv", 5000, 1934},
	} {
		got := evalJSON(t, filepath.Join(dir, tc.file))
		t.Logf("%s: %+v", tc.file, got)
		if got.Records != tc.records || got.TruePairs != tc.truePairs {
			t.Errorf("%s: records %d true pairs %d, want %d and %d", tc.file, got.Records, got.TruePairs, tc.records, tc.truePairs)
		}
		if got.F1 < 0.95 {
			t.Errorf("%s: F1 %.4f < 0.95", tc.file, got.F1)
		}
	}
}

// Several files are linked as one set: splitting dataset1 into originals and
// duplicates must still find the pairs, which now all cross the files.
func TestDatasetLinkageEvalSeveralFiles(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(febrlDir(t), "dataset1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(src), "\n"), "\n")
	// Column order differs between the two files on purpose: columns are
	// matched by name, not by position.
	orgs := []string{lines[0]}
	dups := []string{reorder(lines[0])}
	for _, l := range lines[1:] {
		if strings.Contains(l, "-dup-") {
			dups = append(dups, reorder(l))
		} else {
			orgs = append(orgs, l)
		}
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	if err := os.WriteFile(a, []byte(strings.Join(orgs, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(strings.Join(dups, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := evalJSON(t, a, b)
	if got.Records != 1000 || got.TruePairs != 500 || got.F1 < 0.95 {
		t.Errorf("split files: %+v", got)
	}
}

// reorder moves the first column (the id) to the end.
func reorder(line string) string {
	cols := strings.Split(line, ", ")
	return strings.Join(append(cols[1:], cols[0]), ", ")
}

func TestDatasetLinkageEvalHumanOutput(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runLinkage(context.Background(), []string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`,
		filepath.Join(febrlDir(t), "dataset1.csv")}, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records          1000", "true pairs       500", "f1 ", "soc_sec_id:id", "given_name:name"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "rec_id:") {
		t.Errorf("the id column must not be a linkage field:\n%s", out.String())
	}
}

func TestLinkageEvalErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("rec_id,name,city\nrec-1,ann,x\nrec-2,\"bob,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.csv")
	if err := os.WriteFile(short, []byte("rec_id,name,city\nrec-1,ann,x\nrec-2,bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("rec_id,name,city\nrec-1,ann,x\nrec-2,bob,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "missing subcommand"},
		{[]string{"frobnicate"}, "unknown subcommand"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`}, "no input files"},
		{[]string{"eval", "--truth", `rec-(\d+)`, good}, "--id-column is required"},
		{[]string{"eval", "--id-column", "rec_id", good}, "--truth is required"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(`, good}, "--truth"},
		{[]string{"eval", "--id-column", "nope", "--truth", `rec-(\d+)`, good}, `has no column "nope"`},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `zzz(\d+)`, good}, "matches none"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, "--fields", "name:banana", good}, "unknown kind"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, "--fields", "nom:name", good}, "not a column"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, bad}, "row 3, column 2 (name)"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, short}, "row 3, column 3 (city)"},
		{[]string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, filepath.Join(dir, "missing.csv")}, "missing.csv"},
		{[]string{"eval", "--bogus"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		err := runLinkage(context.Background(), tc.args, &out, &errOut)
		if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want invalid containing %q", tc.args, err, tc.want)
		}
	}
}

func TestLinkageEvalCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	err := runLinkage(ctx, []string{"eval", "--id-column", "rec_id", "--truth", `rec-(\d+)`, filepath.Join(febrlDir(t), "dataset2.csv")}, &out, &errOut)
	if err == nil {
		t.Fatal("cancelled context: no error")
	}
}
