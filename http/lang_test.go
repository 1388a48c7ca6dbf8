package http_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// GET /v1/breakdown?by=tag labels each tag in the caller's language: lang=
// first, then Accept-Language; a tag without names keeps its own.
func TestBreakdownTagLabelsInCallersLanguage(t *testing.T) {
	e := newConsoleEnv(t)
	labels := func(query, acceptLanguage string) map[string]string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/breakdown?by=tag"+query, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Groups []struct{ Key, Label string }
		}
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&out) != nil {
			t.Fatalf("breakdown%s: %d", query, res.StatusCode)
		}
		m := map[string]string{}
		for _, g := range out.Groups {
			m[g.Key] = g.Label
		}
		return m
	}
	for _, c := range []struct{ query, header, promoter string }{
		{"", "", "Promoter"},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", "推荐者"},
		{"", "en-US,en;q=0.9,zh-CN;q=0.8", "Promoter"},
		{"", "fr-FR, en;q=0.5, zh;q=0.7", "推荐者"},
		{"&lang=zh", "en-US", "推荐者"},
		{"&lang=en", "zh-CN", "Promoter"},
		{"&lang=zh-CN", "", "推荐者"},
	} {
		got := labels(c.query, c.header)
		if got["promoter"] != c.promoter {
			t.Errorf("lang %q, Accept-Language %q: promoter labelled %q, want %q (all: %v)", c.query, c.header, got["promoter"], c.promoter, got)
		}
		if l, ok := got["big_spender"]; ok && l != "big_spender" {
			t.Errorf("a tag without names labelled %q", l)
		}
	}
	if got := labels(":feedback", "zh"); got["promoter"] != "推荐者" {
		t.Errorf("by=tag:feedback: %v", got)
	}
}
