package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/demo"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/sqlite"
)

// testKeyCost is the bcrypt cost of the keys the tests' apps create:
// bcrypt's minimum. The default (10) took seconds per hash under -race on
// the shared 2-core machine, at each key's creation and first check; what
// the tests check does not depend on it (a hash carries its own cost).
const testKeyCost = 4

// cheapKeys sets testKeyCost on the app's store, whichever it is.
func cheapKeys(a *App) {
	switch db := a.DB.(type) {
	case *sqlite.DB:
		db.KeyHashCost = testKeyCost
	case *postgres.DB:
		db.KeyHashCost = testKeyCost
	}
}

// The demo's sources each get a write key named after them, created at the
// first start and reused afterwards: a restart adds no key and still knows
// the admin token.
func TestDemoKeysOncePerSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *App {
		a, err := OpenApp(ctx, Config{DataDir: dir, LogLevel: "error"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cheapKeys(a)
		return a
	}
	a := open()
	admin, _, err := a.Bootstrap(ctx, func(string) string { return "" }, io.Discard)
	if err != nil || admin == "" {
		t.Fatalf("bootstrap: %q %v", admin, err)
	}
	first, err := ensureDemoKeys(ctx, a, admin, false)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := a.DB.ListKeys(ctx)
	for _, src := range demo.Sources {
		k, err := a.DB.Authenticate(ctx, portrait.KeyWrite, first.Sources[src])
		if err != nil || k.Name != src {
			t.Errorf("%s's key authenticates as %+v %v", src, k, err)
		}
	}
	a.Close()

	a = open()
	defer a.Close()
	admin2, _, err := a.Bootstrap(ctx, func(string) string { return "" }, io.Discard)
	if err != nil || admin2 != "" {
		t.Fatalf("second bootstrap: %q %v (the admin token is shown once)", admin2, err)
	}
	again, err := ensureDemoKeys(ctx, a, admin2, false)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := a.DB.ListKeys(ctx)
	if len(after) != len(before) {
		t.Errorf("%d keys after a restart, %d before", len(after), len(before))
	}
	if again.Admin != admin {
		t.Errorf("admin token after a restart %q, want the first start's", again.Admin)
	}
	for _, src := range demo.Sources {
		if again.Sources[src] != first.Sources[src] {
			t.Errorf("%s's key changed on restart", src)
		}
	}
}

// The command printed after a restart works when pasted: the token itself,
// or the variable in double quotes (which the shell expands), never in
// single quotes.
func TestDemoReadyCommand(t *testing.T) {
	var b bytes.Buffer
	printDemoReady(&b, "http://127.0.0.1:8080", "pat_secret", "li.na1@163.com", "/data/demo-keys.json")
	if !strings.Contains(b.String(), `curl -H "Authorization: Bearer pat_secret" "http://127.0.0.1:8080/v1/profiles/lookup?type=email&value=li.na1@163.com"`) {
		t.Errorf("with the token known:\n%s", b.String())
	}
	b.Reset()
	printDemoReady(&b, "http://127.0.0.1:8080", "", "li.na1@163.com", "/data/demo-keys.json")
	if strings.Contains(b.String(), "'") || !strings.Contains(b.String(), `"Authorization: Bearer $PORTRAIT_ADMIN_TOKEN"`) {
		t.Errorf("with the token unknown:\n%s", b.String())
	}
}

// Progress written to a log is whole lines, without carriage returns.
func TestDemoProgressInALog(t *testing.T) {
	var b bytes.Buffer
	p := newLineProgress(&b)
	p.update("demo: sent 5000/20000 events", false)
	p.update("demo: sent 10000/20000 events", false)
	p.update("demo: sent 20000/20000 events in 3s", true)
	if strings.Contains(b.String(), "\r") || strings.Count(b.String(), "\n") != 3 {
		t.Errorf("%q", b.String())
	}
}

// An admin token from the environment is used but not written to the file.
func TestDemoKeysDoNotStoreTheEnvironmentsToken(t *testing.T) {
	ctx := context.Background()
	a, err := OpenApp(ctx, Config{DataDir: t.TempDir(), LogLevel: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cheapKeys(a)
	defer a.Close()
	k, err := ensureDemoKeys(ctx, a, "pat_from_env_123", true)
	if err != nil || k.Admin != "pat_from_env_123" {
		t.Fatalf("%+v %v", k, err)
	}
	b, _ := os.ReadFile(filepath.Join(a.Config.DataDir, demoKeysFile))
	if strings.Contains(string(b), "pat_from_env_123") || !strings.Contains(string(b), `"web"`) {
		t.Errorf("demo keys file: %s", b)
	}
}

// The demo's tags on the analyses' outputs (churn_risk on
// churn_probability, high_value on clv_percentile) are defined on a store
// no analysis has scored: a churn model no better than chance writes no
// profile, and the demo logged "tag churn_risk not defined: unknown name
// churn_probability" and ran without the tag.
func TestDemoTagsNameAnalysisOutputsBeforeAnyRun(t *testing.T) {
	ctx := context.Background()
	a, err := OpenApp(ctx, Config{DataDir: t.TempDir(), LogLevel: "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var progress bytes.Buffer
	if err := demoPortraits(ctx, a, &progress); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(progress.String(), "not defined") {
		t.Errorf("demo tags refused on a store without analysis results:\n%s", progress.String())
	}
	defined := map[string]bool{}
	for _, d := range a.Enrich.Tags.List() {
		defined[d.Name] = true
	}
	for _, name := range []string{"churn_risk", "high_value"} {
		if !defined[name] {
			t.Errorf("tag %s not defined (defined: %v)", name, defined)
		}
	}
}
