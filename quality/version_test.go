package quality_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/quality"
)

type dataOnly struct{}

func (dataOnly) DataVersion(context.Context) (string, error) { return "data", nil }

type both struct{ dataOnly }

func (both) ContentVersion(context.Context) (string, error) { return "content", nil }

// Caches key on the content version where a store has one, else on the
// data version; a store with neither gives none.
func TestVersionOfPrefersTheContentVersion(t *testing.T) {
	ctx := context.Background()
	if v, _ := quality.VersionOf(both{}).DataVersion(ctx); v != "content" {
		t.Errorf("a store with both versions: keyed on %q", v)
	}
	if v, _ := quality.VersionOf(dataOnly{}).DataVersion(ctx); v != "data" {
		t.Errorf("a store with a data version only: keyed on %q", v)
	}
	if quality.VersionOf(struct{}{}) != nil {
		t.Error("a store with no version got one")
	}
}
