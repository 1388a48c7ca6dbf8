package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Raw is a store's own SQL beneath its methods, for the checks that must
// see what is stored or change it as an old version or an intruder with
// the database would. Queries are written with $1, $2, … placeholders
// (SQLite reads them as numbered parameters too).
type Raw struct {
	// Exec runs one or more statements.
	Exec func(ctx context.Context, sql string, args ...any) error
	// Scan reads the one row sql returns into dest.
	Scan func(ctx context.Context, sql string, args []any, dest ...any) error
	// DropAuditGuards removes what keeps the audit table append-only (the
	// store's triggers), as someone with the database could.
	DropAuditGuards string
}

// AuditTampering: the audit log is append-only and hash-chained. Through
// SQL an update or delete is refused; once someone drops the guards and
// edits, deletes or reorders a record, VerifyAudit finds it and names the
// record. open returns a new empty store and its raw SQL.
func AuditTampering(t *testing.T, open func(t *testing.T) (portrait.AuditLog, Raw)) {
	ctx := context.Background()
	for _, tamper := range []struct {
		name, sql, want string
	}{
		{"edit", `UPDATE audit SET body = replace(body, '"actor":"bob"', '"actor":"eve"') WHERE seq = 2`, "record 2 was altered"},
		{"delete", `DELETE FROM audit WHERE seq = 2`, "record 2 is missing"},
		{"rechain", `UPDATE audit SET prev = 'x' WHERE seq = 3`, "record 3 does not follow"},
		{"swap", `UPDATE audit SET seq = seq + 10 WHERE seq IN (2, 3); UPDATE audit SET seq = 5 WHERE seq = 12; UPDATE audit SET seq = 2 WHERE seq = 13; UPDATE audit SET seq = 3 WHERE seq = 5`, "record 2"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			s, raw := open(t)
			for _, actor := range []string{"alice", "bob", "carol", "dave"} {
				if err := s.Record(ctx, portrait.AuditRecord{Actor: actor, Action: "read", Target: "/v1/profiles/p1",
					Fields: []portrait.AuditField{{Name: "phone", Level: "confidential", Masked: true}}}); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.VerifyAudit(ctx); err != nil || n != 4 {
				t.Fatalf("intact chain: %d %v", n, err)
			}
			recs, err := s.ListAudit(ctx, portrait.AuditFilter{Actor: "bob"})
			if err != nil || len(recs) != 1 || recs[0].Seq != 2 || recs[0].Fields[0].Name != "phone" || recs[0].Prev == "" {
				t.Fatalf("list: %+v %v", recs, err)
			}
			// Through SQL the log refuses changes...
			if err := raw.Exec(ctx, `UPDATE audit SET actor = 'eve' WHERE seq = 2`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("update allowed: %v", err)
			}
			if err := raw.Exec(ctx, `DELETE FROM audit WHERE seq = 2`); err == nil {
				t.Error("delete allowed")
			}
			// ...and someone with the database who drops the guards is
			// found out.
			if err := raw.Exec(ctx, raw.DropAuditGuards+"; "+tamper.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := s.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("tampering (%s) not found: %v", tamper.name, err)
			}
		})
	}
}

