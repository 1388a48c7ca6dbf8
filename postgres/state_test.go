package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
)

// A state transaction answers ProfileEventSeqs from what is committed plus
// what it recorded, without writing: the answers must be those of the
// writes themselves, kept here in a plain map (profile → seqs) that each
// round's writes change and that carries over commits.
func TestBufferedProfileEventSeqsMatchWrites(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	db := openTest(t)
	pids := []string{"p1", "p2", "p3", "p4", "p5"}
	truth := map[string][]int64{}
	seq := int64(0)
	checked := 0
	for round := range 30 {
		tx, err := db.BeginState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			p, q := pids[rng.IntN(len(pids))], pids[rng.IntN(len(pids))]
			switch rng.IntN(6) {
			case 0, 1, 2:
				seq++
				e := &portrait.Event{Seq: seq, MessageID: fmt.Sprintf("m%d", seq), Timestamp: time.Unix(seq, 0)}
				if err := tx.AddProfileEvent(p, e); err != nil {
					t.Fatal(err)
				}
				truth[p] = append(truth[p], seq)
			case 3:
				if err := tx.MoveProfileEvents(p, q); err != nil {
					t.Fatal(err)
				}
				if p != q {
					truth[q] = append(truth[q], truth[p]...)
					delete(truth, p)
				}
			case 4:
				if err := tx.DeleteProfileEvents(p); err != nil {
					t.Fatal(err)
				}
				delete(truth, p)
			case 5:
				got, err := tx.ProfileEventSeqs(p)
				if err != nil {
					t.Fatal(err)
				}
				want := slices.Clone(truth[p])
				slices.Sort(got)
				slices.Sort(want)
				if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
					t.Fatalf("round %d, profile %s: buffered %v, written %v", round, p, got, want)
				}
				checked++
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d answers checked", checked)
	}
}

// Writes of one key twice in a transaction keep the last, as they would
// row by row (one upsert statement may not name a key twice); a failed
// statement fails the Commit and leaves nothing behind.
func TestStateWritesKeepTheLastAndFailWhole(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	commitState(t, db, func(tx profile.StateTx) error {
		tx.PutIdentity(portrait.Identifier{Type: "email", Value: "a@x"}, "p1", portrait.EventKey{})
		tx.PutIdentity(portrait.Identifier{Type: "email", Value: "a@x"}, "p2", portrait.EventKey{})
		p := prof("p1")
		p.EventCount = 1
		tx.PutProfile(p)
		p2 := prof("p1")
		p2.EventCount = 2
		return tx.PutProfile(p2)
	})
	if p, err := db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: "a@x"}); err == nil || portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a@x belongs to p2, which has no profile: %v %v", p, err)
	}
	if p, err := db.Profile(ctx, "p1"); err != nil || p.EventCount != 2 {
		t.Errorf("p1 %+v %v, want the second write", p, err)
	}
	tx, _ := db.BeginState(ctx)
	tx.PutProfile(prof("p9"))
	// The same merge id twice violates merges' primary key.
	tx.(*stateTx).record(`INSERT INTO merges (id, kind, into_id, at) VALUES (1, 'x', 'p', 0), (1, 'x', 'p', 0)`)
	if err := tx.Commit(); err == nil {
		t.Fatal("a failed statement committed")
	}
	if _, err := db.Profile(ctx, "p9"); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("a failed transaction's profile is there: %v", err)
	}
	if c, _, _, err := db.ProfileChanges(ctx, 0, 100); err != nil || slices.Contains(c, "p9") {
		t.Errorf("a failed transaction is in the feed: %v %v", c, err)
	}
}

// DataVersion changes when another node commits, to the log or the state.
func TestDataVersionSeesOtherNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	v1, err := a.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, []*portrait.Event{event("m1")}, nil); err != nil {
		t.Fatal(err)
	}
	v2, err := a.DataVersion(ctx)
	if err != nil || v2 == v1 {
		t.Fatalf("after another node's append: %q → %q %v", v1, v2, err)
	}
	commitState(t, b, func(tx profile.StateTx) error { return tx.PutProfile(prof("p1")) })
	if v3, err := a.DataVersion(ctx); err != nil || v3 == v2 {
		t.Errorf("after another node's state commit: %q → %q %v", v2, v3, err)
	}
}

