package tag_test

import (
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tag"
)

// Any rule a client defines compiles or is refused with a clear error.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`revenue > 1000 && days_since_last_purchase < 90`, `lifecycle_stage == "loyal"`, `name startsWith "王"`,
		`revenue`, `unknown_trait > 1`, `revenue > "x"`, `len(name) > 2`, `1 +`} {
		f.Add("high_value", "value", s)
	}
	types := map[string]string{"revenue": "number", "days_since_last_purchase": "number", "lifecycle_stage": "string", "name": "string"}
	f.Fuzz(func(t *testing.T, name, dim, expr string) {
		c, err := tag.Compile(tag.Definition{Name: name, Dimension: dim, Expression: expr}, types)
		if err != nil {
			if portrait.ErrorCode(err) != portrait.EINVALID || portrait.ErrorMessage(err) == "" {
				t.Fatalf("%q: not a clear invalid error: %v", expr, err)
			}
			return
		}
		if c == nil {
			t.Fatal("compiled to nothing without an error")
		}
	})
}
