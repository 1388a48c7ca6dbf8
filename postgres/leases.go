package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

// Leases in the database (migration 050): over a shared store without a
// bus, the nodes elect the one that runs the scheduled jobs here, as they
// do in the bus's lease bucket when there is one (nats.Bus.HoldLease, the
// same contract). Expiry is the database's clock; a holder measures its
// own safe time on its monotonic clock from the moment it sent the renewal,
// so it stops before the row can expire, whatever the clocks say. A
// holder that could not stop in time (a process paused longer than the
// lease) is refused by CheckLease, which the jobs ask before each run.

// TakeLease takes the named lease for holder when it is free, expired or
// given back, until ttl from now on the database's clock. It returns the
// new term, larger than every earlier holder's, or 0 when another node
// holds it.
func (db *DB) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (uint64, error) {
	var term int64
	err := db.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, term, expires)
		VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, term = leases.term + 1, expires = excluded.expires
		WHERE leases.expires <= clock_timestamp()
		RETURNING term`, name, holder, ttl.Microseconds()).Scan(&term)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, portrait.Wrap(err, "cannot take the lease")
	}
	return uint64(term), nil
}

// RenewLease extends holder's term of the lease to ttl from now. It says
// false when the term is over: expired (a renewal never revives a lapsed
// term, which another node may be taking) or taken by another.
func (db *DB) RenewLease(ctx context.Context, name, holder string, term uint64, ttl time.Duration) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE leases SET expires = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE name = $1 AND holder = $2 AND term = $3 AND expires > clock_timestamp()`, name, holder, int64(term), ttl.Microseconds())
	if err != nil {
		return true, portrait.Wrap(err, "cannot renew the lease")
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease gives holder's term back, so another node takes the lease
// without waiting for it to expire. The row stays, with its term.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string, term uint64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE leases SET expires = '-infinity' WHERE name = $1 AND holder = $2 AND term = $3`, name, holder, int64(term)); err != nil {
		return portrait.Wrap(err, "cannot give the lease back")
	}
	return nil
}

// CheckLease is the fence: nil when holder's term of the lease still has
// at least margin to run on the database's clock, ECONFLICT otherwise. A
// job asks it right before it runs, so a holder that was paused past its
// lease (and whose own timers have not fired yet) runs nothing.
func (db *DB) CheckLease(ctx context.Context, name, holder string, term uint64, margin time.Duration) error {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT expires > clock_timestamp() + $4 * interval '1 microsecond' FROM leases
		WHERE name = $1 AND holder = $2 AND term = $3`, name, holder, int64(term), margin.Microseconds()).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !ok {
		return portrait.Errorf(portrait.ECONFLICT, "lease %q term %d of node %s is over: another node holds it, or will", name, term, holder)
	}
	if err != nil {
		return portrait.Wrap(err, "cannot check the lease")
	}
	return nil
}

// LeaseHolder names the node holding the named lease ("" when free).
func (db *DB) LeaseHolder(ctx context.Context, name string) (string, error) {
	var holder string
	err := db.pool.QueryRow(ctx, `SELECT holder FROM leases WHERE name = $1 AND expires > clock_timestamp()`, name).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", portrait.Wrap(err, "cannot read the leases")
	}
	return holder, nil
}

// HoldLease runs fn while node holds the named lease, as
// nats.Bus.HoldLease does in the bus: it tries to take the lease every
// ttl/3 while another node holds it; once taken it renews it every ttl/3.
// A renewal may take until the term's safe time (5/6 of the TTL after the
// last renewal that succeeded was sent: the row cannot expire sooner); a
// renewal refused (the term over) or not done by then cancels fn's context
// at once, at the safe time at the latest. When ctx ends, fn is cancelled and waited for and the lease
// given back. fn is told its term, the fencing token for CheckLease.
func (db *DB) HoldLease(ctx context.Context, name, node string, ttl time.Duration, fn func(ctx context.Context, term uint64)) error {
	if name == "" || node == "" {
		return portrait.Errorf(portrait.EINVALID, "a lease needs a name and a node")
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	log := db.Log
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
			if err := db.ReleaseLease(rctx, name, node, term); err != nil {
				log.Warn("lease not given back: it expires", "lease", name, "node", node, "err", err)
			}
		}
	}()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		if term != 0 {
			ok, err := func() (bool, error) {
				if !time.Now().Before(safe) {
					return false, errLeaseLapsed
				}
				rctx, rcancel := context.WithDeadline(ctx, safe)
				defer rcancel()
				sent := time.Now()
				ok, err := db.RenewLease(rctx, name, node, term, ttl)
				if err == nil && ok {
					safe = sent.Add(ttl - ttl/6)
				}
				if err != nil && !time.Now().Before(safe) {
					return false, err
				}
				return ok, err
			}()
			switch {
			case ctx.Err() != nil:
			case !ok:
				log.Warn("lease lost", "lease", name, "node", node, "term", term, "err", err)
				term = 0
				stop()
			case err != nil:
				log.Info("lease not renewed yet: retrying", "lease", name, "node", node, "err", err)
			}
		} else {
			tctx, tcancel := context.WithTimeout(ctx, ttl/3)
			sent := time.Now()
			t, err := db.TakeLease(tctx, name, node, ttl)
			tcancel()
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("lease not taken", "lease", name, "node", node, "err", err)
			case t != 0:
				term, safe = t, sent.Add(ttl-ttl/6)
				log.Info("lease taken", "lease", name, "node", node, "term", t)
				fctx, fcancel := context.WithCancel(ctx)
				cancel, done = fcancel, make(chan struct{})
				go func(done chan struct{}, t uint64) {
					defer close(done)
					fn(fctx, t)
				}(done, t)
			}
		}
		// While held, wake at the safe time too: a renewal failing fast
		// (the database unreachable) must not leave fn running until the
		// next tick, after the row may have expired.
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

var errLeaseLapsed = errors.New("not renewed within the lease time")