// timedStore times the processor's state transactions.
type timedStore struct {
	*DB
	begin, commit time.Duration
}

type timedTx struct {
	profile.StateTx
	s     *timedStore
	start time.Time
}

func (s *timedStore) BeginState(ctx context.Context) (profile.StateTx, error) {
	tx, err := s.DB.BeginState(ctx)
	return &timedTx{tx, s, time.Now()}, err
}

func (t *timedTx) Commit() error {
	start := time.Now()
	err := t.StateTx.Commit()
	t.s.commit += time.Since(start)
	t.s.begin += time.Since(t.start)
	return err
}

// serverCPU sums the CPU time of the PostgreSQL backends serving dbname
// (their process titles name the database), where /proc shows them (a
// server on this machine); ok is false otherwise.
func serverCPU(dbname string) (d time.Duration, ok bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(p + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") || !strings.Contains(string(cmd), " "+dbname+" ") {
			continue
		}
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th, in clock ticks (100 a second).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		d += time.Duration(u+s) * 10 * time.Millisecond
		ok = true
	}
	return d, ok
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLargeStateCommit applies a 40,000-event batch (10,000 customers,
// with traits) in one state transaction and reports how long its Commit
// took (wall time: this machine is shared, read it as an order of
// magnitude) and the whole transaction; it fails only if the profiles are
// not all there.
func TestLargeStateCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("40,000 events")
	}
	ctx := context.Background()
	db := openTest(t)
	const customers, events = 10_000, 40_000
	rng := rand.New(rand.NewPCG(7, 8))
	var evs []*portrait.Event
	for i := range events {
		c := rng.IntN(customers)
		e := &portrait.Event{MessageID: fmt.Sprintf("m%06d", i), Type: "identify", Source: "web",
			UserID: fmt.Sprintf("u%05d", c), AnonymousID: fmt.Sprintf("a%05d", c),
			Timestamp: t0.Add(time.Duration(i) * time.Second), ReceivedAt: t0.Add(time.Duration(i) * time.Second)}
		e.Traits, _ = json.Marshal(map[string]any{"email": fmt.Sprintf("c%05d@example.com", c), "name": fmt.Sprintf("Customer %d", c), "city": "杭州市", "visits": i})
		evs = append(evs, e)
	}
	for i := 0; i < len(evs); i += 5000 {
		if _, err := db.Append(ctx, evs[i:min(i+5000, len(evs))], nil); err != nil {
			t.Fatal(err)
		}
	}
	ts := &timedStore{DB: db}
	p := profile.NewProcessor(ts, identity.DefaultRules().Compile())
	p.BatchSize, p.MaxBatchSize = events, events
	dbname := db.pool.Config().ConnConfig.Database
	scpu, _ := serverCPU(dbname)
	cpu := cpuTime()
	start := time.Now()
	if err := p.CatchUp(ctx, events); err != nil {
		t.Fatal(err)
	}
	wall, cpu := time.Since(start), cpuTime()-cpu
	scpu2, sok := serverCPU(dbname)
	n, err := db.CountProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > customers {
		t.Fatalf("%d profiles for %d customers", n, customers)
	}
	var rows int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM profile_events`).Scan(&rows)
	if rows != events {
		t.Fatalf("%d profile events, want %d", rows, events)
	}
	t.Logf("%d events → %d profiles in one transaction: Commit %v wall, transaction (begin to commit) %v wall; whole batch %v wall, %v CPU of this process",
		events, n, ts.commit.Round(time.Millisecond), ts.begin.Round(time.Millisecond), wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	if sok {
		t.Logf("CPU of the database's PostgreSQL backends over the batch: %v", (scpu2 - scpu).Round(time.Millisecond))
	}
}
