package postgres

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func prof(id string) *portrait.Profile {
	return &portrait.Profile{ID: id, Traits: map[string]portrait.Trait{}, EventCount: 1, FirstSeen: t0, LastSeen: t0, UpdatedAt: t0}
}

func commitState(t testing.TB, db *DB, fn func(tx profile.StateTx) error) {
	t.Helper()
	tx, err := db.BeginState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

type feedPage struct {
	changed, deleted []string
	next             int64
}

func follow(t testing.TB, db *DB, after int64, limit int) feedPage {
	t.Helper()
	c, d, next, err := db.ProfileChanges(context.Background(), after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return feedPage{c, d, next}
}

// The feed lists, in commit order, the profiles each committed state
// transaction wrote or deleted, the last word on each id within a page;
// a rolled-back transaction adds nothing; pages continue at their cursor.
func TestProfileChangesInCommitOrder(t *testing.T) {
	db := openTest(t)
	if p := follow(t, db, 0, 10); len(p.changed)+len(p.deleted) != 0 || p.next != 0 {
		t.Fatalf("an empty feed: %+v", p)
	}
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles([]*portrait.Profile{prof("b"), prof("a")}) })
	tx, _ := db.BeginState(context.Background())
	tx.PutProfile(prof("rolled-back"))
	tx.Rollback()
	commitState(t, db, func(tx profile.StateTx) error {
		if err := tx.PutProfile(prof("c")); err != nil {
			return err
		}
		return tx.DeleteProfile("b")
	})
	p := follow(t, db, 0, 10)
	if !reflect.DeepEqual(p.changed, []string{"a", "c"}) || !reflect.DeepEqual(p.deleted, []string{"b"}) || p.next != 4 {
		t.Fatalf("feed %+v, want changed [a c], deleted [b], next 4", p)
	}
	if q := follow(t, db, p.next, 10); len(q.changed)+len(q.deleted) != 0 || q.next != p.next {
		t.Errorf("nothing after the end: %+v", q)
	}
	// Pages of one row follow the same order.
	var seen []string
	for cur := int64(0); ; {
		q := follow(t, db, cur, 1)
		if q.next == cur {
			break
		}
		for _, id := range q.changed {
			seen = append(seen, "+"+id)
		}
		for _, id := range q.deleted {
			seen = append(seen, "-"+id)
		}
		cur = q.next
	}
	if want := []string{"+a", "+b", "+c", "-b"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("one row a page: %v, want %v", seen, want)
	}
	// A profile deleted, then written again in a later transaction, is
	// changed.
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfile(prof("b")) })
	if q := follow(t, db, 0, 100); !reflect.DeepEqual(q.changed, []string{"a", "c", "b"}) || len(q.deleted) != 0 {
		t.Errorf("after b came back: %+v", q)
	}
	if head := follow(t, db, -1, 0); head.next != 5 || head.changed != nil {
		t.Errorf("the head of the feed %+v, want 5", head)
	}
}

// A cursor taken before ResetState still works: the reset reports every
// profile deleted and the rebuild every profile it writes, so a follower
// ends with exactly the rebuilt set.
func TestProfileChangesAcrossResetState(t *testing.T) {
	db := openTest(t)
	commitState(t, db, func(tx profile.StateTx) error {
		return tx.PutProfiles([]*portrait.Profile{prof("a"), prof("b"), prof("c")})
	})
	index := map[string]bool{}
	apply := func(p feedPage) {
		for _, id := range p.changed {
			index[id] = true
		}
		for _, id := range p.deleted {
			delete(index, id)
		}
	}
	p := follow(t, db, 0, 100)
	apply(p)
	if err := db.ResetState(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The rebuild writes a and c, not b.
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles([]*portrait.Profile{prof("a"), prof("c")}) })
	for cur := p.next; ; {
		q := follow(t, db, cur, 2)
		if q.next == cur {
			break
		}
		apply(q)
		cur = q.next
	}
	var ids []string
	for id := range index {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if !reflect.DeepEqual(ids, []string{"a", "c"}) {
		t.Errorf("a follower across the reset holds %v, want [a c]", ids)
	}
}