// AuditAnchor: a hash chain checked only against itself misses two
// tamperings by someone with the database: records cut off its end, and a
// record edited with every hash after it recomputed. VerifyAudit accepts
// both (shown here, so the test fails if that changes unnoticed); checked
// against an anchor (the head an earlier verify reported, kept elsewhere)
// both are found. open returns a new empty store and its raw SQL.
func AuditAnchor(t *testing.T, open func(t *testing.T) (portrait.AuditLog, Raw)) {
	ctx := context.Background()
	for _, tamper := range []struct{ name, want string }{
		{"truncate", "ends at record 3, before the anchor's record 4"},
		{"rewrite", "record 4 does not have the anchor's hash"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			s, raw := open(t)
			for _, actor := range []string{"alice", "bob", "carol", "dave"} {
				if err := s.Record(ctx, portrait.AuditRecord{Actor: actor, Action: "read", Target: "/v1/profiles/p1"}); err != nil {
					t.Fatal(err)
				}
			}
			head, n, err := portrait.VerifyAuditAnchored(ctx, s)
			if err != nil || n != 4 || head.Seq != 4 || len(head.Hash) != 64 {
				t.Fatalf("intact chain: head %+v, %d records, %v", head, n, err)
			}
			anchor, err := portrait.ParseAuditHead(head.String())
			if err != nil || anchor != head {
				t.Fatalf("the head does not read back: %q %v", head.String(), err)
			}
			if _, _, err := portrait.VerifyAuditAnchored(ctx, s, anchor); err != nil {
				t.Fatalf("the intact chain fails its own anchor: %v", err)
			}
			if err := raw.Exec(ctx, raw.DropAuditGuards); err != nil {
				t.Fatal(err)
			}
			switch tamper.name {
			case "truncate":
				if err := raw.Exec(ctx, `DELETE FROM audit WHERE seq = 4`); err != nil {
					t.Fatal(err)
				}
			case "rewrite": // bob's read becomes eve's, and the chain is re-hashed after it
				recs, err := s.ListAudit(ctx, portrait.AuditFilter{})
				if err != nil || len(recs) != 4 {
					t.Fatal(recs, err)
				}
				prev := recs[0].Hash
				for _, r := range recs[1:] {
					if r.Actor == "bob" {
						r.Actor = "eve"
					}
					body, _ := portrait.AuditBody(*r)
					hash := portrait.AuditHash(prev, body)
					if err := raw.Exec(ctx, `UPDATE audit SET actor = $1, body = $2, prev = $3, hash = $4 WHERE seq = $5`, r.Actor, string(body), prev, hash, r.Seq); err != nil {
						t.Fatal(err)
					}
					prev = hash
				}
			}
			if n, err := s.VerifyAudit(ctx); err != nil {
				t.Errorf("the %s is now found without an anchor (%d, %v): update this test", tamper.name, n, err)
			}
			if _, _, err := portrait.VerifyAuditAnchored(ctx, s, anchor); err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("%s not found against the anchor: %v", tamper.name, err)
			}
		})
	}
}

// AuditConcurrentWriters: writers recording at once on each of logs (one
// store, or several handles on one database as several nodes have) still
// make one chain: every record follows the one committed before it, none
// is lost, none shares a sequence number, and every handle verifies it.
func AuditConcurrentWriters(t *testing.T, logs ...portrait.AuditLog) {
	ctx := context.Background()
	const perWriter, writers = 25, 4
	var wg sync.WaitGroup
	errs := make(chan error, len(logs)*writers)
	for i, s := range logs {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < perWriter; j++ {
					if err := s.Record(ctx, portrait.AuditRecord{Actor: fmt.Sprintf("node%d-w%d", i, w), Action: "read", Target: fmt.Sprint(j)}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(len(logs) * writers * perWriter)
	for _, s := range logs {
		if n, err := s.VerifyAudit(ctx); err != nil || n != total {
			t.Errorf("verify: %d records, %v; want %d and an intact chain", n, err, total)
		}
	}
	all, err := logs[0].ListAudit(ctx, portrait.AuditFilter{Limit: int(total) + 1})
	if err != nil || int64(len(all)) != total {
		t.Fatalf("list: %d records %v, want %d", len(all), err, total)
	}
	for i, r := range all {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has sequence number %d: the chain has a gap or a repeat", i+1, r.Seq)
		}
	}
	for _, actor := range []string{"node0-w0", fmt.Sprintf("node%d-w%d", len(logs)-1, writers-1)} {
		if recs, err := logs[0].ListAudit(ctx, portrait.AuditFilter{Actor: actor}); err != nil || len(recs) != perWriter {
			t.Errorf("%s: %d records %v", actor, len(recs), err)
		}
	}
}

// BenchmarkAuditedReads records one audit record per operation from 8 ×
// GOMAXPROCS goroutines at once, as many API requests reading profiles do
// (each audited read writes one record before it is served). It reports
// this process's CPU time per record (getrusage: wall time on a shared
// machine measures the neighbours; a database server's own CPU is not in
// it) beside ns/op, which is the throughput.
func BenchmarkAuditedReads(b *testing.B, s portrait.Auditor) {
	rec := portrait.AuditRecord{Actor: "analyst", KeyID: 7, Role: "analyst", Action: "read", Target: "/v1/profiles/p_0123456789", Remote: "10.0.0.9",
		Detail: map[string]any{"status": 200, "fields": []string{"phone:confidential:masked", "email:confidential:masked"}}}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Record(context.Background(), rec); err != nil {
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
