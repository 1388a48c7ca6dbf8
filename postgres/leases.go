package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/lease"
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

// HoldLease runs fn while node holds the named lease, with the contract of
// nats.Bus.HoldLease (one loop for both: lease.Holder.Hold): it tries to
// take the lease every ttl/3 while another node holds it; once taken it
// renews it every ttl/3. A renewal may take until the term's safe time
// (5/6 of the TTL after the last renewal that succeeded was sent: the row
// cannot expire sooner); a renewal refused (the term over) or not done by
// then cancels fn's context at once, at the safe time at the latest. When
// ctx ends, fn is cancelled and waited for and the lease given back. fn is
// told its term, the fencing token for CheckLease.
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
	h := &lease.Holder{Lease: rowLease{db: db, name: name, node: node, ttl: ttl}, Name: name, Node: node, TTL: ttl, Log: log}
	return h.Hold(ctx, fn)
}

// rowLease is one lease of the leases table, for lease.Holder.
type rowLease struct {
	db         *DB
	name, node string
	ttl        time.Duration
}

func (l rowLease) Acquire(ctx context.Context) (uint64, error) {
	return l.db.TakeLease(ctx, l.name, l.node, l.ttl)
}

// Renew: a renewal is one UPDATE, so when it succeeds its own write is
// what is stored (fresh); when it fails the outcome is unknown.
func (l rowLease) Renew(ctx context.Context, term uint64) (bool, bool, error) {
	ok, err := l.db.RenewLease(ctx, l.name, l.node, term, l.ttl)
	return ok, ok && err == nil, err
}

func (l rowLease) Release(ctx context.Context, term uint64) error {
	return l.db.ReleaseLease(ctx, l.name, l.node, term)
}
