package postgres

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// BenchmarkAuditedReads records one audit record per operation from 16
// goroutines at once, as many audited API reads do. It reports this
// process's CPU time per record (getrusage; the server's own CPU is not in
// it) beside ns/op, which is the throughput.
func BenchmarkAuditedReads(b *testing.B) {
	db := openTest(b)
	rec := portrait.AuditRecord{Actor: "analyst", KeyID: 7, Role: "analyst", Action: "read", Target: "/v1/profiles/p_0123456789", Remote: "10.0.0.9",
		Detail: map[string]any{"status": 200, "fields": []string{"phone:confidential:masked", "email:confidential:masked"}}}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.Record(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/record")
}
