package http_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET (PUT, DELETE) /v1/segments/preview is the preview route answering
// 405 with Allow: POST, not the {id} route answering "no segment preview";
// POST previews, and real ids still reach their segment.
func TestSegmentPreviewRouting(t *testing.T) {
	e := newConsoleEnv(t)
	id := e.createSegment(t, "guangdong", `traits.province == "广东省"`)
	do := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		res, body := do(m, "/v1/segments/preview", `{}`)
		if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" || !strings.Contains(body, "method_not_allowed") {
			t.Errorf("%s /v1/segments/preview: %d Allow=%q %s", m, res.StatusCode, res.Header.Get("Allow"), body)
		}
	}
	if res, body := do("POST", "/v1/segments/preview", `{"name":"p","expression":"traits.province == \"广东省\""}`); res.StatusCode != 200 || !strings.Contains(body, `"size"`) {
		t.Errorf("POST preview: %d %s", res.StatusCode, body)
	}
	if res, body := do("GET", "/v1/segments/"+id, ""); res.StatusCode != 200 || !strings.Contains(body, "guangdong") {
		t.Errorf("GET the segment: %d %s", res.StatusCode, body)
	}
	if res, _ := do("GET", "/v1/segments/overlap?ids="+id, ""); res.StatusCode != 200 {
		t.Errorf("overlap: %d", res.StatusCode)
	}
}
