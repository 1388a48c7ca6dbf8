package membus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

func TestOrderRetryAndDuplicates(t *testing.T) {
	b := New(3)
	b.Batch = 7
	var evs []*portrait.Event
	for k := 0; k < 20; k++ {
		for u := 0; u < 10; u++ {
			evs = append(evs, &portrait.Event{MessageID: fmt.Sprintf("u%d-%d", u, k), UserID: fmt.Sprint(u)})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[int][]string{}
	failed := map[int]bool{}
	var wg sync.WaitGroup
	for p := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Consume(ctx, p, func(_ context.Context, batch []*portrait.Event) error {
				mu.Lock()
				defer mu.Unlock()
				if len(got[p]) > 10 && !failed[p] {
					failed[p] = true // one failure per partition: delivered again
					return errors.New("busy")
				}
				for _, e := range batch {
					got[p] = append(got[p], e.MessageID)
				}
				return nil
			})
		}()
	}
	for i := 0; i < len(evs); i += 25 {
		if err := b.Publish(ctx, evs[i:i+25]); err != nil {
			t.Fatal(err)
		}
	}
	b.Publish(ctx, evs[:50]) // a retry: stores nothing
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got[0]) + len(got[1]) + len(got[2])
		mu.Unlock()
		if n >= len(evs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered", n, len(evs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for p := range 3 {
		var want []string
		for _, e := range evs {
			if portrait.Partition(e, 3) == p {
				want = append(want, e.MessageID)
			}
		}
		if !slices.Equal(got[p], want) {
			t.Errorf("partition %d: %v, want %v", p, got[p], want)
		}
		if !failed[p] {
			t.Errorf("partition %d never failed: the retry was not exercised", p)
		}
	}
}

func TestDuplicateWindowForgets(t *testing.T) {
	now := time.Unix(0, 0)
	b := New(1)
	b.Now = func() time.Time { return now }
	b.Window = time.Minute
	e := &portrait.Event{MessageID: "m", UserID: "u"}
	b.Publish(context.Background(), []*portrait.Event{e})
	b.Publish(context.Background(), []*portrait.Event{e})
	now = now.Add(2 * time.Minute)
	b.Publish(context.Background(), []*portrait.Event{e})
	if n := len(b.parts[0]); n != 2 {
		t.Errorf("%d stored: a repeat within the window is dropped, one after it is kept", n)
	}
}
