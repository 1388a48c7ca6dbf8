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
