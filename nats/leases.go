package nats

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/portrait-cdp/portrait"
	leasing "github.com/portrait-cdp/portrait/internal/lease"
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
//
// Renewal runs on its own, apart from sharing out: giving a partition back
// waits for its consumer to finish the batch in hand, which under load
// takes seconds, and renewals waiting behind it let the node's other
// leases expire (issue 17: leases flapped with a 3 s TTL under load). A
// partition being given back stays held, and renewed, until its consumer
// has stopped, so no other node consumes it meanwhile.
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
	s := &server{b: b, kv: kv, node: node, ttl: ttl, take: take, handle: handle, held: map[int]*held{}}
	// The renewals outlive ctx: stopAll waits for the consumers to finish
	// while their partitions are still this node's.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		s.renewLoop(rctx)
	}()
	defer func() {
		rcancel()
		<-renewed
	}()
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

// LeasesLost counts the leases this bus's nodes held and lost (not given
// back): a lease that flaps under load shows here (bench nodes prints it).
func (b *Bus) LeasesLost() int64 { return b.lost.Load() }

// lease is one held key: its revision, and until when this node may act
// on it without a renewal.
type lease struct {
	rev  uint64
	safe time.Time
}

// safeUntil: a key written by a request sent at sent expires no sooner
// than sent+ttl (the server stamps it on arrival); a sixth of the TTL is
// kept in hand for the holder to stop.
func safeUntil(sent time.Time, ttl time.Duration) time.Time {
	return leasing.SafeUntil(sent, ttl)
}

// renew tries once to extend l, whose key holds node's name. It says
// false when the lease is lost: another node's now, or not renewed within
// its safe time. A renewal that fails otherwise (NATS slow or unreachable)
// leaves the lease held while its safe time lasts, to be tried again: with
// each try bounded by a third of the TTL, one slow round trip on a loaded
// machine dropped a lease that had seconds left (issue 17).
func renew(ctx context.Context, kv jetstream.KeyValue, key, node string, ttl time.Duration, l *lease) (bool, error) {
	if !time.Now().Before(l.safe) {
		return false, errLapsed
	}
	cctx, cancel := context.WithDeadline(ctx, l.safe)
	defer cancel()
	sent := time.Now()
	rev, held, fresh, err := update(cctx, kv, key, node, l.rev)
	if held {
		l.rev = rev
	}
	if fresh {
		l.safe = safeUntil(sent, ttl)
	}
	if err != nil && !time.Now().Before(l.safe) {
		return false, err
	}
	return held, err
}

// update writes node's name to key again, compared against revision rev:
// the new revision and whether the key is still node's (held) and by this
// write (fresh). A write whose answer was lost (its caller gave up) may
// have been stored all the same: the key then names this node at a
// revision only this node wrote, held but not fresh (the safe time is not
// moved; the next renewal, with the right revision, moves it). Any other
// failure (NATS slow or unreachable) is held with an error: unknown.
func update(ctx context.Context, kv jetstream.KeyValue, key, node string, rev uint64) (uint64, bool, bool, error) {
	r, err := kv.Update(ctx, key, []byte(node), rev)
	if err == nil {
		return r, true, true, nil
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		if e, gerr := kv.Get(ctx, key); gerr == nil && e.Operation() == jetstream.KeyValuePut && string(e.Value()) == node && e.Revision() > rev {
			return e.Revision(), true, false, nil
		}
		return rev, false, false, err
	}
	return rev, true, false, err
}

var errLapsed = errors.New("not renewed within the lease time")

// The states of a partition this node has taken.
const (
	consuming = iota // held and consumed
	releasing        // its consumer is stopping; held until it has, then given back
	lost             // no longer this node's; its consumer is stopping
)

type held struct {
	lease
	state    int
	renewing bool // a renewal is in flight
	cancel   context.CancelFunc
	done     chan struct{}
}

type server struct {
	b      *Bus
	kv     jetstream.KeyValue
	node   string
	ttl    time.Duration
	take   func(ctx context.Context, p int) error
	handle func(ctx context.Context, p int, events []*portrait.Event) error

	mu           sync.Mutex
	held         map[int]*held
	nodeRenewing atomic.Bool
}

// heldPartitions lists the partitions this node consumes now, not counting
// those it is giving back (for sharing out and tests).
func (s *server) heldPartitions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []int
	for p, h := range s.held {
		if h.state == consuming {
			ps = append(ps, p)
		}
	}
	return ps
}

