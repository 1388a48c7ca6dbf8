package traits_test

import (
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/traits"
)

// Any computed-trait definition is accepted or refused with a clear error.
func FuzzDefinition(f *testing.F) {
	f.Add("orders_90d", "count", "Order Completed", "", "90d", "properties.revenue > 100")
	f.Add("fav", "most_frequent", "Order Completed", "category", "", "")
	f.Add("x", "sum", "", "revenue", "0d", "properties.")
	f.Fuzz(func(t *testing.T, name, agg, event, prop, window, filter string) {
		_, err := traits.Definition{Name: name, Aggregate: agg, Event: event, Property: prop, Window: window, Filter: filter}.Validate()
		if err != nil && (portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "") {
			t.Fatalf("not a clear invalid error: %v", err)
		}
	})
}
