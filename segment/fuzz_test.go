package segment_test

import (
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/segment"
)

// Any expression a client sends compiles or is refused with a clear error;
// it never panics the server.
func FuzzCompileExpr(f *testing.F) {
	for _, s := range []string{
		`traits.age >= 30 && "vip" in tags`,
		`in_region("广东", "深圳") || traits.city startsWith "深"`,
		`event_count("Order Completed", "30d", amount > 500) >= 2`,
		`did_but_not("Added to Cart", "Order Completed", "7d")`,
		`!(traits.a == 1) and not (traits.b in [1, 2, "x"])`,
		`days_since_event("E") < 3 || event_sum("E", "all") > 10`,
		`identifiers.email != nil`, `traits.x`, `1 + `, `event_count("E", "30d", 5) > 1`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := segment.CompileExpr(src)
		if err != nil {
			if portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "" {
				t.Fatalf("%q: an error that is not a clear invalid: %v", src, err)
			}
			return
		}
		if n == nil {
			t.Fatalf("%q: compiled to nothing without an error", src)
		}
	})
}
