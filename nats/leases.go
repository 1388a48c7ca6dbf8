package nats

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/portrait-cdp/portrait"
)

// Partitions are shared out among processor nodes with leases in a
// JetStream key-value bucket: a node holds partition p while the key
// "p.<p>" names it. Keys expire with the bucket's TTL unless renewed, so a
// node that dies (kill -9) loses its partitions within one TTL and the
// others take them; compare-and-set on the key's revision makes sure two
// nodes never both believe they hold one. Each live node also keeps a
// "node.<name>" key, so that nodes can count each other and each takes
// its share (a node holding more than its share gives the extra back).

func leaseBucket(stream string) string { return stream + "_leases" }

func partitionKey(p int) string { return "p." + strconv.Itoa(p) }

// Serve consumes the partitions this node holds, taking its share of them
// and renewing its leases every ttl/3, until ctx ends; then it stops its
// consumers and gives its leases back. node names this process uniquely
// among the stream's processors.
func (b *Bus) Serve(ctx context.Context, node string, ttl time.Duration, handle func(ctx context.Context, p int, events []*portrait.Event) error) error {
	return b.ServeTaking(ctx, node, ttl, nil, handle)
}

// ServeTaking is Serve with take run each time this node takes a
// partition, before the partition's consumer starts (retried until it
// succeeds or the partition is given up): where a node taking a partition
// over finishes what its predecessor left (partitioned application). The
// contexts of take and of handle carry the partition lease's revision
// (PartitionTerm), larger for every new holder: the term that fences a
// holder that lost the partition.
func (b *Bus) ServeTaking(ctx context.Context, node string, ttl time.Duration, take func(ctx context.Context, p int) error, handle func(ctx context.Context, p int, events []*portrait.Event) error) error {
	if node == "" || strings.ContainsAny(node, ". *>") {
		return portrait.Errorf(portrait.EINVALID, "node name %q: letters, digits, - and _ only", node)
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	kv, err := b.leases(ctx, ttl)
	if err != nil {
		return err
	}
	s := &server{b: b, kv: kv, node: node, take: take, handle: handle, held: map[int]*held{}}
	defer s.stopAll()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		s.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// leases opens the lease bucket. Its TTL is the lease time of every key in
// it, so every node of a stream must use the same one (serve's --lease-ttl).
func (b *Bus) leases(ctx context.Context, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      leaseBucket(b.cfg.Stream),
		Description: "Portrait partition and named leases",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot open the lease bucket: %v", err)
	}
	return kv, nil
}

type held struct {
	rev    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

type server struct {
	b      *Bus
	kv     jetstream.KeyValue
	node   string
	take   func(ctx context.Context, p int) error
	handle func(ctx context.Context, p int, events []*portrait.Event) error

	mu   sync.Mutex
	held map[int]*held
}

// heldPartitions lists the partitions this node holds now (for metrics and tests).
func (s *server) heldPartitions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []int
	for p := range s.held {
		ps = append(ps, p)
	}
	return ps
}

// round renews what is held, gives back what is beyond this node's share
// and takes free partitions up to it.
func (s *server) round(ctx context.Context) {
	log := s.b.cfg.Log
	if _, err := s.kv.Put(ctx, "node."+s.node, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		log.Warn("bus lease heartbeat failed", "node", s.node, "err", err)
	}
	for p, h := range s.snapshot() {
		rev, err := s.kv.Update(ctx, partitionKey(p), []byte(s.node), h.rev)
		if err != nil {
			// Lost (expired and taken, or unreachable long enough): stop
			// consuming it at once; another node may hold it now.
			log.Warn("bus partition lease lost", "node", s.node, "partition", p, "err", err)
			s.stop(p)
			continue
		}
		s.mu.Lock()
		h.rev = rev
		s.mu.Unlock()
	}
	nodes := 1
	if keys, err := s.kv.Keys(ctx); err == nil {
		n := 0
		for _, k := range keys {
			if strings.HasPrefix(k, "node.") {
				n++
			}
		}
		nodes = max(n, 1)
	}
	parts := s.b.cfg.Partitions
	share := (parts + nodes - 1) / nodes
	for _, p := range s.heldPartitions() {
		if len(s.heldPartitions()) <= share {
			break
		}
		s.release(ctx, p)
	}
	for p := 0; p < parts && len(s.heldPartitions()) < share; p++ {
		if s.holds(p) {
			continue
		}
		rev, err := s.kv.Create(ctx, partitionKey(p), []byte(s.node))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				log.Warn("bus lease not taken", "node", s.node, "partition", p, "err", err)
			}
			continue
		}
		s.start(ctx, p, rev)
	}
}

