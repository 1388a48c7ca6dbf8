// Package lease is the one loop that holds a named lease among nodes and
// runs a function while it is held: over the bus's key-value bucket
// (nats.Bus.HoldLease) and over the store's leases table
// (postgres.DB.HoldLease), which give it the three operations of Lease.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Lease is one named lease where the nodes keep it.
type Lease interface {
	// Acquire takes the lease if it is free (never held, expired, given
	// back): its term, larger than every earlier holder's, or 0 when
	// another node holds it.
	Acquire(ctx context.Context) (term uint64, err error)
	// Renew extends term's hold to the lease time from now. held false:
	// the term is over (expired, taken by another). fresh says that
	// this call's own write is what is stored, so the lease cannot
	// expire sooner than a lease time after the call was sent; a renewal
	// found stored by an earlier call whose answer was lost is held but
	// not fresh. An error with held true leaves the outcome unknown: the
	// loop tries again while the term's safe time lasts.
	Renew(ctx context.Context, term uint64) (held, fresh bool, err error)
	// Release gives term back, so another node takes it at once.
	Release(ctx context.Context, term uint64) error
}

// Holder holds one lease for one node.
type Holder struct {
	Lease Lease
	Name  string // for the log
	Node  string
	TTL   time.Duration
	Log   *slog.Logger
	// Lost, when set, is called each time a held term is lost (not
	// given back).
	Lost func()
}

// SafeUntil is how long a holder may act on a lease whose last fresh
// renewal (or acquisition) was sent at sent: the lease expires no sooner
// than a lease time after that (the other side stamps it on arrival), and
// a sixth of it is kept in hand for the holder to stop.
func SafeUntil(sent time.Time, ttl time.Duration) time.Time {
	return sent.Add(ttl - ttl/6)
}

// ErrLapsed: the term was not renewed within its safe time.
var ErrLapsed = errors.New("not renewed within the lease time")

// Hold runs fn while the node holds the lease, until ctx ends. It tries to
// take the lease every TTL/3 while another node holds it; once taken it
// renews it every TTL/3. A renewal may take until the term's safe time
// (SafeUntil the last fresh renewal), so one slow round trip does not end
// a term; a renewal refused, or none done by the safe time, cancels fn's
// context at once — a timer wakes the loop at the safe time, so a renewal
// failing fast (the other side unreachable) does not leave fn running
// until the next tick, past the time the lease may have expired. fn gets
// a fresh call, with a fresh context, each time the node takes the lease
// again. When ctx ends, fn is cancelled and waited for, and the lease
// given back. fn is told its term: the fencing token.
func (h *Holder) Hold(ctx context.Context, fn func(ctx context.Context, term uint64)) error {
	ttl := h.TTL
	if ttl < time.Second {
		ttl = time.Second
	}
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	var (
		term   uint64 // 0: not held
		safe   time.Time
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
		if term != 0 {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer rcancel()
			if err := h.Lease.Release(rctx, term); err != nil {
				log.Warn("lease not given back: it expires", "lease", h.Name, "node", h.Node, "err", err)
			}
		}
	}()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		if term != 0 {
			held, err := h.renew(ctx, term, ttl, &safe)
			switch {
			case ctx.Err() != nil:
			case !held:
				log.Warn("lease lost", "lease", h.Name, "node", h.Node, "term", term, "err", err)
				if h.Lost != nil {
					h.Lost()
				}
				term = 0
				stop()
			case err != nil:
				log.Info("lease not renewed yet: retrying", "lease", h.Name, "node", h.Node, "err", err)
			}
		} else {
			actx, acancel := context.WithTimeout(ctx, ttl/3)
			sent := time.Now()
			t, err := h.Lease.Acquire(actx)
			acancel()
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("lease not taken", "lease", h.Name, "node", h.Node, "err", err)
			case err == nil && t != 0:
				term, safe = t, SafeUntil(sent, ttl)
				log.Info("lease taken", "lease", h.Name, "node", h.Node, "term", t)
				fctx, fcancel := context.WithCancel(ctx)
				cancel, done = fcancel, make(chan struct{})
				go func(done chan struct{}, t uint64) {
					defer close(done)
					fn(fctx, t)
				}(done, t)
			}
		}
		var lapse <-chan time.Time
		if term != 0 {
			lapse = time.After(time.Until(safe))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-lapse:
		}
	}
}

// renew tries once to renew term, within its safe time, which it moves on
// a fresh renewal. It says false when the term is over: refused, or not
// renewed by its safe time.
func (h *Holder) renew(ctx context.Context, term uint64, ttl time.Duration, safe *time.Time) (bool, error) {
	if !time.Now().Before(*safe) {
		return false, ErrLapsed
	}
	rctx, cancel := context.WithDeadline(ctx, *safe)
	defer cancel()
	sent := time.Now()
	held, fresh, err := h.Lease.Renew(rctx, term)
	if held && fresh && err == nil {
		*safe = SafeUntil(sent, ttl)
	}
	if err != nil && !time.Now().Before(*safe) {
		return false, err
	}
	return held, err
}
