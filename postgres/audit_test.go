package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// The audit log is append-only and hash-chained: editing, deleting or
// reordering a record is found by VerifyAudit, naming the record.
func TestAuditChainDetectsTampering(t *testing.T) {
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
			db := openTest(t)
			for _, actor := range []string{"alice", "bob", "carol", "dave"} {
				if err := db.Record(ctx, portrait.AuditRecord{Actor: actor, Action: "read", Target: "/v1/profiles/p1",
					Fields: []portrait.AuditField{{Name: "phone", Level: "confidential", Masked: true}}}); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := db.VerifyAudit(ctx); err != nil || n != 4 {
				t.Fatalf("intact chain: %d %v", n, err)
			}
			// Through SQL the log refuses changes...
			if _, err := db.pool.Exec(ctx, `UPDATE audit SET actor = 'eve' WHERE seq = 2`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("update allowed: %v", err)
			}
			if _, err := db.pool.Exec(ctx, `DELETE FROM audit WHERE seq = 2`); err == nil {
				t.Error("delete allowed")
			}
			// ...and someone with the database who drops the trigger is
			// found out.
			if _, err := db.pool.Exec(ctx, `DROP TRIGGER audit_no_change ON audit; `+tamper.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := db.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("tampering (%s) not found: %v", tamper.name, err)
			}
		})
	}
}

// Two processes recording at once (two DB values, each with its own pool,
// on one database) still make one chain: every record follows the one
// committed before it, none is lost, none shares a sequence number.
func TestAuditChainWithTwoNodes(t *testing.T) {
	ctx := context.Background()
	a := openTest(t)
	b, err := Open(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const perWriter, writers = 25, 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for i, db := range []*DB{a, b} {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < perWriter; j++ {
					if err := db.Record(ctx, portrait.AuditRecord{Actor: fmt.Sprintf("node%d-w%d", i, w), Action: "read", Target: fmt.Sprint(j)}); err != nil {
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
	const total = 2 * writers * perWriter
	for _, db := range []*DB{a, b} {
		if n, err := db.VerifyAudit(ctx); err != nil || n != total {
			t.Errorf("verify: %d records, %v; want %d and an intact chain", n, err, total)
		}
	}
	for _, actor := range []string{"node0-w0", "node1-w3"} {
		if recs, err := a.ListAudit(ctx, portrait.AuditFilter{Actor: actor}); err != nil || len(recs) != perWriter {
			t.Errorf("%s: %d records %v", actor, len(recs), err)
		}
	}
}
