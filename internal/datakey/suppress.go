package datakey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/hkdf"

	"github.com/portrait-cdp/portrait"
)

// The suppression list (erasure.Suppressor) keeps an erased person's
// identifiers as hashes, so that later events carrying them are dropped.
// An unkeyed SHA-256 of an 11-digit phone number is confirmed by trying
// the whole number space in minutes, so with a data key the list holds
//
//	HMAC-SHA-256(K, SHA-256(type ‖ 0 ‖ standardised value))
//
// with K = HKDF-SHA-256(the data key's secret, info "portrait suppression"),
// and the key id beside it. The inner hash is portrait.SuppressionHash,
// what the list held before keys: an existing row is upgraded in place
// (HMAC of the stored hash) although the value itself is gone. The inner
// hash is also kept sealed under the data key (SealSuppression), so that
// a rotation can compute the hash under the new key and the old key can
// then be retired like every other (a hash under a key no longer in the
// ring could not be checked, and the suppression would be lost).

// suppressionLabel is the HKDF info that keeps this key apart from the
// other uses of the same secret.
const suppressionLabel = "portrait suppression"

// suppressionAAD binds a sealed inner hash to its use.
var suppressionAAD = []byte("portrait suppression inner hash")

// suppressionPool hands out HMACs under the suppression key sup.
func suppressionPool(sup []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return hmac.New(sha256.New, sup) }}
}

func suppressionKey(secret []byte) []byte {
	k := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(suppressionLabel)), k); err != nil {
		panic("datakey: hkdf: " + err.Error()) // 32 bytes of HKDF-SHA-256 cannot fail
	}
	return k
}

// SuppressionInner is the unkeyed hash of an identifier, decoded
// (portrait.SuppressionHash is its hex): the input of the keyed one, and
// the whole of it without a data key.
func SuppressionInner(id portrait.Identifier) []byte {
	h := sha256.New()
	h.Write([]byte(id.Type))
	h.Write([]byte{0})
	h.Write([]byte(id.Value))
	return h.Sum(nil)
}

// SuppressionKeyID is the key id new suppressions are kept under: the
// current data key's, "" without a ring (unkeyed).
func (r *Ring) SuppressionKeyID() string { return r.Current() }

// SuppressionHash is the hash the suppression list keeps for inner (a
// SuppressionInner) under the data key keyID, hex; keyID "" is the unkeyed
// form (inner itself), for a deployment without a data key. A key id the
// ring does not hold is an error naming it: the suppressions kept under it
// cannot be checked.
func (r *Ring) SuppressionHash(keyID string, inner []byte) (string, error) {
	if keyID == "" {
		return hex.EncodeToString(inner), nil
	}
	if r == nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "suppressed identifiers are kept under data key %q, but no data key is configured (--data-key-file or %s)", keyID, EnvVar)
	}
	k := r.byID[keyID]
	if k == nil {
		return "", portrait.Errorf(portrait.EUNAVAILABLE, "suppressed identifiers are kept under data key %q, which is not among the configured data keys (%s)", keyID, strings.Join(r.IDs(), ", "))
	}
	// The ingest path asks this for every identifier of every event while
	// the list is not empty: a pooled HMAC (its key schedule done once)
	// and one buffer, rather than hmac.New and its allocations each time.
	m := k.supPool.Get().(hash.Hash)
	m.Reset()
	m.Write(inner)
	var sum [sha256.Size]byte
	out := hex.EncodeToString(m.Sum(sum[:0]))
	k.supPool.Put(m)
	return out, nil
}

// SealSuppression seals an inner hash under the current key, for the
// rotation to re-key the row ("" without a ring: nothing to keep, the
// unkeyed hash is the inner hash).
func (r *Ring) SealSuppression(inner []byte) string {
	if r == nil {
		return ""
	}
	return r.Seal(inner, suppressionAAD)
}

// OpenSuppression opens what SealSuppression sealed.
func (r *Ring) OpenSuppression(sealed string) ([]byte, error) {
	return r.Open(sealed, suppressionAAD)
}

// SuppressedRow is one row of a store's suppression list as the re-keying
// reads it.
type SuppressedRow struct {
	Hash, KeyID, Sealed string
}

// Rekey returns the row as it is kept under the current key: the same row
// (false) when it is there already; an unkeyed row (written without a data
// key) is upgraded from its stored hash, a row under an older key from its
// sealed inner hash. Both stores' upgrade at start and rotation call it.
func (r *Ring) Rekey(row SuppressedRow) (SuppressedRow, bool, error) {
	cur := r.SuppressionKeyID()
	if cur == "" || (row.KeyID == cur && KeyOf(row.Sealed) == cur) {
		return row, false, nil
	}
	var inner []byte
	if row.KeyID == "" {
		b, err := hex.DecodeString(row.Hash)
		if err != nil || len(b) != sha256.Size {
			return row, false, portrait.Errorf(portrait.EINTERNAL, "a suppressed identifier's hash is damaged")
		}
		inner = b
	} else {
		b, err := r.OpenSuppression(row.Sealed)
		if err != nil {
			return row, false, err
		}
		inner = b
	}
	h, err := r.SuppressionHash(cur, inner)
	if err != nil {
		return row, false, err
	}
	return SuppressedRow{Hash: h, KeyID: cur, Sealed: r.SealSuppression(inner)}, true, nil
}
