package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
)

// TestSealedMigrateAndRotateOnPostgres: a sealed embedded deployment is
// moved to PostgreSQL with `portrait migrate`; a server on PostgreSQL with
// the same key file starts and reads the ID number back (and finds the
// profile by it), while no column holds it in clear; `keys rotate-data-key
// --store postgres://…` re-seals it under a new key, after which the old
// key can be removed from the file.
func TestSealedMigrateAndRotateOnPostgres(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "data-keys")
	first, err := datakey.NewKeyLine("k-first")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, []byte(first+"\n"), 0o600)
	const (
		idNumber = "110101199003071233"
		admin    = "pat_sealing_pg_admin_token"
		write    = "pwk_sealing_pg_write_key"
	)
	env := map[string]string{"PORTRAIT_ADMIN_TOKEN": admin, "PORTRAIT_WRITE_KEY": write}
	open := func(store string) *App {
		t.Helper()
		a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, Store: store, DataKeyFile: keyFile, LogLevel: "error"}, io.Discard)
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
	idCard := func(a *App) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, b := call(a, "GET", "/v1/profiles/lookup?type=id_card&value="+idNumber, admin, "")
			if code == 200 {
				var p struct {
					Traits map[string]struct {
						Value any `json:"value"`
					} `json:"traits"`
				}
				json.Unmarshal(b, &p)
				s, _ := p.Traits["id_card"].Value.(string)
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("lookup by ID number: %d %s", code, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	a := open("")
	if code, b := call(a, "POST", "/v1/identify", write, `{"type":"identify","userId":"c-1","traits":{"name":"Sealed Mover","id_card":"`+idNumber+`"}}`); code != 200 {
		t.Fatalf("identify: %d %s", code, b)
	}
	if got := idCard(a); got != idNumber {
		t.Fatalf("embedded: id_card %q", got)
	}
	// An invalid event carrying the ID number: quarantined, sealed whole;
	// it stays sealed through the move and opens on PostgreSQL.
	if code, b := call(a, "POST", "/v1/batch", write, `{"batch":[{"type":"identify","traits":{"id_card":"`+idNumber+`","name":"no identity"}}]}`); code != 400 {
		t.Fatalf("batch: %d %s", code, b)
	}
	waitApplied(t, a.DB)
	a.Close()

	url := pgtest.URL(t)
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"migrate", "--data", dir, "--to", url, "--json"}, &out, &errb); err != nil {
		t.Fatalf("migrate: %v %s", err, errb.String())
	}
	// No column of the target holds the ID number in clear.
	scan := func(when string, needles ...string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		proof := false
		for _, table := range []string{"events", "profiles", "identities", "merges", "quarantine", "imports", "account_state"} {
			rows, err := conn.Query(ctx, `SELECT * FROM `+table, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				for _, v := range rows.RawValues() {
					b := v
					if bytes.HasPrefix(b, []byte(`\x`)) {
						var d []byte
						if _, err := hexDecodeTo(&d, b[2:]); err == nil {
							b = d
						}
					}
					for _, s := range needles {
						if bytes.Contains(b, []byte(s)) {
							t.Errorf("%s: %s holds %q", when, table, s)
						}
					}
					proof = proof || bytes.Contains(b, []byte("Sealed Mover"))
				}
			}
			rows.Close()
		}
		if !proof {
			t.Errorf("%s: no column holds the name: the scan proves nothing", when)
		}
	}
	scan("migrated", idNumber)

	a = open(url)
	if got := idCard(a); got != idNumber {
		t.Errorf("PostgreSQL with the same key: id_card %q", got)
	}
	if code, b := call(a, "GET", "/v1/quarantine", admin, ""); code != 200 || !bytes.Contains(b, []byte(idNumber)) {
		t.Errorf("the quarantined body moved to PostgreSQL: %d %s", code, b)
	}
	a.Close()

	out.Reset()
	if err := run(ctx, []string{"keys", "rotate-data-key", "--store", url, "--data-key-file", keyFile, "--id", "k-second", "--json"}, &out, &errb); err != nil {
		t.Fatalf("rotate: %v %s", err, errb.String())
	}
	var rot rotateResult
	if err := json.Unmarshal(out.Bytes(), &rot); err != nil || rot.Resealed.Events < 1 || rot.Resealed.Profiles != 1 || rot.Resealed.Identifiers != 1 || rot.Resealed.Quarantined != 1 {
		t.Fatalf("rotate: %s %v", out.String(), err)
	}
	scan("rotated", idNumber, "$sealed:k-first:")
	kf, _ := os.ReadFile(keyFile)
	lines := strings.Split(strings.TrimSpace(string(kf)), "\n")
	os.WriteFile(keyFile, []byte(lines[len(lines)-1]+"\n"), 0o600) // the old key removed
	a = open(url)
	defer a.Close()
	if got := idCard(a); got != idNumber {
		t.Errorf("after rotation: id_card %q", got)
	}
}

func hexDecodeTo(dst *[]byte, b []byte) (int, error) {
	d := make([]byte, len(b)/2)
	n, err := hex.Decode(d, b)
	*dst = d[:n]
	return n, err
}
