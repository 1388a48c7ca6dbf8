// Package keyhash is how every store keeps an API key's secret: a salted
// bcrypt hash of the secret's SHA-256 (hex), since bcrypt takes at most 72
// bytes, found by a short public prefix of the secret so that the slow hash
// is checked against the few rows with that prefix only. The server caches
// verified secrets (http/auth.go), so the ingest path pays the slow hash
// once per key and cache period, not per batch.
package keyhash

import (
	"crypto/sha256"
	"encoding/hex"

	"golang.org/x/crypto/bcrypt"
)

// Digest is what bcrypt is given, and the stored hash of keys created
// before bcrypt (the embedded store's migration 015).
func Digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Prefix is the part of a secret kept in clear to find its row: a third of
// it, at most 12 characters ("pat_" and 8 random characters of a generated
// token), so that what is stored never narrows a short hand-chosen secret
// much.
func Prefix(secret string) string {
	n := len(secret) / 3
	if n > 12 {
		n = 12
	}
	return secret[:n]
}

// Cost is the bcrypt cost to hash with: the store's setting when it is a
// valid cost (tests lower it), else bcrypt's default.
func Cost(setting int) int {
	if setting >= bcrypt.MinCost {
		return setting
	}
	return bcrypt.DefaultCost
}
