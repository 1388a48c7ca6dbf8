package postgres

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/storetest"
)

// On a database whose collation is not byte order (ICU en-US: case and
// punctuation ignored at first), profile ids still page in byte order, as
// the embedded store and Go's sort order them, and the shared history
// gives the same answers as the embedded store. Without COLLATE "C" on the
// id columns the pages come out in en-US order.
func TestOrderingUnderANonCCollation(t *testing.T) {
	url := pgtest.Dedicated(t, `TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`)
	db := openURL(t, url)
	ctx := context.Background()
	var coll string
	if err := db.pool.QueryRow(ctx, `SELECT daticulocale FROM pg_database WHERE datname = current_database()`).Scan(&coll); err != nil || coll != "en-US" {
		t.Fatalf("the test database's ICU locale is %q (%v), want en-US", coll, err)
	}
	ids := []string{"ab", "a-b", "aB", "A1", "_z", "Z", "b", "a_c"}
	var ps []*portrait.Profile
	for _, id := range ids {
		ps = append(ps, prof(id))
	}
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles(ps) })
	want := slices.Clone(ids)
	sort.Strings(want)
	var got []string
	after := ""
	for {
		page, err := db.ProfileIDs(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("profile ids page as %q, want byte order %q", got, want)
	}
	if err := db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}

	ref, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	storetest.RunSameAnswers(t, ref, db)
}
