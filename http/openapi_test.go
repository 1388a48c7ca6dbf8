package http_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every route the server mounts is in the OpenAPI document: clients
// generated from it must not miss an endpoint.
func TestEveryRouteIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	route := regexp.MustCompile(`mux\.Handle(?:Func)?\("((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"`)
	files, _ := filepath.Glob("*.go")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range route.FindAllStringSubmatch(string(src), -1) {
			r := m[1]
			if r == "POST /v1/" { // the tracking calls, mounted in a loop
				for _, typ := range []string{"identify", "track", "page", "screen", "group", "alias"} {
					if !documented["POST /v1/"+typ] {
						t.Errorf("%s: POST /v1/%s is not in openapi.json", f, typ)
					}
				}
				continue
			}
			n++
			if !documented[r] {
				t.Errorf("%s: %s is not in openapi.json", f, r)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d routes: the pattern no longer matches how routes are mounted", n)
	}
}
