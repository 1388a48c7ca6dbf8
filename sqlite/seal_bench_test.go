package sqlite_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// BenchmarkIngestSealed appends and processes identify events carrying an
// ID number, with and without a data key, in the same run, and reports the
// process's CPU time per event (getrusage: wall time on a shared machine
// mostly measures the neighbours).
func BenchmarkIngestSealed(b *testing.B) {
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
