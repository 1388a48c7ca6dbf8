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
//
// The pass's rewritten rows leave their old versions, which name the
// expired messages, until a VACUUM that no snapshot holds back: a
// transaction another session keeps open (another test's, an engineer's
// psql on a shared server, in any database once it has written) keeps
// them in the table files whatever the scan's VACUUM FULL does. So, as
// TestRotationWaitsForHeldOldVersions does for a rotation, the pass is
// followed by the store's own wait for such sessions (horizon.go): it
// waits for them to end, at most DefaultVacuumWait, and the test is
// skipped, saying who held them, only when one still does. With nothing
// held it scans exactly as before.
func TestExpiredMessageIDsGone(t *testing.T) {
	url := pgtest.URL(t)
	h := pgSealHarness(url)
	h.Compact = func(t *testing.T, s storetest.SealStore) {
		db := s.(*DB)
		ctx := context.Background()
		mark, err := db.horizonMark(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o, err := db.vacuumHeld(ctx, "a retention pass", "VACUUM events, trait_issues, merges, compacted, profile_events, retracted, splits, profiles, identities", mark, DefaultVacuumWait)
		if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			t.Skipf("another session held the expired events' old row versions past the wait: %s", o.Note)
		}
	}
	storetest.ExpiredMessageIDsGone(t, h, func(t *testing.T) profile.ScratchStore {
		db, err := Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
