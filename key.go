package portrait

import (
	"context"
	"strings"
	"time"
)

// Key kinds. A write key identifies a source (its name is the provenance of
// what it sends) and can only send events; an admin-kind key is an API
// token whose Role and Clearance decide what it may call and see (the
// access package).
const (
	KeyWrite = "write"
	KeyAdmin = "admin"
)

// Key is a credential. The secret itself is never stored, only its hash.
type Key struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Priority  int       `json:"priority"` // write keys: source priority for trait ties
	CreatedAt time.Time `json:"created_at"`
	// API tokens: a role (admin, analyst, marketing, sales, service,
	// auditor, custom), the scopes of a custom role, and a clearance level
	// (public, internal, confidential, secret). Empty on write keys; a token
	// stored before roles existed reads as admin with secret clearance.
	Role      string    `json:"role,omitempty"`
	Scopes    []string  `json:"scopes,omitempty"`
	Clearance string    `json:"clearance,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// Prepare checks a key about to be created with secret, and fills what its
// kind implies: a write key has no role, scopes or clearance; an admin
// token without a role is an admin with secret clearance. Every store calls
// it, so they refuse and default alike.
func (k *Key) Prepare(secret string) error {
	if k.Kind != KeyWrite && k.Kind != KeyAdmin {
		return Errorf(EINVALID, "key kind must be write or admin, not %q", k.Kind)
	}
	if strings.TrimSpace(k.Name) == "" {
		return Errorf(EINVALID, "a key needs a name")
	}
	if IsSystemSource(k.Name) {
		return Errorf(EINVALID, "key name %q is reserved for Portrait's own sources", k.Name)
	}
	if len(secret) < 8 {
		return Errorf(EINVALID, "a key secret must be at least 8 characters")
	}
	if k.Kind == KeyWrite {
		k.Role, k.Scopes, k.Clearance = "", nil, ""
	} else if k.Role == "" {
		k.Role, k.Clearance = "admin", "secret"
	}
	return nil
}

// KeyStore keeps credentials.
type KeyStore interface {
	CreateKey(ctx context.Context, k *Key, secret string) error
	// Authenticate returns the key whose secret is given, of the given kind.
	Authenticate(ctx context.Context, kind, secret string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	// RevokeKey deletes the key with this id and ends its console sessions
	// in the same transaction; ENOTFOUND if there is no such key.
	RevokeKey(ctx context.Context, id int64) error
}
