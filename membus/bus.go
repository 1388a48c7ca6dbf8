// Package membus is the in-process portrait.Bus: one process that ingests
// and applies its own events (--role all without NATS), and tests of code
// that consumes a bus. It keeps events in memory: durability is the
// caller's (the embedded store's log), not the bus's.
package membus

import (
	"context"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Bus is an in-memory portrait.Bus.
type Bus struct {
	Now    portrait.Clock
	Window time.Duration // how long a message id is remembered (default 10 min)
	Batch  int           // most events per delivery (default 500)

	mu      sync.Mutex
	parts   [][]*portrait.Event
	offset  []int // first event not yet acknowledged, per partition
	seen    map[string]time.Time
	order   []string // message ids in the order seen, to forget the oldest
	changed chan struct{}
}

var _ portrait.Bus = (*Bus)(nil)

// New makes a bus of n partitions.
func New(n int) *Bus {
	if n < 1 {
		n = 1
	}
	return &Bus{Now: time.Now, parts: make([][]*portrait.Event, n), offset: make([]int, n), seen: map[string]time.Time{}, changed: make(chan struct{})}
}

// Partitions implements portrait.Bus.
func (b *Bus) Partitions() int { return len(b.parts) }

// Publish implements portrait.Bus.
func (b *Bus) Publish(ctx context.Context, events []*portrait.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.Now()
	window := b.Window
	if window <= 0 {
		window = 10 * time.Minute
	}
	for len(b.order) > 0 && now.Sub(b.seen[b.order[0]]) > window {
		delete(b.seen, b.order[0])
		b.order = b.order[1:]
	}
	added := false
	for _, e := range events {
		if _, dup := b.seen[e.MessageID]; dup {
			continue
		}
		b.seen[e.MessageID] = now
		b.order = append(b.order, e.MessageID)
		p := portrait.Partition(e, len(b.parts))
		b.parts[p] = append(b.parts[p], e)
		added = true
	}
	if added {
		close(b.changed)
		b.changed = make(chan struct{})
	}
	return nil
}

// Consume implements portrait.Bus. Acknowledged events are dropped.
func (b *Bus) Consume(ctx context.Context, p int, handle func(context.Context, []*portrait.Event) error) error {
	if p < 0 || p >= len(b.parts) {
		return portrait.Errorf(portrait.EINVALID, "partition %d: the bus has %d", p, len(b.parts))
	}
	max := b.Batch
	if max <= 0 {
		max = 500
	}
	backoff := 10 * time.Millisecond
	for {
		b.mu.Lock()
		pending := b.parts[p][b.offset[p]:]
		batch := pending[:min(len(pending), max)]
		changed := b.changed
		b.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		if err := handle(ctx, batch); err != nil {
			if portrait.ErrorCode(err) == portrait.EINVALID {
				return err
			}
			select { // delivered again, from its first event
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		b.mu.Lock()
		b.offset[p] += len(batch)
		if b.offset[p] == len(b.parts[p]) { // all acknowledged: let go of them
			b.parts[p], b.offset[p] = nil, 0
		}
		b.mu.Unlock()
	}
}
