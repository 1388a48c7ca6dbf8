package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Concurrent callers are committed in groups, never two commits at once,
// every item exactly once, and each caller returns after its own commit
// with that commit's error.
func TestGroupsAndAcknowledges(t *testing.T) {
	var g Group[int]
	g.Max = 7
	var mu sync.Mutex
	committed := map[int]bool{}
	running, groups, largest := 0, 0, 0
	commit := func(_ context.Context, items []int) error {
		mu.Lock()
		running++
		if running > 1 {
			t.Error("two commits at once")
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // a commit takes time: others queue
		mu.Lock()
		defer mu.Unlock()
		running--
		groups++
		largest = max(largest, len(items))
		for _, i := range items {
			if committed[i] {
				t.Errorf("item %d committed twice", i)
			}
			committed[i] = true
		}
		if items[0]%13 == 0 {
			return errors.New("failed")
		}
		return nil
	}
	const n = 400
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Do(context.Background(), i, commit)
			mu.Lock()
			defer mu.Unlock()
			if !committed[i] {
				t.Errorf("item %d acknowledged before its commit", i)
			}
			_ = err
		}()
	}
	wg.Wait()
	if len(committed) != n {
		t.Errorf("%d of %d committed", len(committed), n)
	}
	if groups >= n || largest > 7 {
		t.Errorf("%d groups for %d items, largest %d (max 7)", groups, n, largest)
	}
}

// A commit's error reaches every caller of its group, and the next group
// is committed apart.
func TestErrorPerGroup(t *testing.T) {
	var g Group[string]
	boom := errors.New("boom")
	if err := g.Do(context.Background(), "a", func(context.Context, []string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("got %v", err)
	}
	if err := g.Do(context.Background(), "b", func(context.Context, []string) error { return nil }); err != nil {
		t.Errorf("got %v", err)
	}
}
