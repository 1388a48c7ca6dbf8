package sqlite_test

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestExpiredMessageIDsGone runs storetest.ExpiredMessageIDsGone over the
// store's files.
func TestExpiredMessageIDsGone(t *testing.T) {
	storetest.ExpiredMessageIDsGone(t, sqliteSealHarness(t.TempDir()), func(t *testing.T) profile.ScratchStore {
		db, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
