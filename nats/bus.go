// Package nats is Portrait's event bus on NATS JetStream (portrait.Bus): the
// stream ingest nodes append to and processor nodes consume, partitioned by
// identifier, with durable consumers and partition leases so that each
// partition is applied in order by one node at a time (docs/scaling.md).
package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/portrait-cdp/portrait"
)

// DefaultPartitions is the partition count of a stream when none is given:
// the one default, used by Config and by the serve and bench flags, so that
// two nodes configured without a count agree on it.
const DefaultPartitions = 8

// Config says which stream to use and how.
type Config struct {
	URL    string // nats://host:port
	Stream string // stream name; its subjects are <Stream>.p.<partition>
	// Partitions splits the stream; fixed when the stream is created (a
	// different number for an existing stream is an error).
	Partitions int
	Replicas   int // JetStream replicas of the stream (1 on one server)
	// DuplicateWindow is how long a message id is remembered: a publish
	// of the same event within it stores nothing (a client's retry).
	DuplicateWindow time.Duration
	// Batch is the most events a consumer takes at once, and the most it
	// has unacknowledged (which is what keeps a partition in order).
	Batch int
	// AckWait is how long a delivered batch may stay unacknowledged before
	// JetStream delivers it again (its consumer died).
	AckWait time.Duration
	Log     *slog.Logger
}

func (c *Config) defaults() error {
	if c.Stream == "" || strings.ContainsAny(c.Stream, ". *>") {
		return portrait.Errorf(portrait.EINVALID, "bus stream name %q: letters, digits, - and _ only", c.Stream)
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Bus is a portrait.Bus on JetStream.
type Bus struct {
	cfg    Config
	nc     *natsgo.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	lost   atomic.Int64 // leases lost (LeasesLost)
	// router sends an anonymous-only event to the partition of the user
	// id its anonymous id was seen with (portrait.Router), so that one
	// person's events meet in one partition.
	router *portrait.Router
}

var _ portrait.Bus = (*Bus)(nil)

// Open connects and creates the stream if it does not exist. The stream
// keeps events until every partition's consumer has acknowledged them
// (work-queue retention: the store, not the bus, is the history).
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	nc, err := natsgo.Connect(cfg.URL, natsgo.Name("portrait"), natsgo.MaxReconnects(-1), natsgo.RetryOnFailedConnect(false))
	if err != nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot reach NATS at %s: %v", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, portrait.Wrap(err, "cannot use JetStream")
	}
	b := &Bus{cfg: cfg, nc: nc, js: js, router: portrait.NewRouter(0)}
	// The stream lists one subject per partition, so its configuration
	// says how many partitions it has (stream metadata needs NATS 2.10).
	subjects := make([]string, cfg.Partitions)
	for p := range subjects {
		subjects[p] = b.subject(p)
	}
	st, err := js.Stream(ctx, cfg.Stream)
	switch {
	case err == nil:
		if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, subjects) {
			nc.Close()
			return nil, portrait.Errorf(portrait.ECONFLICT, "stream %s has %d partitions, not %d: the partition count is fixed when a stream is created", cfg.Stream, len(got), cfg.Partitions)
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Stream,
			Description: "Portrait events, partitioned by identifier",
			Subjects:    subjects,
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.DuplicateWindow,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			nc.Close()
			return nil, portrait.Wrap(err, "cannot create stream "+cfg.Stream)
		}
		if err != nil { // another node created it meanwhile
			if st, err = js.Stream(ctx, cfg.Stream); err != nil {
				nc.Close()
				return nil, portrait.Wrap(err, "cannot open stream "+cfg.Stream)
			}
		}
	default:
		nc.Close()
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot open stream %s: %v", cfg.Stream, err)
	}
	b.stream = st
	return b, nil
}

// Close drains the connection: what was published is flushed.
func (b *Bus) Close() error {
	if err := b.nc.Drain(); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
		return err
	}
	return nil
}

// Partitions implements portrait.Bus.
func (b *Bus) Partitions() int { return b.cfg.Partitions }

func (b *Bus) subject(p int) string { return b.cfg.Stream + ".p." + strconv.Itoa(p) }

// Publish implements portrait.Bus: the events go out asynchronously, then
// every acknowledgement is awaited, so a batch costs one round trip, not
// one per event.
func (b *Bus) Publish(ctx context.Context, events []*portrait.Event) error {
	_, err := b.PublishCounted(ctx, events)
	return err
}

