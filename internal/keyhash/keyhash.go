// Package keyhash is how every store keeps an API key's secret: a salted
// bcrypt hash of the secret's SHA-256 (hex), since bcrypt takes at most 72
// bytes, found by a short public prefix of the secret so that the slow hash
// is checked against the few rows with that prefix only. The server caches
// verified secrets (http/auth.go), so the ingest path pays the slow hash
// once per key and cache period, not per batch.
package keyhash

import (
	"crypto/sha256"
	"crypto/subtle"
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

// Hash is the stored form of a new key's secret: bcrypt of its Digest.
func Hash(secret string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(Digest(secret)), cost)
	return string(h), err
}

// Stored is a key row a store found for a secret: one with the secret's
// Prefix, or a Legacy row (no prefix, from before bcrypt) whose hash is
// the plain Digest.
type Stored struct {
	Hash   string
	Legacy bool
}

// Match is the index of the row whose hash is this secret's, or -1. Where
// that row is a legacy one, upgrade is the bcrypt hash the store should
// write in its place, with the secret's Prefix (best effort: a failed
// upgrade leaves the old hash working); else it is empty. Both stores
// verify through it, so that they cannot come to disagree on which rows a
// secret opens.
func Match(secret string, rows []Stored, cost int) (i int, upgrade string) {
	plain := Digest(secret)
	for i, r := range rows {
		if r.Legacy {
			if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(plain)) != 1 {
				continue
			}
			if h, err := bcrypt.GenerateFromPassword([]byte(plain), cost); err == nil {
				upgrade = string(h)
			}
			return i, upgrade
		}
		if bcrypt.CompareHashAndPassword([]byte(r.Hash), []byte(plain)) == nil {
			return i, ""
		}
	}
	return -1, ""
}
