package sqlite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/profile"
)

// BenchmarkRetentionPass measures one event retention pass
// (profile.Processor.Compact) over n expired events on the embedded store,
// of p profiles: each has n/p expired events (an anonymous track, an
// identify that merges it, tracks, a last identify that replaces a trait)
// and one kept event. Sizes with the same profiles and more events show
// what grows with the events alone. Besides -benchmem's allocations it reports the peak heap in
// use during the pass above the heap before it (sampled every 5 ms) and
// the process's CPU time per expired event (rusage: the machine is
// shared, wall time says little).
func BenchmarkRetentionPass(b *testing.B) {
	for _, c := range []struct{ n, p int }{{20_000, 2_000}, {20_000, 20_000}, {50_000, 5_000}, {200_000, 2_000}, {200_000, 20_000}, {1_000_000, 100_000}} {
		b.Run(fmt.Sprintf("expired=%d/profiles=%d", c.n, c.p), func(b *testing.B) { benchRetentionPass(b, c.n, c.p) })
	}
}

func benchRetentionPass(b *testing.B, n, profiles int) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	per := n / profiles
	limit := t0.Add(time.Duration(per*profiles) * time.Second)
	src := b.TempDir()
	db, err := Open(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	var page []*portrait.Event
	flush := func() {
		if _, err := db.Append(ctx, page, nil); err != nil {
			b.Fatal(err)
		}
		page = page[:0]
	}
	for j := 0; j < per; j++ {
		for k := 0; k < profiles; k++ {
			at := t0.Add(time.Duration(j*profiles+k) * time.Second)
			e := &portrait.Event{MessageID: fmt.Sprintf("m-%d-%d", k, j), Source: "web", AnonymousID: fmt.Sprintf("a%d", k),
				Type: portrait.EventTrack, Name: "Viewed", Properties: []byte(fmt.Sprintf(`{"page":"/p/%d","n":%d}`, k%97, j)),
				Timestamp: at, ReceivedAt: at}
			if j == 1 || j == per-1 {
				e.Type, e.Name, e.Properties = portrait.EventIdentify, "", nil
				e.UserID = fmt.Sprintf("u%d", k)
				e.Traits = []byte(fmt.Sprintf(`{"email":"p%d@example.com","name":"Person %d v%d","plan":"p%d"}`, k, k, j, k%5))
			}
			page = append(page, e)
			if len(page) == 5000 {
				flush()
			}
		}
	}
	for k := 0; k < profiles; k++ {
		at := limit.Add(time.Duration(k) * time.Second)
		page = append(page, &portrait.Event{MessageID: fmt.Sprintf("kept-%d", k), Source: "web", UserID: fmt.Sprintf("u%d", k),
			Type: portrait.EventTrack, Name: "Bought", Properties: []byte(`{"sku":"x"}`), Timestamp: at, ReceivedAt: at})
		if len(page) == 5000 {
			flush()
		}
	}
	if len(page) > 0 {
		flush()
	}
	newProc := func(db *DB) *profile.Processor {
		p := profile.NewProcessor(db, identity.DefaultRules().Compile())
		p.Now = func() time.Time { return limit.Add(48 * time.Hour) }
		last, err := db.LastSeq(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.CatchUp(ctx, last); err != nil {
			b.Fatal(err)
		}
		return p
	}
	newProc(db)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	var peak, cpu float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		copyDir(b, src, dir)
		db, err := Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		p := newProc(db)
		scratch := func(ctx context.Context) (profile.ScratchStore, error) { return openScratch(ctx, b.TempDir()) }
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		max := base
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(5 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > max {
						if prof := os.Getenv("RETENTION_BENCH_HEAPPROFILE"); prof != "" && ms.HeapInuse > max+max/10 {
							// Where the peak is (the heap at the latest GC).
							if f, err := os.Create(prof); err == nil {
								pprof.WriteHeapProfile(f)
								f.Close()
							}
						}
						max = ms.HeapInuse
					}
				}
			}
		}()
		c0 := cpuTime()
		b.StartTimer()
		run, err := p.Compact(ctx, db, limit, scratch)
		b.StopTimer()
		c1 := cpuTime()
		close(done)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if run.Deleted != int64(n) {
			b.Fatalf("%d events expired, want %d", run.Deleted, n)
		}
		peak += float64(max-base) / (1 << 20)
		cpu += float64(c1-c0) / float64(n)
		db.Close()
		os.RemoveAll(dir)
	}
	b.ReportMetric(peak/float64(b.N), "peak-heap-MB")
	b.ReportMetric(cpu/float64(b.N), "cpu-ns/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func copyDir(b testing.TB, from, to string) {
	ents, err := os.ReadDir(from)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		in, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(to, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

// BenchmarkExpiredDecisions measures the question a retention pass asks
// about its decisions (splits, retractions): whether each one's event
// expired, for 100,000 message ids of a log of 200,000 events, half of
// them expired: one set-wise query per 500 ids (ExpiredAmong) against the
// lookup per id the pass made before (EventByMessageID). CPU per id.
func BenchmarkExpiredDecisions(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 200_000
	limit := t0.Add(n / 2 * time.Second)
	var page []*portrait.Event
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		page = append(page, &portrait.Event{MessageID: fmt.Sprintf("m-%d", i), Source: "web", UserID: fmt.Sprintf("u%d", i%1000),
			Type: portrait.EventTrack, Name: "Viewed", Timestamp: at, ReceivedAt: at})
		if len(page) == 5000 {
			if _, err := db.Append(ctx, page, nil); err != nil {
				b.Fatal(err)
			}
			page = page[:0]
		}
	}
	upTo, _ := db.LastSeq(ctx)
	ids := make([]string, 0, n/2)
	for i := 0; i < n; i += 2 {
		ids = append(ids, fmt.Sprintf("m-%d", i))
	}
	b.Run("set-wise", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c0 := cpuTime()
			got, err := db.ExpiredAmong(ctx, limit, upTo, ids)
			c1 := cpuTime()
			if err != nil || len(got) != n/4 {
				b.Fatalf("%d expired, %v; want %d", len(got), err, n/4)
			}
			b.ReportMetric(float64(c1-c0)/float64(len(ids)), "cpu-ns/id")
		}
	})
	b.Run("one-by-one", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c0 := cpuTime()
			x := 0
			for _, id := range ids {
				e, err := db.EventByMessageID(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if e != nil && e.Seq <= upTo && e.Timestamp.Before(limit) {
					x++
				}
			}
			c1 := cpuTime()
			if x != n/4 {
				b.Fatalf("%d expired, want %d", x, n/4)
			}
			b.ReportMetric(float64(c1-c0)/float64(len(ids)), "cpu-ns/id")
		}
	})
}