// PublishCounted is Publish, also saying how many of the events the stream
// already had (the same message id within the duplicate window: a
// client's retry), so that the tracking API can report them as duplicates.
func (b *Bus) PublishCounted(ctx context.Context, events []*portrait.Event) (duplicates int, err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return 0, portrait.Wrap(err, "cannot encode event "+e.MessageID)
		}
		m := natsgo.NewMsg(b.subject(b.router.Partition(e, b.cfg.Partitions)))
		m.Data = data
		f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgID(e.MessageID))
		if err != nil {
			return 0, portrait.Errorf(portrait.EUNAVAILABLE, "cannot publish to the bus: %v", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack != nil && ack.Duplicate {
				duplicates++
			}
		case err := <-f.Err():
			return 0, portrait.Errorf(portrait.EUNAVAILABLE, "the bus did not store an event: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return duplicates, nil
}

// Consume implements portrait.Bus with the partition's durable pull
// consumer, read through one long-lived pull subscription (jetstream's
// Messages iterator) for as long as ctx lasts: a pull request is always
// waiting on the server, so an event published while the partition is idle
// is delivered at once. With Fetch, each request expired and a new one was
// sent; an event the server handed to a request the client had just given
// up on (its timer runs from the send, the server's from the receipt) went
// to an inbox nobody read and waited the whole ack wait (issue 17).
//
// Flow control and order: the server lets at most one batch (Batch
// messages) be delivered and unacknowledged, so a slow handler stops
// delivery instead of filling memory, and what a dead consumer held is
// delivered again after the ack wait before anything later (two batches
// outstanding came back out of order on NATS 2.9). The next batch arrives
// while the last one's acknowledgements are confirmed. A failed batch is
// given back (Nak) together with anything buffered after it, in stream
// order, and the subscription opened anew, so it is delivered again first.
func (b *Bus) Consume(ctx context.Context, p int, handle func(context.Context, []*portrait.Event) error) error {
	if p < 0 || p >= b.cfg.Partitions {
		return portrait.Errorf(portrait.EINVALID, "partition %d: the stream has %d", p, b.cfg.Partitions)
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       fmt.Sprintf("%s-p%d", b.cfg.Stream, p),
		FilterSubject: b.subject(p),
		AckPolicy:     jetstream.AckExplicitPolicy, // work-queue streams require it
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.Batch,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return portrait.Errorf(portrait.EUNAVAILABLE, "cannot create the consumer of partition %d: %v", p, err)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.consume(ctx, p, cons, handle)
		switch {
		case err == nil || ctx.Err() != nil:
		case portrait.ErrorCode(err) == portrait.EINVALID:
			return err
		default:
			b.cfg.Log.Warn("bus batch failed: delivered again", "partition", p, "err", err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return nil
}

// pullExpiry is how long one pull request waits on the server; the
// iterator renews it before it runs out, so it only bounds how long a
// request of a vanished client lingers there.
const pullExpiry = 30 * time.Second

// gatherWait is how long a batch waits for one more message already on its
// way before it is handed over: long enough to take what the server has
// sent in one go, short enough not to delay an idle partition's event.
const gatherWait = 2 * time.Millisecond

// consume reads one subscription until ctx ends (nil) or a batch fails
// (its error); either way what was delivered and not handled is given
// back before it returns.
func (b *Bus) consume(ctx context.Context, p int, cons jetstream.Consumer, handle func(context.Context, []*portrait.Event) error) (err error) {
	it, err := cons.Messages(jetstream.PullMaxMessages(b.cfg.Batch), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		sleep(ctx, time.Second)
		return portrait.Errorf(portrait.EUNAVAILABLE, "cannot subscribe to partition %d: %v", p, err)
	}
	var msgs []jetstream.Msg // taken, not handled yet
	defer func() {
		// Draining takes what the server sent before it saw the
		// unsubscription; each is given back at once (Nak), after the
		// unhandled batch, so the partition's next consumer gets them in
		// order now rather than after the ack wait.
		it.Drain()
		for {
			m, err := it.Next(jetstream.NextMaxWait(ackTimeout))
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					it.Stop()
				}
				break
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			return
		}
		// The server still lists this subscription's pull request as
		// waiting until it next reviews its requests; a message given back
		// meanwhile is handed to that request and, its inbox gone, is lost
		// until the ack wait (NATS 2.9: the redelivery is dropped when the
		// only waiting request has no interest). Reading the consumer's
		// info makes the server review them and drop ours first.
		ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		if _, err := cons.Info(ictx); err != nil {
			b.cfg.Log.Warn("bus consumer not reviewed before giving events back: some may wait the ack wait", "partition", p, "err", err)
		}
		icancel()
		for _, m := range msgs {
			m.Nak()
		}
	}()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return portrait.Errorf(portrait.EUNAVAILABLE, "the subscription to partition %d ended: %v", p, err)
			}
			b.cfg.Log.Warn("bus subscription interrupted", "partition", p, "err", err)
			continue
		}
		msgs = append(msgs[:0], m)
		for len(msgs) < b.cfg.Batch {
			m, err := it.Next(jetstream.NextMaxWait(gatherWait))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		events := make([]*portrait.Event, 0, len(msgs))
		kept := msgs[:0]
		for _, m := range msgs {
			e := new(portrait.Event)
			if err := json.Unmarshal(m.Data(), e); err != nil {
				// Only Portrait publishes here; a message that is not an
				// event cannot become one by being delivered again.
				b.cfg.Log.Error("bus message is not an event: terminated", "partition", p, "subject", m.Subject(), "err", err)
				m.Term()
				continue
			}
			kept = append(kept, m)
			events = append(events, e)
		}
		msgs = kept
		if len(events) == 0 {
			continue
		}
		if err := handle(ctx, events); err != nil {
			// Delivered again, from the first: nothing of the batch is
			// acknowledged (the deferred give-back Naks it, then what
			// was buffered after it).
			if portrait.ErrorCode(err) == portrait.EINVALID {
				return err
			}
			return portrait.Errorf(portrait.ErrorCode(err), "%d events: %s", len(events), portrait.ErrorMessage(err))
		}
		// Each message is acknowledged; the last one with DoubleAck, which
		// waits for the server to have it (acknowledgements are handled in
		// order), so the batch is not delivered again once the next is taken.
		// The store has committed the batch, so it is acknowledged even if
		// ctx ended meanwhile (the partition given up or lost during the
		// commit): skipped, its last event would sit delivered and
		// unacknowledged for the whole ack wait, and every node waiting for
		// the stream to drain with it (issue 17: two nodes applying five
		// times slower than one, a partition released mid-batch at start).
		for _, m := range msgs[:len(msgs)-1] {
			m.Ack()
		}
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		if err := msgs[len(msgs)-1].DoubleAck(actx); err != nil {
			b.cfg.Log.Warn("bus acknowledgement not confirmed: the batch may be delivered again", "partition", p, "err", err)
		}
		acancel()
		msgs = msgs[:0]
		if ctx.Err() != nil {
			return nil
		}
	}
}

// ackTimeout bounds the wait for the server to confirm a batch's
// acknowledgement.
const ackTimeout = 5 * time.Second

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Pending reports how many events wait in the stream (published, not yet
// acknowledged by their partition's consumer).
func (b *Bus) Pending(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the stream: %v", err)
	}
	return info.State.Msgs, nil
}

// Delete removes the stream and its leases (tests, and decommissioning).
func (b *Bus) Delete(ctx context.Context) error {
	if err := b.js.DeleteStream(ctx, b.cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	if err := b.js.DeleteKeyValue(ctx, leaseBucket(b.cfg.Stream)); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	return nil
}

// ConsumerStats sums, over the partitions' consumers, the events delivered
// and not yet acknowledged and the events delivered more than once (for
// operators and benchmarks: a delivered event that nobody acknowledges
// waits AckWait before it is delivered again).
func (b *Bus) ConsumerStats(ctx context.Context) (ackPending, redelivered int, err error) {
	for p := 0; p < b.cfg.Partitions; p++ {
		c, err := b.stream.Consumer(ctx, fmt.Sprintf("%s-p%d", b.cfg.Stream, p))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, portrait.Errorf(portrait.EUNAVAILABLE, "cannot read consumer %d: %v", p, err)
		}
		info := c.CachedInfo()
		ackPending += info.NumAckPending
		redelivered += info.NumRedelivered
	}
	return ackPending, redelivered, nil
}
