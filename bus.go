package portrait

import (
	"context"
	"hash/fnv"
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
