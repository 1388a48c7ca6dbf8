package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/internal/datakey"
)

// TestSealingThroughTheApp runs the server with a data key file: an ID
// number and a trait classified secret through the API are sent by the
// tracking API; the API gives them to an admin (secret clearance) and masks
// them for a service token; no file of the data directory holds them in
// clear, WALs included; a rebuild gives the same profiles; a rotation
// re-seals everything, after which the old key can be removed; with the
// new key missing the server refuses to start, naming the key.
func TestSealingThroughTheApp(t *testing.T) {
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
		salary   = "88776655"
		bonus    = "55443322" // raised to secret after it was stored
		admin    = "pat_sealing_test_admin_token"
		write    = "pwk_sealing_test_write_key"
	)
	env := map[string]string{"PORTRAIT_ADMIN_TOKEN": admin, "PORTRAIT_WRITE_KEY": write}
	var logs bytes.Buffer
	open := func() (*App, error) {
		a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, DataKeyFile: keyFile, LogLevel: "info"}, &logs)
		if err != nil {
			return nil, err
		}
		if _, _, err := a.Bootstrap(ctx, func(k string) string { return env[k] }, io.Discard); err != nil {
			a.Close()
			return nil, err
		}
		if err := a.Start(ctx); err != nil {
			a.Close()
			return nil, err
		}
		return a, nil
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
	lookup := "/v1/profiles/lookup?type=id_card&value=" + idNumber
	// profile waits for the profile and returns it as the API shows it.
	profile := func(a *App, token string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, b := call(a, "GET", lookup, token, "")
			if code == 200 {
				var p map[string]any
				json.Unmarshal(b, &p)
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("lookup by ID number: %d %s", code, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	traitValue := func(p map[string]any, name string) any {
		tr, _ := p["traits"].(map[string]any)
		v, _ := tr[name].(map[string]any)
		return v["value"]
	}

	a, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if code, b := call(a, "PUT", "/v1/classifications/trait/salary", admin, `{"level":"secret"}`); code != 200 {
		t.Fatalf("classify salary: %d %s", code, b)
	}
	// A trait stored in clear, then raised to secret (below): the values
	// stored before are sealed in the background.
	if code, b := call(a, "POST", "/v1/identify", write, `{"userId":"c-1","traits":{"bonus":`+bonus+`}}`); code != 200 {
		t.Fatalf("identify: %d %s", code, b)
	}
	inClear := func(a *App) map[string]any {
		t.Helper()
		code, b := call(a, "GET", "/v1/classifications/trait/bonus", admin, "")
		var st map[string]any
		if json.Unmarshal(b, &st); code != 200 {
			t.Fatalf("status of bonus: %d %s", code, b)
		}
		return st
	}
	if st := inClear(a); st["level"] == "secret" || st["sealed_at_rest"] != false {
		t.Errorf("bonus before it was raised: %v", st)
	}
	for _, body := range []string{
		`{"type":"identify","userId":"c-1","traits":{"name":"Sealed Customer","id_card":"` + idNumber + `","salary":` + salary + `,"phone":"13800138000"}}`,
		`{"type":"track","userId":"c-1","event":"Order Completed","properties":{"revenue":12,"id_number":"` + idNumber + `"}}`,
	} {
		typ := "identify"
		if strings.Contains(body, `"track"`) {
			typ = "track"
		}
		if code, b := call(a, "POST", "/v1/"+typ, write, body); code != 200 {
			t.Fatalf("%s: %d %s", typ, code, b)
		}
	}
	p := profile(a, admin)
	if traitValue(p, "id_card") != idNumber || traitValue(p, "salary") != 88776655.0 {
		t.Fatalf("the admin does not see the sealed values: %v", p["traits"])
	}
	if err := a.Proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Raised to secret: the values stored before (the profile and the
	// identify event) are sealed in the background, and the status counts
	// them down to 0.
	if code, b := call(a, "PUT", "/v1/classifications/trait/bonus", admin, `{"level":"secret"}`); code != 200 || !bytes.Contains(b, []byte("in the background")) {
		t.Errorf("raising bonus does not say the stored values are being sealed: %d %s", code, b)
	}
	if st := inClear(a); st["sealed_at_rest"] != true || (st["in_clear_total"] != 0.0 && st["remedy"] == nil) {
		t.Errorf("bonus raised to secret: %v", st)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st := inClear(a)
		if st["in_clear_total"] == 0.0 && st["remedy"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bonus's stored values not sealed in the background: %v", st)
		}
	}
	if p := profile(a, admin); traitValue(p, "bonus") != 55443322.0 {
		t.Errorf("bonus after the background sealing: %v", p["traits"])
	}
	if st, _ := call(a, "GET", "/v1/classifications/trait/salary", admin, ""); st != 200 {
		t.Errorf("status of salary: %d", st)
	}
	id, _ := p["id"].(string)
	if code, b := call(a, "GET", "/v1/profiles/"+id+"/events", admin, ""); code != 200 || !bytes.Contains(b, []byte(idNumber)) {
		t.Errorf("events: %d %s", code, b)
	}
	// Masking still applies above the sealing.
	code, b := call(a, "POST", "/v1/keys", admin, `{"name":"desk","role":"service","clearance":"confidential"}`)
	var created struct {
		Secret string `json:"secret"`
	}
	if json.Unmarshal(b, &created); code != 201 || created.Secret == "" {
		t.Fatalf("create a service token: %d %s", code, b)
	}
	if _, b := call(a, "GET", "/v1/profiles/"+id, created.Secret, ""); bytes.Contains(b, []byte(idNumber)) || bytes.Contains(b, []byte(salary)) || !bytes.Contains(b, []byte("Sealed Customer")) {
		t.Errorf("a confidential clearance sees: %s", b)
	}
	scan := func(when string, needles ...string) {
		t.Helper()
		var files []string // every file under the data directory, the drop included
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		proof := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // a directory
			}
			for _, s := range needles {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s: %s holds %q", when, filepath.Base(f), s)
				}
			}
			proof = proof || bytes.Contains(b, []byte("Sealed Customer"))
		}
		if !proof {
			t.Errorf("%s: no file holds the customer's name: the scan proves nothing", when)
		}
	}
	// An invalid event carrying the ID number: quarantined, sealed whole,
	// shown as sent to an admin.
	if code, b := call(a, "POST", "/v1/batch", write, `{"batch":[{"type":"identify","traits":{"id_card":"`+idNumber+`","name":"no identity"}}]}`); code != 400 { // rejected, and kept
		t.Fatalf("batch: %d %s", code, b)
	}
	if code, b := call(a, "GET", "/v1/quarantine", admin, ""); code != 200 || !bytes.Contains(b, []byte(idNumber)) {
		t.Errorf("the quarantined body as an admin: %d %s", code, b)
	}
	// A scheduled delivery to the drop: the file is sealed, the download
	// path opens it.
	code, b = call(a, "POST", "/v1/segments", admin, `{"name":"sealed customers","expression":"traits.name == \"Sealed Customer\""}`)
	var seg struct{ ID string }
	if json.Unmarshal(b, &seg); code != 201 || seg.ID == "" {
		t.Fatalf("segment: %d %s", code, b)
	}
	code, b = call(a, "POST", "/v1/segment-deliveries", admin, `{"segment_id":"`+seg.ID+`","identifiers":["phone"],"target":{"kind":"file","name":"drop"},"every":"24h"}`)
	var dlv struct{ ID string }
	if json.Unmarshal(b, &dlv); code != 201 {
		t.Fatalf("delivery: %d %s", code, b)
	}
	var ran struct {
		ID    int64
		Rows  int
		Where string
	}
	for deadline := time.Now().Add(20 * time.Second); ran.Rows == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery never had its member: %+v", ran)
		}
		_, b = call(a, "POST", "/v1/segment-deliveries/"+dlv.ID+"/run", admin, "")
		json.Unmarshal(b, &ran)
	}
	if !strings.HasSuffix(ran.Where, ".csv.sealed") {
		t.Errorf("the dropped file %s is not sealed", ran.Where)
	}
	if code, b := call(a, "GET", fmt.Sprintf("/v1/segment-deliveries/%s/runs/%d/file", dlv.ID, ran.ID), admin, ""); code != 200 || !bytes.Contains(b, []byte("13800138000")) {
		t.Errorf("download: %d %s", code, b)
	}
	if drop, err := os.ReadFile(ran.Where); err != nil || bytes.Contains(drop, []byte("13800138000")) {
		t.Errorf("the dropped file holds the phone in clear (%v)", err)
	}
	if err := a.Proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	scan("serving", idNumber, salary)
	a.Close()
	scan("closed", idNumber, salary, bonus)

	var out, errb bytes.Buffer
	if err := run(ctx, []string{"rebuild", "--data", dir, "--data-key-file", keyFile, "--json", "--log-level", "error"}, &out, &errb); err != nil {
		t.Fatalf("rebuild: %v %s", err, errb.String())
	}
	var rb rebuildResult
	if err := json.Unmarshal(out.Bytes(), &rb); err != nil || !rb.Identical || rb.Profiles != 1 {
		t.Fatalf("rebuild: %s %v", out.String(), err)
	}
	scan("rebuilt", idNumber, salary, bonus)

	// Rotation: a new key, everything re-sealed, then the old key removed.
	out.Reset()
	if err := run(ctx, []string{"keys", "rotate-data-key", "--data", dir, "--data-key-file", keyFile, "--id", "k-second", "--json"}, &out, &errb); err != nil {
		t.Fatalf("rotate: %v %s", err, errb.String())
	}
	var rot rotateResult
	if err := json.Unmarshal(out.Bytes(), &rot); err != nil || rot.NewKey != "k-second" || rot.Resealed.Events != 3 || rot.Resealed.Profiles != 1 || rot.Resealed.Identifiers != 1 ||
		len(rot.Removable) != 1 || rot.Removable[0] != "k-first" || rot.DeliveryFiles != 1 || rot.Resealed.Quarantined != 1 {
		t.Fatalf("rotate: %s %v", out.String(), err)
	}
	scan("rotated", idNumber, salary, bonus, "$sealed:k-first:")
	kf, _ := os.ReadFile(keyFile)
	if !strings.HasPrefix(string(kf), first+"\n") || !strings.Contains(string(kf), "\nk-second ") {
		t.Fatalf("key file after rotation: %s", kf)
	}
	lines := strings.Split(strings.TrimSpace(string(kf)), "\n")
	second := lines[len(lines)-1]
	os.WriteFile(keyFile, []byte(second+"\n"), 0o600) // the old key removed
	a, err = open()
	if err != nil {
		t.Fatal(err)
	}
	if p := profile(a, admin); traitValue(p, "id_card") != idNumber || traitValue(p, "salary") != 88776655.0 || traitValue(p, "bonus") != 55443322.0 {
		t.Errorf("after rotation: %v", p["traits"])
	}
	if st := inClear(a); st["in_clear_total"] != 0.0 || st["remedy"] != nil {
		t.Errorf("bonus after the rotation: %v", st)
	}
	code, b = call(a, "GET", "/v1/audit?action=data_key.rotate", admin, "")
	if code != 200 || !bytes.Contains(b, []byte("k-second")) {
		t.Errorf("the rotation is not in the audit log: %d %s", code, b)
	}
	a.Close()

	// Offline commands that read take the key file too.
	out.Reset()
	if err := run(ctx, []string{"quality", "--data", dir, "--data-key-file", keyFile, "--json"}, &out, &errb); err != nil || !strings.Contains(out.String(), `"profiles":1`) {
		t.Errorf("quality with the key: %v %s", err, out.String())
	}
	if err := run(ctx, []string{"quality", "--data", dir, "--json"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `"k-second"`) {
		t.Errorf("quality without the key: %v", err)
	}

	// The key missing: the server does not start, and says which key.
	os.WriteFile(keyFile, []byte(first+"\n"), 0o600)
	if a, err := open(); err == nil {
		a.Close()
		t.Fatal("the server started without the key its data is sealed with")
	} else if !strings.Contains(err.Error(), `"k-second"`) {
		t.Errorf("missing key: %v", err)
	}
	os.Remove(keyFile)
	if a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), LogLevel: "info"}, &logs); err != nil {
		t.Fatal(err)
	} else {
		a.Close()
	}
	if !strings.Contains(logs.String(), "no data key configured") {
		t.Errorf("no warning without a key: %s", logs.String())
	}

	// Rotation with the old key in PORTRAIT_DATA_KEY (nothing to write it
	// back to) and the new one in PORTRAIT_NEW_DATA_KEY, then in a new
	// key file that the command creates.
	third, _ := datakey.NewKeyLine("k-third")
	vars := map[string]string{datakey.EnvVar: second, datakey.NewEnvVar: third}
	getenv := func(k string) string { return vars[k] }
	out.Reset()
	if err := rotateDataKey(ctx, []string{"--data", dir, "--json"}, getenv, &out, &errb); err != nil {
		t.Fatalf("rotate from the environment: %v", err)
	}
	if err := json.Unmarshal(out.Bytes(), &rot); err != nil || rot.NewKey != "k-third" || rot.Resealed.Events == 0 || len(rot.Removable) != 1 || rot.Removable[0] != "k-second" {
		t.Fatalf("rotate from the environment: %s %v", out.String(), err)
	}
	scan("rotated from the environment", idNumber, salary, bonus, "$sealed:k-second:")
	newFile := filepath.Join(t.TempDir(), "new-key")
	vars = map[string]string{datakey.EnvVar: third}
	out.Reset()
	if err := rotateDataKey(ctx, []string{"--data", dir, "--new-key-file", newFile, "--id", "k-fourth"}, getenv, &out, &errb); err != nil {
		t.Fatalf("rotate to a new key file: %v", err)
	}
	if !strings.Contains(out.String(), "--data-key-file "+newFile) {
		t.Errorf("the rotation does not say how to start: %s", out.String())
	}
	scan("rotated to a new file", idNumber, salary, bonus, "$sealed:k-third:")
	keyFile = newFile
	a, err = open()
	if err != nil {
		t.Fatal(err)
	}
	if p := profile(a, admin); traitValue(p, "id_card") != idNumber || traitValue(p, "bonus") != 55443322.0 {
		t.Errorf("after rotating from the environment: %v", p["traits"])
	}
	a.Close()
	// The same id for two different keys is refused before anything.
	other, _ := datakey.NewKeyLine("k-fourth")
	vars = map[string]string{datakey.NewEnvVar: other}
	if err := rotateDataKey(ctx, []string{"--data", dir, "--data-key-file", newFile}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "two different keys") {
		t.Errorf("a new key under an id in use: %v", err)
	}
}
