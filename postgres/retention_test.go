package postgres

import (
	"context"
	"testing"

	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestExpiredMessageIDsGone runs storetest.ExpiredMessageIDsGone over
// every column and table file of the database; the pass's scratch store is
// a database of its own.
func TestExpiredMessageIDsGone(t *testing.T) {
	url := pgtest.URL(t)
	storetest.ExpiredMessageIDsGone(t, pgSealHarness(url), func(t *testing.T) profile.ScratchStore {
		db, err := Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
