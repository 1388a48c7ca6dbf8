package needs_test

import (
	"reflect"
	"testing"

	"github.com/go-ego/gse"

	"github.com/portrait-cdp/portrait/needs"
)

// TestEnricherHidesSegmenterType guards the binary size: when a type that
// is converted to an interface reaches gse.Segmenter through its fields,
// the linker keeps Segmenter's LoadDictEmbed and with it gse's embedded
// dictionaries, 32 MB the project never loads (it ships words.txt). The
// Enricher is such a type (it is a profile.Enricher), so no field of it,
// however deep, may hold the segmenter's type.
func TestEnricherHidesSegmenterType(t *testing.T) {
	bad := reflect.TypeOf(gse.Segmenter{})
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		if ty == bad {
			t.Fatalf("needs.Enricher reaches gse.Segmenter through %s: the binary embeds gse's dictionaries again", path)
		}
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
			walk(ty.Elem(), path+"[]")
		case reflect.Map:
			walk(ty.Key(), path+"{key}")
			walk(ty.Elem(), path+"{}")
		case reflect.Struct:
			for i := range ty.NumField() {
				f := ty.Field(i)
				walk(f.Type, path+"."+f.Name)
			}
		}
	}
	walk(reflect.TypeOf(needs.Enricher{}), "Enricher")
}