func (s *server) snapshot() map[int]*held {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[int]*held, len(s.held))
	for p, h := range s.held {
		m[p] = h
	}
	return m
}

func (s *server) holds(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[p] != nil
}

// termKey is the context key of PartitionTerm.
type termKey struct{}

// PartitionTerm is the revision of the lease under which the consumer
// whose handler got ctx holds its partition (0: none), see ServeTaking.
func PartitionTerm(ctx context.Context) uint64 {
	v, _ := ctx.Value(termKey{}).(uint64)
	return v
}

func (s *server) start(ctx context.Context, p int, rev uint64) {
	cctx, cancel := context.WithCancel(context.WithValue(ctx, termKey{}, rev))
	h := &held{rev: rev, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.held[p] = h
	s.mu.Unlock()
	s.b.cfg.Log.Info("bus partition taken", "node", s.node, "partition", p)
	go func() {
		defer close(h.done)
		for backoff := 100 * time.Millisecond; s.take != nil; backoff = min(2*backoff, 5*time.Second) {
			err := s.take(cctx, p)
			if err == nil {
				break
			}
			if cctx.Err() != nil {
				return
			}
			s.b.cfg.Log.Warn("bus partition not ready; retrying", "node", s.node, "partition", p, "err", err)
			sleep(cctx, backoff)
		}
		err := s.b.Consume(cctx, p, func(ctx context.Context, events []*portrait.Event) error {
			return s.handle(ctx, p, events)
		})
		if err != nil {
			s.b.cfg.Log.Error("bus consumer stopped", "node", s.node, "partition", p, "err", err)
		}
	}()
}

// stop ends partition p's consumer and waits for it.
func (s *server) stop(p int) *held {
	s.mu.Lock()
	h := s.held[p]
	delete(s.held, p)
	s.mu.Unlock()
	if h != nil {
		h.cancel()
		<-h.done
	}
	return h
}

// release stops p and deletes its lease, if it is still this node's.
func (s *server) release(ctx context.Context, p int) {
	if h := s.stop(p); h != nil {
		if err := s.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(h.rev)); err != nil {
			s.b.cfg.Log.Warn("bus lease not given back: it expires", "node", s.node, "partition", p, "err", err)
		}
	}
}

func (s *server) stopAll() {
	// The caller's context is over; giving the leases back still needs one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range s.heldPartitions() {
		s.release(ctx, p)
	}
	if err := s.kv.Delete(ctx, "node."+s.node); err != nil {
		s.b.cfg.Log.Warn("bus node key not removed: it expires", "node", s.node, "err", err)
	}
}

