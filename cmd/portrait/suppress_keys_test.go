package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// TestSuppressionKeyedAtStart: a person erased on a server without a data
// key is suppressed by the unkeyed SHA-256 of their identifiers; the
// server started with a key upgrades the list in place before it ingests
// (audited once: a second start rewrites nothing), the list then holds
// no SHA-256 of the identifier, the person's events are still dropped, a
// person never erased is not, and the suppression can still be lifted by
// the identifier.
func TestSuppressionKeyedAtStart(t *testing.T) {
	if os.Getenv(datakey.EnvVar) != "" {
		t.Skipf("%s is set: the first start must be without a key", datakey.EnvVar)
	}
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "data-keys")
	const (
		admin = "pat_suppress_keys_admin_token"
		write = "pwk_suppress_keys_write_key"
	)
	env := map[string]string{"PORTRAIT_ADMIN_TOKEN": admin, "PORTRAIT_WRITE_KEY": write}
	open := func(keys string) *App {
		t.Helper()
		a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, DataKeyFile: keys}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Bootstrap(ctx, func(k string) string { return env[k] }, io.Discard); err != nil {
			a.Close()
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			a.Close()
			t.Fatal(err)
		}
		return a
	}
	call := func(a *App, method, path, token, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, a.HTTP.URL()+path, strings.NewReader(body))
		if strings.HasPrefix(token, "pwk_") {
			req.SetBasicAuth(token, "")
		} else {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	waitFor := func(a *App, user string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if code, _ := call(a, "GET", "/v1/profiles/lookup?type=user_id&value="+user, admin, ""); code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no profile for %s", user)
			}
		}
	}
	identify := func(a *App, user string) {
		t.Helper()
		if code, b := call(a, "POST", "/v1/identify", write, `{"userId":"`+user+`","traits":{"name":"N"}}`); code != 200 {
			t.Fatalf("identify: %d %s", code, b)
		}
	}
	suppressions := func(a *App) []portrait.Suppression {
		t.Helper()
		code, b := call(a, "GET", "/v1/suppressions", admin, "")
		var out struct{ Suppressions []portrait.Suppression }
		if json.Unmarshal(b, &out); code != 200 {
			t.Fatalf("suppressions: %d %s", code, b)
		}
		return out.Suppressions
	}
	rekeyed := func(a *App) int {
		t.Helper()
		code, b := call(a, "GET", "/v1/audit?action=suppression.rekey", admin, "")
		var out struct{ Records []map[string]any }
		if json.Unmarshal(b, &out); code != 200 {
			t.Fatalf("audit: %d %s", code, b)
		}
		return len(out.Records)
	}
	unkeyed := portrait.SuppressionHash(portrait.Identifier{Type: portrait.IDUserID, Value: "u-gone"})

	a := open("")
	identify(a, "u-gone")
	waitFor(a, "u-gone")
	if code, b := call(a, "DELETE", "/v1/profiles/lookup?type=user_id&value=u-gone", admin, ""); code != 200 {
		t.Fatalf("erase: %d %s", code, b)
	}
	if s := suppressions(a); len(s) != 1 || s[0].Hash != unkeyed || s[0].KeyID != "" {
		t.Fatalf("without a key: %+v", s)
	}
	a.Close()

	line, err := datakey.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a = open(keyFile)
	s := suppressions(a)
	if len(s) != 1 || s[0].KeyID != "k1" || s[0].Hash == unkeyed {
		t.Errorf("with a key: %+v", s)
	}
	if n := rekeyed(a); n != 1 {
		t.Errorf("%d suppression.rekey audit records, want 1", n)
	}
	identify(a, "u-gone")
	identify(a, "u-kept")
	waitFor(a, "u-kept")
	if code, _ := call(a, "GET", "/v1/profiles/lookup?type=user_id&value=u-gone", admin, ""); code != 404 {
		t.Errorf("the erased person came back: %d", code)
	}
	if s := suppressions(a); len(s) != 1 || s[0].Dropped != 1 {
		t.Errorf("the dropped event is not counted: %+v", s)
	}
	a.Close()

	a = open(keyFile)
	defer a.Close()
	if n := rekeyed(a); n != 1 {
		t.Errorf("a second start re-keyed again: %d records", n)
	}
	if code, b := call(a, "POST", "/v1/suppressions/lift", admin, `{"type":"user_id","value":"u-gone"}`); code != 204 {
		t.Fatalf("lift: %d %s", code, b)
	}
	identify(a, "u-gone")
	waitFor(a, "u-gone")
}
