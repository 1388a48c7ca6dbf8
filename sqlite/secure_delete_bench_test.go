package sqlite_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// BenchmarkIngestUpdates appends and processes events for profiles that
// already exist, in batches of 50 as a live server commits them, so each
// profile document is replaced many times: the writes whose freed space
// secure_delete (FAST) zeroes. It reports the process's CPU time per
// event (getrusage), to compare the mode against OFF.
func BenchmarkIngestUpdates(b *testing.B) {
	const n, people, batch = 3000, 100, 50
	var used time.Duration
	for i := range b.N {
		b.StopTimer()
		e := openSealed(b, b.TempDir(), nil)
		evs := make([]*portrait.Event, n)
		for j := range evs {
			p := j % people
			evs[j] = ev(fmt.Sprintf("m%d-%d", i, j), portrait.EventIdentify, fmt.Sprintf("u-%d", p), "", j%60,
				fmt.Sprintf(`{"name":"N %d","email":"u%d@example.com","plan":"gold-%d","visits":%d,"note":"%0300d"}`, p, p, j, j, j), "")
		}
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		b.StartTimer()
		for k := 0; k < n; k += batch {
			if _, err := e.db.Append(context.Background(), evs[k:k+batch], nil); err != nil {
				b.Fatal(err)
			}
			last, _ := e.db.LastSeq(context.Background())
			if err := e.proc.CatchUp(context.Background(), last); err != nil {
				b.Fatal(err)
			}
			if err := e.proc.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		used += time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		e.db.Close()
	}
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*n), "cpu-ns/event")
}
