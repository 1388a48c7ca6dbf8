package http_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	porthttp "github.com/portrait-cdp/portrait/http"
)

// BenchmarkRouteHealthz: one request through the whole handler (the
// router's rule check included) to the cheapest route, so that what the
// check adds is most visible.
func BenchmarkRouteHealthz(b *testing.B) {
	h := porthttp.NewServer().Handler()
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}
