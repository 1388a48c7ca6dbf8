//go:build noconsole

package http_test

import "testing"

// Built with -tags noconsole the binary has no console: / is the API's
// JSON 404 (run: go test -tags noconsole -run TestNoConsole ./http/).
func TestNoConsole(t *testing.T) {
	s := start(t)
	for _, p := range []string{"/", "/profiles/p_1"} {
		r := s.get(t, p)
		if r.status != 404 || r.body["error"] == nil {
			t.Errorf("%s: %d %s", p, r.status, r.raw)
		}
	}
}
