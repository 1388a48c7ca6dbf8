package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

// A buffered state transaction answers ProfileEventSeqs from what is
// committed plus what it recorded, without writing: the answers must be
// those of a transaction that writes as it goes.
func TestBufferedProfileEventSeqsMatchDirect(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	open := func() *sqlite.DB {
		db, err := sqlite.Open(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	pids := []string{"p1", "p2", "p3", "p4", "p5"}
	seq := int64(0)
	for round := range 30 {
		ta, err := a.BeginState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := b.BeginState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Identity(portrait.Identifier{Type: "user_id", Value: "x"}); err != nil { // makes tb direct
			t.Fatal(err)
		}
		for range 20 {
			p, q := pids[rng.IntN(len(pids))], pids[rng.IntN(len(pids))]
			switch rng.IntN(6) {
			case 0, 1, 2:
				seq++
				e := &portrait.Event{Seq: seq, MessageID: fmt.Sprintf("m%d", seq), Timestamp: time.Unix(seq, 0)}
				both(t, ta, tb, func(tx profile.StateTx) error { return tx.AddProfileEvent(p, e) })
			case 3:
				both(t, ta, tb, func(tx profile.StateTx) error { return tx.MoveProfileEvents(p, q) })
			case 4:
				both(t, ta, tb, func(tx profile.StateTx) error { return tx.DeleteProfileEvents(p) })
			case 5:
				sa, err := ta.ProfileEventSeqs(p)
				if err != nil {
					t.Fatal(err)
				}
				sb, err := tb.ProfileEventSeqs(p)
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(sa)
				slices.Sort(sb)
				if !reflect.DeepEqual(sa, sb) {
					t.Fatalf("round %d, profile %s: buffered %v, direct %v", round, p, sa, sb)
				}
			}
		}
		if err := ta.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := tb.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
}

func both(t *testing.T, a, b profile.StateTx, f func(profile.StateTx) error) {
	t.Helper()
	if err := f(a); err != nil {
		t.Fatal(err)
	}
	if err := f(b); err != nil {
		t.Fatal(err)
	}
}
