package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/erasure"
	porthttp "github.com/portrait-cdp/portrait/http"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/storetest"
)

// The services that call these methods take the PostgreSQL store as they
// take the embedded one.
var (
	_ erasure.QuarantineStore      = (*DB)(nil)
	_ erasure.SuppressionStore     = (*DB)(nil)
	_ porthttp.ImportLookup        = (*DB)(nil)
	_ porthttp.ClassificationStore = (*DB)(nil)
	_ storetest.AdminStore         = (*DB)(nil)
)

// TestAdminConformance holds the PostgreSQL store to the administrative
// checks the embedded store passes (storetest.RunAdmin).
func TestAdminConformance(t *testing.T) {
	storetest.RunAdmin(t, func(t *testing.T, now func() time.Time) storetest.AdminStore {
		db := openTest(t)
		db.Now = now
		return db
	})
}

// TestEraseConformance erases a person through the processor
// (storetest.Erase), once the store has the event log and the state
// transaction of the core (postgres/log.go, state.go): until then it is
// skipped, and names why.
func TestEraseConformance(t *testing.T) {
	var db any = openTest(t)
	s, ok := db.(storetest.EraseStore)
	if !ok {
		t.Skip("the PostgreSQL store has no event log and state transaction yet (the core's methods): nothing to erase through")
	}
	storetest.Erase(t, s)
}

// TestEraseCarriedConformance: an erasure after a retention pass rewrites
// the carried-forward accounts without the person (storetest.EraseCarried).
func TestEraseCarriedConformance(t *testing.T) {
	storetest.EraseCarried(t, openTest(t), func(ctx context.Context) (profile.ScratchStore, error) { return Open(ctx, pgtest.URL(t)) })
}

// TestErasureAuditedWithItsReceipt: the erasure's audit record commits
// with its receipt (storetest.ErasureAuditedWithItsReceipt).
func TestErasureAuditedWithItsReceipt(t *testing.T) {
	storetest.ErasureAuditedWithItsReceipt(t, openTest(t))
}
