package sqlite_test

import (
	"testing"

	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

func TestKeysHashedSlowlyAndMigrated(t *testing.T) {
	storetest.KeysHashedSlowlyAndMigrated(t, func(t *testing.T) (storetest.AdminStore, storetest.Raw) {
		db := openStore(t)
		db.KeyHashCost = 4
		return db, sqlite.RawForTest(db)
	})
}
