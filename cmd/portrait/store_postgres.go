package main

import (
	"context"

	"github.com/portrait-cdp/portrait/postgres"
)

// The PostgreSQL store (postgres/) behind --store postgres://…. It is
// returned as itself, not wrapped: an api node needs its change feed
// (ProfileChanges), which the Store interface does not name.
var (
	_ Store      = (*postgres.DB)(nil)
	_ changeFeed = (*postgres.DB)(nil)
)

func init() {
	openPostgres = func(ctx context.Context, url string, o storeOptions) (Store, error) {
		db, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		db.ChangesKept, db.Log = o.ChangesKept, o.Log
		return db, nil
	}
}
