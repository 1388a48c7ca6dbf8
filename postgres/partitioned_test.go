package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// crossPartitionEvents are people whose anonymous browsing is on one
// partition and whose identified events and alias (anonymous id → user
// id) are on another, in shuffled arrival order, plus others' events on
// two more partitions: a merge across partitions for every person.
func crossPartitionEvents(people, others int) map[int][]*portrait.Event {
	rng := rand.New(rand.NewPCG(17, 4))
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := map[int][]*portrait.Event{}
	n := 0
	ev := func(part int, typ, user, anon, prev string, at time.Duration, traits string) {
		n++
		e := &portrait.Event{MessageID: fmt.Sprintf("m-%05d", n), Type: typ, Source: "web", UserID: user, AnonymousID: anon, PreviousID: prev,
			Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
		if typ == portrait.EventTrack {
			e.Name = "Viewed"
		}
		if traits != "" {
			e.Traits = json.RawMessage(traits)
		}
		out[part] = append(out[part], e)
	}
	for k := range people {
		anon, user := fmt.Sprintf("a-%d", k), fmt.Sprintf("u-%d", k)
		for i := range 6 {
			ev(0, portrait.EventTrack, "", anon, "", time.Duration(k*100+i*10)*time.Second, "")
		}
		// The alias lands in the middle of the browsing: some anonymous
		// events are later, so their node finds the merged profile.
		ev(1, portrait.EventAlias, user, anon, anon, time.Duration(k*100+25)*time.Second, "")
		ev(1, portrait.EventIdentify, user, "", "", time.Duration(k*100+5)*time.Second, fmt.Sprintf(`{"email":"p%d@example.com","plan":"gold"}`, k))
		ev(1, portrait.EventTrack, user, "", "", time.Duration(k*100+70)*time.Second, "")
	}
	for i := range others {
		part := 2 + i%2
		ev(part, portrait.EventTrack, fmt.Sprintf("o-%d", i%40), "", "", time.Duration(i)*time.Second, "")
	}
	for _, evs := range out {
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	}
	return out
}

// profilesOf is every profile of db without its write times.
func profilesOf(t *testing.T, db *DB) map[string]*portrait.Profile {
	t.Helper()
	ctx := context.Background()
	out := map[string]*portrait.Profile{}
	after := ""
	for {
		ids, err := db.ProfileIDs(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			return out
		}
		for _, id := range ids {
			pr, err := db.Profile(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			pr.UpdatedAt = time.Time{}
			out[id] = pr
		}
		after = ids[len(ids)-1]
	}
}

// Two processors (two nodes: their own connections) apply four partitions
// at once, two each, while the events arrive; the profiles equal those of
// one processor applying the same log, every event is applied once, and
// no merge is journalled twice.
func TestPartitionedApplicationMatchesOneApplier(t *testing.T) {
	url := pgtest.URL(t)
	db1, db2 := openDB(t, url), openDB(t, url)
	procs := []*profile.Processor{profile.NewProcessor(db1, identity.DefaultRules()), profile.NewProcessor(db2, identity.DefaultRules())}
	for _, p := range procs {
		p.Partitioned, p.BatchSize = true, 7 // small batches: many meetings
	}
	checkPartitioned(t, []*DB{db1, db2, db1, db2}, []*profile.Processor{procs[0], procs[1], procs[0], procs[1]})
}

// One node applies its four partitions at once, each with a processor of
// its own forked from the node's (as serve --apply partitioned does) over
// the node's one store: the partitions' batches meet in the store as two
// nodes' do, and the profiles still equal one applier's, each event
// applied once, each person's merge across partitions made once.
func TestPartitionProcessorsOfOneNodeMatchOneApplier(t *testing.T) {
	db := openDB(t, pgtest.URL(t))
	node := profile.NewProcessor(db, identity.DefaultRules())
	node.Partitioned, node.BatchSize = true, 7
	procs := make([]*profile.Processor, 4)
	for part := range procs {
		procs[part] = node.Fork()
	}
	checkPartitioned(t, []*DB{db, db, db, db}, procs)
}

func openDB(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkPartitioned applies crossPartitionEvents' four partitions at once,
// partition p through dbs[p] with procs[p], while they arrive, and
// compares the result with one processor applying the same log.
func checkPartitioned(t *testing.T, dbs []*DB, procs []*profile.Processor) {
	t.Helper()
	ctx := context.Background()
	db1 := dbs[0]
	open := func(u string) *DB { return openDB(t, u) }
	byPart := crossPartitionEvents(20, 600)
	fence := "test@1"
	for part := range 4 {
		if err := db1.ClaimTerm(ctx, profile.Term{Fence: fmt.Sprintf("%s/p.%d", fence, part), N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Each partition is appended in slices, and its node applies after
	// each slice, as a consumer does.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for part := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, proc := dbs[part], procs[part]
			term := profile.Term{Fence: fmt.Sprintf("%s/p.%d", fence, part), N: 1}
			evs := byPart[part]
			for i := 0; i < len(evs); i += 11 {
				if _, err := db.AppendPartition(ctx, part, evs[i:min(i+11, len(evs))]); err != nil {
					errs <- err
					return
				}
				if _, err := proc.ApplyPartition(ctx, term, part); err != nil {
					errs <- fmt.Errorf("partition %d: %w", part, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last, _ := db1.LastSeq(ctx)
	if got, err := db1.AppliedThrough(ctx, 4); err != nil || got != last {
		t.Fatalf("applied through %d (%v), want the log's end %d", got, err, last)
	}
	var pe, merges, dupMerges int
	db1.pool.QueryRow(ctx, `SELECT count(*) FROM profile_events`).Scan(&pe)
	db1.pool.QueryRow(ctx, `SELECT count(*) FROM merges WHERE kind = 'merged'`).Scan(&merges)
	// A profile may be merged away again after a replay re-created it
	// (journalled with the replay's reason); the same decision, by the
	// same event, twice would be a batch applied twice.
	db1.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM merges GROUP BY kind, into_id, from_id, message_id, reason HAVING count(*) > 1) x`).Scan(&dupMerges)
	if int64(pe) != last {
		t.Errorf("profile_events has %d rows for %d logged events: each must be applied once", pe, last)
	}
	if merges < 20 || dupMerges != 0 {
		t.Errorf("%d merges journalled, %d journalled twice; want at least one per person, none twice", merges, dupMerges)
	}
	var claims int
	db1.pool.QueryRow(ctx, `SELECT count(*) FROM identities WHERE profile_id = ''`).Scan(&claims)
	if claims != 0 {
		t.Errorf("%d identity claims left without an owner", claims)
	}

	// One processor over the same log, in log order.
	ref := open(pgtest.URL(t))
	var all []*portrait.Event
	rows, err := db1.pool.Query(ctx, `SELECT seq FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for rows.Next() {
		var s int64
		rows.Scan(&s)
		seqs = append(seqs, s)
	}
	if all, err = db1.EventsBySeq(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Append(ctx, all, nil); err != nil {
		t.Fatal(err)
	}
	one := profile.NewProcessor(ref, identity.DefaultRules())
	if err := one.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	got, want := profilesOf(t, db1), profilesOf(t, ref)
	if len(want) != 20+40 {
		t.Errorf("one applier made %d profiles, want 60 (a test set-up fault)", len(want))
	}
	if len(got) != len(want) {
		t.Errorf("partitioned: %d profiles, one applier: %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("profile %s differs:\npartitioned: %s\none applier: %s", id, gj, wj)
		}
	}
}

// The version of the retractions and splits moves with every write of
// either, in the writer's transaction: committed, it moves; rolled back,
// it does not; a reset of the derived state moves it too.
func TestDecisionsVersionMovesWithTheirWrites(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, pgtest.URL(t))
	version := func() int64 {
		t.Helper()
		v, err := db.DecisionsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	write := func(commit bool, f func(tx profile.StateTx) error) {
		t.Helper()
		tx, err := db.BeginState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(tx); err != nil {
			t.Fatal(err)
		}
		if !commit {
			tx.Rollback()
			return
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	v0 := version()
	write(false, func(tx profile.StateTx) error { return tx.PutRetracted("m-1") })
	if v := version(); v != v0 {
		t.Fatalf("a rolled back retraction moved the version: %d → %d", v0, v)
	}
	write(true, func(tx profile.StateTx) error { return tx.PutRetracted("m-1") })
	v1 := version()
	if v1 == v0 {
		t.Fatal("a committed retraction did not move the version")
	}
	write(true, func(tx profile.StateTx) error { return tx.DeleteSplit("m-2") })
	v2 := version()
	if v2 == v1 {
		t.Fatal("a split's deletion did not move the version")
	}
	if err := db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	if v := version(); v == v2 {
		t.Fatal("a reset of the derived state did not move the version")
	}
}

// WaitWriters (the settle of partitioned application) waits for a state
// transaction in flight on another connection, here one holding its
// locks, and returns once it has committed; one begun after the call is
// not waited for.
func TestWaitWritersWaitsForTransactionsInFlight(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	db, other := openDB(t, url), openDB(t, url)
	tx, err := other.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.(profile.Locker).LockIdentities([]portrait.Identifier{{Type: "user_id", Value: "w1"}}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := db.WaitWriters(short); err == nil {
		t.Fatal("WaitWriters returned while a transaction holding locks was in flight")
	}
	done := make(chan error, 1)
	go func() { done <- db.WaitWriters(ctx) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned before the commit: %v", err)
	default:
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting 5 s after the commit")
	}
}

// The reads of a replay's closure a round at a time (ProfileEventSeqsOf,
// IdentitiesOf) answer what the one-by-one reads answer, also inside a
// transaction that has merged profiles (its own writes, which its reads
// do not see, carried by the transaction).
func TestManyAtOnceReadsAnswerAsOneByOne(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, pgtest.URL(t))
	var all []*portrait.Event
	for _, evs := range crossPartitionEvents(5, 20) {
		all = append(all, evs...)
	}
	if _, err := db.Append(ctx, all, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastSeq(ctx)
	if err := profile.NewProcessor(db, identity.DefaultRules()).CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	var pids []string
	for id := range profilesOf(t, db) {
		pids = append(pids, id)
	}
	sort.Strings(pids)
	pids = append(pids, "p_none")
	var ids []portrait.Identifier
	for k := range 5 {
		ids = append(ids, portrait.Identifier{Type: "anonymous_id", Value: fmt.Sprintf("a-%d", k)},
			portrait.Identifier{Type: "user_id", Value: fmt.Sprintf("u-%d", k)}, portrait.Identifier{Type: "email", Value: fmt.Sprintf("p%d@example.com", k)})
	}
	ids = append(ids, portrait.Identifier{Type: "user_id", Value: "nobody"})
	tx0, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx0.PutRefused(profile.Ref{ID: ids[1], ProfileID: pids[0]}); err != nil {
		t.Fatal(err)
	}
	if err := tx0.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	st := tx.(*stateTx)
	if _, err := st.LockIdentities(ids[:1]); err != nil { // a locked batch, as partitioned application's
		t.Fatal(err)
	}
	// The transaction's own merge: pids[1]'s rows now pids[2]'s.
	if err := st.MoveProfileEvents(pids[1], pids[2]); err != nil {
		t.Fatal(err)
	}
	compare := func() {
		t.Helper()
		many, err := st.ProfileEventSeqsOf(pids)
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			one, err := st.ProfileEventSeqs(pid)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(many[pid], one) && (len(one) > 0 || len(many[pid]) > 0) {
				t.Errorf("seqs of %s: at once %v, one by one %v", pid, many[pid], one)
			}
		}
		owners, refused, err := st.IdentitiesOf(ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			o, err := st.Identity(id)
			if err != nil {
				t.Fatal(err)
			}
			r, err := st.Refused(id)
			if err != nil {
				t.Fatal(err)
			}
			if owners[id] != o || !reflect.DeepEqual(refused[id], r) && (len(r) > 0 || len(refused[id]) > 0) {
				t.Errorf("%v: at once owner %q refused %v, one by one %q %v", id, owners[id], refused[id], o, r)
			}
		}
	}
	compare()
	if len(st.pe[pids[2]].stored) < 2 {
		t.Fatalf("the transaction's merge is not carried: %+v", st.pe[pids[2]])
	}
}
