package sqlite

import (
	"context"

	"github.com/portrait-cdp/portrait/profile"
)

// openScratch opens a retention pass's scratch store as cmd/portrait does
// (expireEvents). (A copy of the benchmark run against an earlier version
// replaces this file with one that calls Open alone.)
func openScratch(ctx context.Context, dir string) (*DB, error) {
	db, err := Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	db.LimitTail(4 * profile.ExpiredPage)
	return db, nil
}
