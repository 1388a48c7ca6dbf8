package portrait

import (
	"context"
	"time"
)

// Session is a console sign-in. The store knows it only by a hash of its
// id (the cookie value), so a copy of the store signs nobody in.
type Session struct {
	IDHash   string // hex SHA-256 of the cookie value
	Key      *Key   // the principal; a revoked key has no sessions
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time
}

// SessionStore keeps sessions next to the keys they belong to, so that they
// survive a restart and end when their key is revoked.
type SessionStore interface {
	// CreateSession stores se for se.Key; ENOTFOUND if the key is gone.
	CreateSession(ctx context.Context, se *Session) error
	// Session returns the session with this id hash while its key exists
	// and it has not expired at now; ENOTFOUND otherwise.
	Session(ctx context.Context, idHash string, now time.Time) (*Session, error)
	// TouchSession records activity: new last-seen and expiry.
	TouchSession(ctx context.Context, idHash string, seen, expires time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	// PurgeSessions deletes the sessions expired at now, returning how many.
	PurgeSessions(ctx context.Context, now time.Time) (int64, error)
	// TrimSessions keeps at most max sessions, ending the least recently seen.
	TrimSessions(ctx context.Context, max int) error
}

// SignInGuard keeps the sign-in throttle's failure counts and the console's
// one-time sign-in codes in the store, so that a restart does not reset a
// throttled client, several api nodes count one client's failures together,
// and a code printed by one node works on any node, once. Clients and
// codes are passed as hashes: the store holds nothing usable.
type SignInGuard interface {
	// SignInFailed counts a failure of client at now; a count whose window
	// (from its first failure) has passed starts again. It returns the
	// count and when its window began.
	SignInFailed(ctx context.Context, client string, now time.Time, window time.Duration) (int, time.Time, error)
	// SignInFailures returns client's count and the start of its window
	// (0 when none within window of now).
	SignInFailures(ctx context.Context, client string, now time.Time, window time.Duration) (int, time.Time, error)
	// PutSignInCode keeps a one-time code for a key until expires (codes
	// expired at now are dropped on the way).
	PutSignInCode(ctx context.Context, code string, keyID int64, now, expires time.Time) error
	// TakeSignInCode removes the code and returns its key's id when it was
	// fresh at now; of two nodes taking it at once, one gets it.
	TakeSignInCode(ctx context.Context, code string, now time.Time) (int64, bool, error)
}

// Bounds of what a SignInGuard keeps: a flood of failures from many
// addresses, or of codes, does not grow the store without end.
const (
	MaxSignInClients = 10000
	MaxSignInCodes   = 1000
)
