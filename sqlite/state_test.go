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
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
)

// A buffered state transaction answers ProfileEventSeqs from what is
// committed plus what it recorded, without writing: the answers must be
// those of the writes themselves, kept here in a plain map (profile →
// seqs) that each round's writes change and that carries over commits.
func TestBufferedProfileEventSeqsMatchWrites(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	db, err := sqlite.Open(ctx, sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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
	if err := db.WaitState(ctx); err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d answers checked", checked)
	}
}
