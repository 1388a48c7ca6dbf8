package datakey_test

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// benchEvent is an identify event as an SDK sends it, with or without an
// ID number among its traits.
func benchEvent(withID bool) *portrait.Event {
	traits := `{"name":"张三","email":"zhang.san@example.com","phone":"13800138000","city":"上海","plan":"gold","age":34,"gender":"male","company":"Acme","title":"buyer"`
	if withID {
		traits += `,"id_card":"110101199003071233"`
	}
	traits += "}"
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return &portrait.Event{MessageID: "0b0c3f6e-6c1e-4a57-9a57-5d0f6a1f3b11", Type: "identify", Source: "web", UserID: "u-1", AnonymousID: "a-1",
		Traits:    json.RawMessage(traits),
		Context:   json.RawMessage(`{"ip":"10.1.2.3","library":{"name":"analytics.js","version":"4.1.0"},"page":{"path":"/checkout","url":"https://shop.example.com/checkout"},"userAgent":"Mozilla/5.0"}`),
		Timestamp: at, ReceivedAt: at}
}

// BenchmarkSealEvent: the ingest path's cost of sealing, beside the
// encoding it already pays (Marshal), in the same run.
func BenchmarkSealEvent(b *testing.B) {
	r, _ := datakey.Parse([]byte(mustLine(b, "k1")))
	levels := (*access.Classifier)(nil)
	plainBody, _ := gojson.Marshal(benchEvent(false))
	idBody, _ := gojson.Marshal(benchEvent(true))
	b.Run("marshal", func(b *testing.B) {
		e := benchEvent(true)
		cpu(b, func() { gojson.Marshal(e) })
	})
	for _, c := range []struct {
		name string
		s    *datakey.Sealer
		body []byte
	}{
		{"no-key", &datakey.Sealer{Levels: levels}, idBody},
		{"key/nothing-secret", &datakey.Sealer{Ring: r, Levels: levels}, plainBody},
		{"key/nothing-secret/cached", &datakey.Sealer{Ring: r, Levels: levels, CacheFor: time.Second}, plainBody},
		{"key/id-number/cached", &datakey.Sealer{Ring: r, Levels: levels, CacheFor: time.Second}, idBody},
		{"key/id-number", &datakey.Sealer{Ring: r, Levels: levels}, idBody},
	} {
		b.Run("seal/"+c.name, func(b *testing.B) {
			cpu(b, func() {
				if _, err := c.s.SealEvent(c.body); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	s := &datakey.Sealer{Ring: r, Levels: levels}
	sealed, _ := s.SealEvent(idBody)
	b.Run("open/key/id-number", func(b *testing.B) {
		cpu(b, func() { s.OpenEvent(sealed) })
	})
	b.Run("open/nothing-sealed", func(b *testing.B) {
		cpu(b, func() { s.OpenEvent(plainBody) })
	})
}

// cpu reports the process's user+system CPU time per operation: on a
// shared machine wall time per operation mostly measures the neighbours.
func cpu(b *testing.B, fn func()) {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		fn()
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func mustLine(b *testing.B, id string) string {
	l, err := datakey.NewKeyLine(id)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkSealProfileState is what sealing an enricher's private state
// adds to a profile write: SealProfile of a profile with nothing secret
// and a ~300-byte state, without and with a ring.
func BenchmarkSealProfileState(b *testing.B) {
	p := &portrait.Profile{ID: "p1", Traits: map[string]portrait.Trait{"name": {Value: "N"}, "plan": {Value: "gold"}},
		State: map[string]json.RawMessage{"traits": json.RawMessage(`{"v":2,"n":12,"last":"m-000123","first":"2026-03-01T09:00:00Z","sums":{"orders_30d":3,"revenue_30d":120.5,"revenue_90d":431},"seen":["Order Completed","Product Viewed","Added to Cart"],"lifecycle":{"stage":"active","since":"2026-02-01T00:00:00Z"},"rfm":{"r":3,"f":4,"m":5}}`)}}
	bare := *p
	bare.State = nil
	r := ring(b, "k1")
	for _, c := range []struct {
		name string
		s    *datakey.Sealer
		p    *portrait.Profile
	}{
		{"no-key", &datakey.Sealer{}, p},
		{"key-without-state", &datakey.Sealer{Ring: r, Levels: (*access.Classifier)(nil), CacheFor: 2 * time.Second}, &bare},
		{"key", &datakey.Sealer{Ring: r, Levels: (*access.Classifier)(nil), CacheFor: 2 * time.Second}, p},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu(b, func() {
				if _, err := c.s.SealProfile(c.p); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
