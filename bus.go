package portrait

import (
	"context"
	"hash/fnv"
	"sync"
)

// Bus carries acknowledged events from the nodes that ingest them to the
// nodes that apply them, when Portrait runs on more than one node
// (docs/scaling.md). An event is acknowledged to its sender once Publish
// has returned: the bus stores it durably. The stream is split into
// partitions by PartitionKey, so that the events of one identifier are
// consumed in order by one consumer at a time.
//
// Delivery is at least once: a batch whose handler fails, or whose consumer
// dies before acknowledging it, is delivered again, from its first event.
// That is safe because applying an event is idempotent by its message id.
type Bus interface {
	// Partitions is the number of partitions; fixed for the life of a
	// stream.
	Partitions() int
	// Publish stores events durably, each in the partition of its key, and
	// returns once every one is stored. Publishing an event again (the same
	// MessageID) within the bus's duplicate window stores nothing new, so a
	// client's retry after a lost acknowledgement is harmless.
	Publish(ctx context.Context, events []*Event) error
	// Consume delivers partition p's events in publication order to handle,
	// in batches, until ctx ends or handle's error cannot be retried. A
	// batch is acknowledged when handle returns nil; on an error it is
	// delivered again. The caller must hold the partition (see Leases):
	// two consumers of one partition would split its order.
	Consume(ctx context.Context, p int, handle func(context.Context, []*Event) error) error
}

// PartitionKey is the identifier an event is partitioned by: the user id
// when the event has one, else the anonymous id (alias: the previous id's
// partition is not followed; the merge it causes is resolved in the store,
// see docs/scaling.md), else the group id.
func PartitionKey(e *Event) string {
	switch {
	case e.UserID != "":
		return "u:" + e.UserID
	case e.AnonymousID != "":
		return "a:" + e.AnonymousID
	default:
		return "g:" + e.GroupID
	}
}

// Partition maps an event to one of n partitions (FNV-1a of its key).
func Partition(e *Event, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(PartitionKey(e)))
	return int(h.Sum32() % uint32(n))
}

// Router partitions events as Partition does, except that an event with
// only an anonymous id goes to the partition of the user id that anonymous
// id was last seen with (an event carrying both, or an alias naming it as
// previous id), when the router has seen one. Partition sends a person's
// anonymous browsing to one partition and their identified events to
// another: under partitioned application two consumers then write the same
// profile, and each batch waits on the other's row locks of the person's
// anonymous id (docs/scaling.md, "Routing a person to one partition").
// Routing is only a hint: application is correct whatever the partition,
// so the router is per ingest node, learns from the events that node
// publishes, and forgets the oldest half when full.
type Router struct {
	mu       sync.Mutex
	cur, old map[string]string // anonymous id -> user id
	max      int
}

// DefaultRouterSize is how many anonymous ids a Router holds in each of
// its two generations: about 10 MB each with ids of 20-40 bytes.
const DefaultRouterSize = 1 << 17

// NewRouter returns a router holding up to 2×size anonymous ids (size <= 0:
// DefaultRouterSize).
func NewRouter(size int) *Router {
	if size <= 0 {
		size = DefaultRouterSize
	}
	return &Router{cur: map[string]string{}, max: size}
}

// Key is the key e is partitioned by: PartitionKey's, except for an
// anonymous-only event whose anonymous id the router has seen with a user
// id. It learns from e first.
func (r *Router) Key(e *Event) string {
	switch {
	case e.UserID != "":
		if e.AnonymousID != "" {
			r.learn(e.AnonymousID, e.UserID)
		}
		if e.Type == EventAlias && e.PreviousID != "" {
			r.learn(e.PreviousID, e.UserID)
		}
	case e.AnonymousID != "":
		if u := r.lookup(e.AnonymousID); u != "" {
			return "u:" + u
		}
	}
	return PartitionKey(e)
}

// Partition maps e to one of n partitions by Key.
func (r *Router) Partition(e *Event, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(r.Key(e)))
	return int(h.Sum32() % uint32(n))
}

func (r *Router) learn(anon, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.cur[anon]; ok && u == user {
		return
	}
	if len(r.cur) >= r.max {
		r.old, r.cur = r.cur, make(map[string]string, r.max)
	}
	r.cur[anon] = user
}

func (r *Router) lookup(anon string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.cur[anon]; ok {
		return u
	}
	u, ok := r.old[anon]
	if ok { // still in use: keep it through the next turnover
		if len(r.cur) >= r.max {
			r.old, r.cur = r.cur, make(map[string]string, r.max)
		}
		r.cur[anon] = u
	}
	return u
}
