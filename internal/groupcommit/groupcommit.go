// Package groupcommit commits what several callers hand in at about the
// same time in one transaction: the audit log's records, one per audited
// read, each of which was a synchronous commit of its own (a WAL sync on
// the embedded store, a round trip and a flush on PostgreSQL).
//
// There is no goroutine of its own and no timer: the first caller commits
// at once (an idle server adds no latency), and the callers that arrive
// while a commit is under way queue; when it ends, the first of them
// commits everything queued (up to Max) in one go. Each caller returns
// after the commit that holds its item, with that commit's error.
package groupcommit

import (
	"context"
	"sync"
)

// Group batches items; the zero Group is ready to use.
type Group[T any] struct {
	// Max bounds the items of one commit (0: 256).
	Max int

	mu    sync.Mutex
	queue []*request[T]
	busy  bool
}

type request[T any] struct {
	item T
	err  error
	done chan struct{}
	lead chan struct{} // closed when this request is to commit the next group
}

// Do hands item in and returns once a commit (by commit, called with the
// items of one group in the order they arrived, never concurrently with
// itself for this Group) holding it has ended. The commit runs without the
// caller's cancellation: once queued, an item is written or fails with its
// group, and its caller learns which.
func (g *Group[T]) Do(ctx context.Context, item T, commit func(ctx context.Context, items []T) error) error {
	r := &request[T]{item: item, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	leads := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !leads {
		select {
		case <-r.done:
			return r.err
		case <-r.lead:
		}
	}
	max := g.Max
	if max <= 0 {
		max = 256
	}
	g.mu.Lock()
	n := min(len(g.queue), max)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	items := make([]T, len(group))
	for i, q := range group {
		items[i] = q.item
	}
	err := commit(context.WithoutCancel(ctx), items)
	for _, q := range group {
		q.err = err
		close(q.done)
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	<-r.done // in this group or, if the queue was long, an earlier one
	return r.err
}