// Rows older than DefaultChangesKept are pruned by a later commit; a cursor
// older than what is kept is refused with ECONFLICT, a newer one works.
func TestProfileChangesPrunedCursor(t *testing.T) {
	db := openTest(t)
	now := t0
	db.Now = func() time.Time { return now }
	var ps []*portrait.Profile
	for i := range pruneEvery - 1 {
		ps = append(ps, prof(fmt.Sprintf("old%05d", i)))
	}
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles(ps) })
	mid := follow(t, db, -1, 0).next
	now = t0.Add(DefaultChangesKept + time.Minute)
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles([]*portrait.Profile{prof("new1"), prof("new2")}) })
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM profile_changes`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows kept (%v), want the 2 recent ones", n, err)
	}
	if _, _, _, err := db.ProfileChanges(context.Background(), 0, 10); portrait.ErrorCode(err) != portrait.ECONFLICT {
		t.Errorf("a cursor from before the pruned rows: %v, want %s", err, portrait.ECONFLICT)
	}
	if p := follow(t, db, mid, 10); !reflect.DeepEqual(p.changed, []string{"new1", "new2"}) {
		t.Errorf("a cursor at the pruned end: %+v", p)
	}
}

// Two DB values on one database (two processor nodes) committing state
// at once: the feed's seqs are dense and every commit's ids are together.
func TestProfileChangesAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	nodes := []*DB{openURL(t, url), openURL(t, url)}
	done := make(chan error, 2)
	for n, db := range nodes {
		go func() {
			for i := range 20 {
				tx, _ := db.BeginState(context.Background())
				ps := []*portrait.Profile{prof(fmt.Sprintf("n%d-%02d-a", n, i)), prof(fmt.Sprintf("n%d-%02d-b", n, i))}
				if err := tx.PutProfiles(ps); err != nil {
					done <- err
					return
				}
				if err := tx.Commit(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range nodes {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rows, err := nodes[0].pool.Query(context.Background(), `SELECT seq, profile_id FROM profile_changes ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := int64(0)
	var prev string
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			t.Fatal(err)
		}
		i++
		if seq != i {
			t.Fatalf("feed seq %d at row %d", seq, i)
		}
		if i%2 == 0 && id[:len(id)-1] != prev[:len(prev)-1] {
			t.Errorf("a commit's ids are apart: %s then %s", prev, id)
		}
		prev = id
	}
	if i != 80 {
		t.Errorf("%d rows, want 80", i)
	}
}

// A follower of the feed sleeping on Appended is woken by another node's
// state commit.
func TestAppendedWakesFollowersOnStateCommits(t *testing.T) {
	url := pgtest.URL(t)
	writer, follower := openURL(t, url), openURL(t, url)
	select {
	case <-follower.Appended():
	case <-time.After(20 * time.Second):
		t.Fatal("the listener never started")
	}
	woken := follower.Appended()
	commitState(t, writer, func(tx profile.StateTx) error { return tx.PutProfile(prof("a")) })
	select {
	case <-woken:
	case <-time.After(20 * time.Second):
		t.Fatal("the follower was not woken by the commit")
	}
}

// A configured retention replaces the default: with ChangesKept at ten
// minutes, rows eleven minutes old are pruned by the next prune.
func TestProfileChangesRetentionIsConfigurable(t *testing.T) {
	db := openTest(t)
	db.ChangesKept = 10 * time.Minute
	now := t0
	db.Now = func() time.Time { return now }
	var ps []*portrait.Profile
	for i := range pruneEvery - 1 {
		ps = append(ps, prof(fmt.Sprintf("old%05d", i)))
	}
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles(ps) })
	now = t0.Add(11 * time.Minute)
	commitState(t, db, func(tx profile.StateTx) error { return tx.PutProfiles([]*portrait.Profile{prof("new1"), prof("new2")}) })
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM profile_changes`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows kept (%v) with a 10-minute retention after 11 minutes, want the 2 recent ones", n, err)
	}
}
