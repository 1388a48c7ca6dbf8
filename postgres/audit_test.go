package postgres

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/storetest"
)

// raw is the store's SQL for storetest's checks beneath its methods.
func (db *DB) raw() storetest.Raw {
	return storetest.Raw{
		Exec: func(ctx context.Context, sql string, args ...any) error {
			_, err := db.pool.Exec(ctx, sql, args...)
			return err
		},
		Scan: func(ctx context.Context, sql string, args []any, dest ...any) error {
			return db.pool.QueryRow(ctx, sql, args...).Scan(dest...)
		},
		DropAuditGuards: `DROP TRIGGER audit_no_change ON audit`,
	}
}

func TestAuditChainDetectsTampering(t *testing.T) {
	storetest.AuditTampering(t, func(t *testing.T) (portrait.AuditLog, storetest.Raw) {
		db := openTest(t)
		return db, db.raw()
	})
}

// Two processes recording at once (two DB values, each with its own pool,
// on one database) still make one chain.
func TestAuditChainWithTwoNodes(t *testing.T) {
	a := openTest(t)
	b, err := Open(context.Background(), a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.AuditConcurrentWriters(t, a, b)
}

func BenchmarkAuditedReads(b *testing.B) {
	storetest.BenchmarkAuditedReads(b, openTest(b))
}

// Records cut off the end, or a re-hashed chain, are found against an
// anchor (the head an earlier verify reported).
func TestAuditChainAnchored(t *testing.T) {
	storetest.AuditAnchor(t, func(t *testing.T) (portrait.AuditLog, storetest.Raw) {
		db := openTest(t)
		return db, db.raw()
	})
}
