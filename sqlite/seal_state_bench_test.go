package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
)

// accumulator keeps a private state per profile the size of the traits
// enricher's usual one (counts and last values, ~300 bytes), so that the
// benchmark pays what a profile write with enrichers pays.
type accumulator struct{}

func (accumulator) Event(p *portrait.Profile, e *portrait.Event, _ map[string]any) {
	if p.State == nil {
		p.State = map[string]json.RawMessage{}
	}
	b, _ := json.Marshal(map[string]any{"v": 2, "n": p.EventCount, "last": e.MessageID, "first": p.FirstSeen,
		"sums": map[string]float64{"revenue_30d": 120.5, "revenue_90d": 431, "orders_30d": 3}, "seen": []string{"Order Completed", "Product Viewed", "Added to Cart"}})
	p.State["acc"] = b
}
func (accumulator) Merge(keep, gone *portrait.Profile)  {}
func (accumulator) Finish(*portrait.Profile, time.Time) {}

// BenchmarkIngestSealedState is BenchmarkIngestSealed with an enricher
// that keeps private state: identify events of new profiles with four
// identifiers, one an ID number, CPU time per event (getrusage).
func BenchmarkIngestSealedState(b *testing.B) {
	const n = 2000
	line, _ := datakey.NewKeyLine("k1")
	r, _ := datakey.Parse([]byte(line))
	for _, c := range []struct {
		name string
		s    *datakey.Sealer
	}{
		{"no-key", nil},
		{"key", &datakey.Sealer{Ring: r, Levels: (*access.Classifier)(nil), CacheFor: 2 * time.Second}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var used time.Duration
			for i := range b.N {
				b.StopTimer()
				e := openSealed(b, b.TempDir(), c.s)
				e.proc.Enrichers = []profile.Enricher{accumulator{}}
				evs := make([]*portrait.Event, n)
				for j := range evs {
					evs[j] = ev(fmt.Sprintf("m%d-%d", i, j), portrait.EventIdentify, fmt.Sprintf("u-%d", j), fmt.Sprintf("a-%d", j), j%60,
						fmt.Sprintf(`{"name":"N %d","email":"u%d@example.com","id_card":"%017d","plan":"gold","age":%d}`, j, j, j, 20+j%50), "")
				}
				var before, after syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &before)
				b.StartTimer()
				if _, err := e.db.Append(context.Background(), evs, nil); err != nil {
					b.Fatal(err)
				}
				last, _ := e.db.LastSeq(context.Background())
				if err := e.proc.CatchUp(context.Background(), last); err != nil {
					b.Fatal(err)
				}
				if err := e.proc.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				syscall.Getrusage(syscall.RUSAGE_SELF, &after)
				used += time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
				e.db.Close()
			}
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*n), "cpu-ns/event")
		})
	}
}
