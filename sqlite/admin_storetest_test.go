package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestAdminConformance holds the SQLite store to the administrative
// checks both stores pass (storetest.RunAdmin).
func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T, now func() time.Time) storetest.AdminStore {
		db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		db.Now, db.KeyHashCost = now, 4
		return db
	})
}

// TestEraseConformance erases a person through the processor (storetest.Erase).
func TestEraseConformance(t *testing.T) {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Erase(t, db)
}

// TestEraseCarriedConformance: an erasure after a retention pass rewrites
// the carried-forward accounts without the person (storetest.EraseCarried).
// Sealed too: the record is opened and sealed again.
func TestEraseCarriedConformance(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "clear", true: "sealed"}[sealed], func(t *testing.T) {
			db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if sealed {
				db.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, storetest.KeyLines(t, "k1")...), Levels: storetest.AllSecret{}})
			}
			storetest.EraseCarried(t, db, func(ctx context.Context) (profile.ScratchStore, error) { return sqlite.Open(ctx, t.TempDir()) })
		})
	}
}

// TestErasureAuditedWithItsReceipt: the erasure's audit record commits
// with its receipt (storetest.ErasureAuditedWithItsReceipt).
func TestErasureAuditedWithItsReceipt(t *testing.T) {
	db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.ErasureAuditedWithItsReceipt(t, db)
}
