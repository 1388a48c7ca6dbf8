package tag_test

import (
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tag"
	"github.com/portrait-cdp/portrait/traits"
)

// The probe's costly expressions are refused when defined, with the reason;
// an ordinary rule still compiles.
func TestCostlyExpressionsRefusedAtDefinition(t *testing.T) {
	types := map[string]string{"age": "number"}
	costly := `all(1..999, {all(1..999, {all(1..999, {age > 0})})})`
	_, err := tag.Compile(tag.Definition{Name: "bomb", Dimension: "basic", Expression: costly}, types)
	if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("tag: %v", err)
	}
	if _, err := tag.Compile(tag.Definition{Name: "adult", Dimension: "basic", Expression: `age >= 18`}, types); err != nil {
		t.Errorf("an ordinary rule: %v", err)
	}
	_, err = traits.Definition{Name: "bomb", Aggregate: "count", Filter: `any(1..999, {any(1..999, {properties.revenue > #})})`}.Validate()
	if portrait.ErrorCode(err) != portrait.EINVALID || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("computed-trait filter: %v", err)
	}
}
