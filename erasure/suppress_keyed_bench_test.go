package erasure_test

import (
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// BenchmarkSuppressKeyed: the list keyed with a data key (HMAC under one
// key id in use).
func BenchmarkSuppressKeyed(b *testing.B) {
	line, err := datakey.NewKeyLine("k1")
	if err != nil {
		b.Fatal(err)
	}
	ring, err := datakey.Parse([]byte(line))
	if err != nil {
		b.Fatal(err)
	}
	benchAppend(b, &erasure.Suppressor{Keys: ring}, func(id portrait.Identifier) (string, string) {
		h, err := ring.SuppressionHash("k1", datakey.SuppressionInner(id))
		if err != nil {
			b.Fatal(err)
		}
		return "k1", h
	})
}
