package postgres

import (
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/storetest"
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
