package portrait

import (
	"context"
	"time"
)

// Key kinds. A write key identifies a source (its name is the provenance of
// what it sends); an admin token authorises the management and query API.
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