// renewLoop renews the node key and every held partition every ttl/3
// until ctx ends, then waits for the renewals in flight.
func (s *server) renewLoop(ctx context.Context) {
	var inflight sync.WaitGroup
	defer inflight.Wait()
	tick := time.NewTicker(s.ttl / 3)
	defer tick.Stop()
	for {
		s.renewAll(ctx, &inflight)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// renewAll starts a renewal of the node key and of each partition's lease
// that has none in flight, all at once and without waiting for them: one
// after the other, eight partitions of round trips on a loaded NATS could
// outlast the lease, and a renewal that takes long (it may, up to its
// lease's safe time) must not hold up the others' next one.
func (s *server) renewAll(ctx context.Context, inflight *sync.WaitGroup) {
	log := s.b.cfg.Log
	if s.nodeRenewing.CompareAndSwap(false, true) {
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer s.nodeRenewing.Store(false)
			cctx, cancel := context.WithTimeout(ctx, s.ttl/2)
			defer cancel()
			if _, err := s.kv.Put(cctx, "node."+s.node, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil && ctx.Err() == nil {
				log.Warn("bus lease heartbeat failed", "node", s.node, "err", err)
			}
		}()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, h := range s.held {
		if h.state == lost || h.renewing {
			continue
		}
		h.renewing = true
		l := h.lease
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			ok, err := renew(ctx, s.kv, partitionKey(p), s.node, s.ttl, &l)
			s.mu.Lock()
			defer s.mu.Unlock()
			h.renewing = false
			if h.state == lost {
				return
			}
			if ok {
				h.lease = l
				if err != nil && ctx.Err() == nil {
					log.Info("bus partition lease not renewed yet: retrying", "node", s.node, "partition", p, "err", err)
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			// Lost (expired and taken, or unreachable for too long):
			// its consumer stops at once; another node may hold it now.
			log.Warn("bus partition lease lost", "node", s.node, "partition", p, "err", err)
			s.b.lost.Add(1)
			h.state = lost
			h.cancel()
		}()
	}
}

// round gives back what is beyond this node's share and takes free
// partitions up to it; partitions whose consumer has stopped after a
// release are given back, and lost ones forgotten.
func (s *server) round(ctx context.Context) {
	log := s.b.cfg.Log
	s.settle(ctx)
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
	if mine := s.heldPartitions(); len(mine) > share {
		for _, p := range mine[share:] {
			s.release(p)
		}
	}
	for p := 0; p < parts && len(s.heldPartitions()) < share; p++ {
		if s.taken(p) {
			continue
		}
		sent := time.Now()
		rev, err := s.kv.Create(ctx, partitionKey(p), []byte(s.node))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				log.Warn("bus lease not taken", "node", s.node, "partition", p, "err", err)
			}
			continue
		}
		s.start(ctx, p, lease{rev: rev, safe: safeUntil(sent, s.ttl)})
	}
}

// settle gives back the partitions whose consumers have stopped after a
// release, and forgets lost ones whose consumers have.
func (s *server) settle(ctx context.Context) {
	s.mu.Lock()
	var back []int
	for p, h := range s.held {
		select {
		case <-h.done:
		default:
			continue
		}
		switch h.state {
		case releasing:
			back = append(back, p)
		case lost:
			delete(s.held, p)
		}
	}
	s.mu.Unlock()
	for _, p := range back {
		s.giveBack(ctx, p)
	}
}

// renewing says whether a partition's renewal is in flight.
func (s *server) renewing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.held {
		if h.renewing {
			return true
		}
	}
	return false
}

// taken says whether p is this node's in any state (a partition lost or
// being given back is not taken again until its consumer has stopped);
// p -1: whether any is.
func (s *server) taken(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p < 0 {
		return len(s.held) > 0
	}
	return s.held[p] != nil
}

// termKey is the context key of PartitionTerm.
type termKey struct{}

// PartitionTerm is the revision of the lease under which the consumer
// whose handler got ctx holds its partition (0: none), see ServeTaking.
// It is the revision at which the partition was taken: renewals move the
// lease's revision but not the term.
func PartitionTerm(ctx context.Context) uint64 {
	v, _ := ctx.Value(termKey{}).(uint64)
	return v
}

func (s *server) start(ctx context.Context, p int, l lease) {
	cctx, cancel := context.WithCancel(context.WithValue(ctx, termKey{}, l.rev))
	h := &held{lease: l, state: consuming, cancel: cancel, done: make(chan struct{})}
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

// release stops p's consumer without waiting for it; the lease is given
// back once it has stopped (settle).
func (s *server) release(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[p]; h != nil && h.state == consuming {
		h.state = releasing
		h.cancel()
	}
}

// giveBack deletes p's lease, if it is still this node's.
func (s *server) giveBack(ctx context.Context, p int) {
	s.mu.Lock()
	h := s.held[p]
	if h != nil && h.renewing {
		// Its revision is about to change: the next round gives it back.
		s.mu.Unlock()
		return
	}
	delete(s.held, p)
	var state int
	var rev uint64
	if h != nil {
		state, rev = h.state, h.rev
	}
	s.mu.Unlock()
	if h == nil || state != releasing {
		return
	}
	if err := s.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(rev)); err != nil {
		s.b.cfg.Log.Warn("bus lease not given back: it expires", "node", s.node, "partition", p, "err", err)
	}
}

// stopAll stops every consumer, waits for them (their leases still
// renewed), and gives the leases back.
func (s *server) stopAll() {
	// The caller's context is over; giving the leases back still needs one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	var ps []int
	var dones []chan struct{}
	for p, h := range s.held {
		if h.state == consuming {
			h.state = releasing
			h.cancel()
		}
		ps = append(ps, p)
		dones = append(dones, h.done)
	}
	s.mu.Unlock()
	for _, d := range dones {
		<-d
	}
	// giveBack leaves a partition whose renewal is in flight (its
	// revision is about to change) for another try.
	for ctx.Err() == nil && s.taken(-1) {
		for _, p := range ps {
			s.giveBack(ctx, p)
		}
		if s.renewing() {
			time.Sleep(10 * time.Millisecond)
		}
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
// runs it at a time; the loop is the store's too (lease.Holder.Hold). It
// tries to take the lease every ttl/3 while another node holds it; once
// taken it renews it every ttl/3 with compare-and-set on the key's
// revision. A renewal may take until the lease's safe time (5/6 of the TTL
// after the last renewal that succeeded was sent: the key cannot expire
// sooner), so a holder that cannot reach NATS stops before its lease can
// have expired elsewhere, and one slow round trip does not end a term; a
// renewal refused (another node's key) or none done by the safe time
// cancels fn's context at once — a timer wakes the loop at the safe time,
// so a connection failing fast does not leave fn running until the next
// tick. fn then gets a fresh call, with a fresh context, the next time
// this node takes the lease. When ctx ends, fn is cancelled and waited for
// and the lease given back, so another node takes it without waiting for
// the TTL.
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
	h := &leasing.Holder{Lease: &keyLease{kv: kv, key: name, node: node}, Name: name, Node: node, TTL: ttl, Log: b.cfg.Log,
		Lost: func() { b.lost.Add(1) }}
	return h.Hold(ctx, fn)
}

// keyLease is one named lease of the bucket, for leasing.Holder: a term is
// the revision at which the key was created; rev is the revision of this
// node's last write, which the next renewal compares against.
type keyLease struct {
	kv   jetstream.KeyValue
	key  string
	node string
	rev  uint64
}

func (l *keyLease) Acquire(ctx context.Context) (uint64, error) {
	r, err := l.kv.Create(ctx, l.key, []byte(l.node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	l.rev = r
	return r, nil
}

func (l *keyLease) Renew(ctx context.Context, _ uint64) (bool, bool, error) {
	rev, held, fresh, err := update(ctx, l.kv, l.key, l.node, l.rev)
	if held {
		l.rev = rev
	}
	return held, fresh, err
}

func (l *keyLease) Release(ctx context.Context, _ uint64) error {
	return l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
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

// CheckLease is the fence of a named lease held in the bucket: nil while
// the key names node at a revision no older than term (the revision at
// which node took it: renewals only raise it), ECONFLICT once it names
// another node or is gone (expired, given back). A node that lost the
// lease and took it again passes with its older term too: harmless, as
// HoldLease waits for the older term's fn to return before the new one's
// starts. A job asks it right
// before its point of no return, so a holder paused past its lease, whose
// own timers have not fired yet, does nothing. Unlike the store's
// CheckLease it cannot ask for time left: the key's expiry is the
// server's, counted from a write whose time only the server knows.
func (b *Bus) CheckLease(ctx context.Context, name, node string, term uint64) error {
	kv, err := b.js.KeyValue(ctx, leaseBucket(b.cfg.Stream))
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return portrait.Errorf(portrait.EUNAVAILABLE, "cannot check the lease: %v", err)
	}
	var e jetstream.KeyValueEntry
	if err == nil {
		e, err = kv.Get(ctx, name)
	}
	switch {
	case err == nil && string(e.Value()) == node && e.Revision() >= term:
		return nil
	case err == nil, errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return portrait.Errorf(portrait.ECONFLICT, "lease %q term %d of node %s is over: another node holds it, or will", name, term, node)
	default:
		return portrait.Errorf(portrait.EUNAVAILABLE, "cannot check the lease: %v", err)
	}
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