// Owners reads which node holds each partition now (for operators and
// tests); a partition missing from the map is free.
func (b *Bus) Owners(ctx context.Context) (map[int]string, error) {
	kv, err := b.js.KeyValue(ctx, leaseBucket(b.cfg.Stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return map[int]string{}, nil
	}
	if err != nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the leases: %v", err)
	}
	out := map[int]string{}
	for p := 0; p < b.cfg.Partitions; p++ {
		e, err := kv.Get(ctx, partitionKey(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the leases: %v", err)
		}
		out[p] = string(e.Value())
	}
	return out, nil
}

// HoldLease runs fn while this node holds the named lease (key name in the
// lease bucket: "applier", "jobs"), so that across all nodes at most one
// runs it at a time. It tries to take the lease every ttl/3 while another
// node holds it; once taken it renews it every ttl/3 with compare-and-set
// on the key's revision. A renewal that fails (the lease expired and was
// taken, or NATS did not answer within ttl/3) cancels fn's context at once,
// before the key can have expired; fn then gets a fresh call, with a fresh
// context, the next time this node takes the lease. When ctx ends, fn is
// cancelled and waited for and the lease given back, so another node takes
// it without waiting for the TTL.
//
// fn is told the lease's revision when it was taken: a number that grows
// with every holder, for a store that wants to refuse a stale holder's
// writes (a fencing token).
func (b *Bus) HoldLease(ctx context.Context, name, node string, ttl time.Duration, fn func(ctx context.Context, revision uint64)) error {
	if name == "" || strings.ContainsAny(name, " *>") || strings.HasPrefix(name, "p.") || strings.HasPrefix(name, "node.") {
		return portrait.Errorf(portrait.EINVALID, "lease name %q: letters, digits, - and _ only, not p.* or node.*", name)
	}
	if node == "" || strings.ContainsAny(node, ". *>") {
		return portrait.Errorf(portrait.EINVALID, "node name %q: letters, digits, - and _ only", node)
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	kv, err := b.leases(ctx, ttl)
	if err != nil {
		return err
	}
	log := b.cfg.Log
	var (
		rev    uint64
		cancel context.CancelFunc
		done   chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel, done = nil, nil
		}
	}
	defer func() {
		stop()
		if rev != 0 {
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer dcancel()
			if err := kv.Delete(dctx, name, jetstream.LastRevision(rev)); err != nil {
				log.Warn("lease not given back: it expires", "lease", name, "node", node, "err", err)
			}
		}
	}()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		// Each call is bounded by ttl/3, so a holder that cannot reach
		// NATS stops before its lease can have expired elsewhere.
		cctx, ccancel := context.WithTimeout(ctx, ttl/3)
		if rev != 0 {
			r, err := kv.Update(cctx, name, []byte(node), rev)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("lease lost", "lease", name, "node", node, "err", err)
				}
				rev = 0
				stop()
			} else {
				rev = r
			}
		} else if r, err := kv.Create(cctx, name, []byte(node)); err == nil {
			rev = r
			log.Info("lease taken", "lease", name, "node", node, "revision", r)
			fctx, fcancel := context.WithCancel(ctx)
			cancel, done = fcancel, make(chan struct{})
			go func(done chan struct{}, r uint64) {
				defer close(done)
				fn(fctx, r)
			}(done, r)
		} else if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			log.Warn("lease not taken", "lease", name, "node", node, "err", err)
		}
		ccancel()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// LeaseHolder names the node holding the named lease ("" when free).
func (b *Bus) LeaseHolder(ctx context.Context, name string) (string, error) {
	kv, err := b.js.KeyValue(ctx, leaseBucket(b.cfg.Stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", nil
	}
	if err != nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the leases: %v", err)
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the leases: %v", err)
	}
	return string(e.Value()), nil
}

// LeaseFence names what lease revisions are counted in: the lease bucket,
// as created (its name and creation time). A bucket deleted and created
// again counts revisions from 1 anew, so a store fencing appliers by
// revision (profile.Fenced) keeps its terms per fence.
func (b *Bus) LeaseFence(ctx context.Context) (string, error) {
	kv, err := b.js.KeyValue(ctx, leaseBucket(b.cfg.Stream))
	if err != nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the lease bucket: %v", err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "cannot read the lease bucket: %v", err)
	}
	created := time.Time{}
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok && s.StreamInfo() != nil {
		created = s.StreamInfo().Created
	}
	return st.Bucket() + "@" + strconv.FormatInt(created.UnixNano(), 10), nil
}
