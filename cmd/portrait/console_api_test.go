package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The app wires search and the overview: a customer sent through the
// tracking API is found by pinyin and by phone in any format, and still is
// after a restart (the index is filled from the stored profiles).
func TestAppServesConsoleSearchAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"PORTRAIT_ADMIN_TOKEN": "pat_console_api_test_token", "PORTRAIT_WRITE_KEY": "pwk_console_api_test_key"}
	open := func() *App {
		t.Helper()
		a, err := OpenApp(ctx, Config{Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "error"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cheapKeys(a)
		if _, _, err := a.Bootstrap(ctx, func(k string) string { return env[k] }, io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return a
	}
	get := func(a *App, path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, a.HTTP.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+env["PORTRAIT_ADMIN_TOKEN"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
		}
		return out
	}
	found := func(a *App, q string) []any {
		return get(a, "/v1/search?q="+url.QueryEscape(q))["results"].([]any)
	}

	a := open()
	body := `{"type":"identify","userId":"c-1","traits":{"name":"张三","phone":"138 0013 8000","email":"Zhang.San@Example.CN","city":"上海"}}`
	req, _ := http.NewRequest(http.MethodPost, a.HTTP.URL()+"/v1/identify", bytes.NewBufferString(body))
	req.SetBasicAuth(env["PORTRAIT_WRITE_KEY"], "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("identify: %v %v", res, err)
	}
	res.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for len(found(a, "zhangsan")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the processed customer is never found by pinyin")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ov := get(a, "/v1/overview")
	if ov["profiles"] != 1.0 || ov["events_total"] != 1.0 || len(ov["sources"].([]any)) != 1 {
		t.Errorf("overview: %v", ov)
	}
	a.Close()

	a = open()
	defer a.Close()
	for _, q := range []string{"zhangsan", "张", "+86 138-0013-8000", "zhang.san@example.cn", "c-1"} {
		if rs := found(a, q); len(rs) != 1 {
			t.Errorf("after a restart %q finds %v", q, rs)
		}
	}
	if rs := found(a, "lisi"); len(rs) != 0 {
		t.Errorf("lisi finds %v", rs)
	}
	if ov := get(a, "/v1/overview"); ov["events_total"] != 1.0 {
		t.Errorf("overview after a restart: %v", ov)
	}
}
