package profile_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
)

// flakyStore makes some commits fail the way a background commit fails:
// Commit returns at once, the writes are lost, and the failure is reported
// later, by WaitState or the next BeginState.
type flakyStore struct {
	*sqlite.DB
	commits, every int
	pending        error
	failed         int
}

type flakyTx struct {
	profile.StateTx
	s *flakyStore
}

func (s *flakyStore) BeginState(ctx context.Context) (profile.StateTx, error) {
	if err := s.pending; err != nil {
		s.pending = nil
		return nil, err
	}
	tx, err := s.DB.BeginState(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyTx{tx, s}, nil
}

func (s *flakyStore) WaitState(ctx context.Context) error {
	if err := s.pending; err != nil {
		s.pending = nil
		return err
	}
	return s.DB.WaitState(ctx)
}

func (t *flakyTx) Commit() error {
	t.s.commits++
	if t.s.commits%t.s.every == 0 {
		t.s.failed++
		t.s.pending = portrait.Errorf(portrait.EUNAVAILABLE, "disk full (commit %d)", t.s.commits)
		return t.StateTx.Rollback()
	}
	return t.StateTx.Commit()
}

// A commit that fails after the processor went on to the next batch must
// not lose or double-count anything: the processor goes back to what was
// committed and applies the log again from there.
func TestFailedBackgroundCommitIsReapplied(t *testing.T) {
	t.Run("caches", func(t *testing.T) { testBackgroundCommits(t, 3, 0) })
	// Tiny caches make the processor read identities and profiles back
	// while a commit is in flight and its own writes are still buffered.
	t.Run("tiny caches", func(t *testing.T) { testBackgroundCommits(t, 3, 2) })
	t.Run("tiny caches, no failures", func(t *testing.T) { testBackgroundCommits(t, 1<<30, 2) })
}

func testBackgroundCommits(t *testing.T, every, cache int) {
	events := genEvents(rapidless(300))
	sorted := append([]*portrait.Event(nil), events...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key().Less(sorted[j].Key()) })
	a := open(t, filepath.Join(t.TempDir(), "a"))
	a.send(t, sorted...)
	a.catchUp(t)
	want := a.snapshot(t)

	b := open(t, filepath.Join(t.TempDir(), "b"))
	fs := &flakyStore{DB: b.db, every: every}
	b.proc.Store = fs
	b.proc.BatchSize = 7
	if cache > 0 {
		b.proc.MaxProfiles, b.proc.MaxIdentities = cache, cache
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	ctx := context.Background()
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(40))
		b.send(t, events[:n]...)
		events = events[n:]
		last, _ := b.db.LastSeq(ctx)
		var err error
		for try := 0; try < 50; try++ {
			if err = b.proc.CatchUp(ctx, last); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if fs.failed == 0 && every < 1000 {
		t.Fatal("no commit failed: the test tests nothing")
	}
	got := b.snapshot(t)
	if !reflect.DeepEqual(got, want) {
		for id, w := range want {
			if got[id] != w {
				t.Logf("profile %s\n want %s\n  got %s", id, w, got[id])
			}
		}
		t.Fatalf("after %d failed commits the profiles differ (%d vs %d)", fs.failed, len(got), len(want))
	}
}
