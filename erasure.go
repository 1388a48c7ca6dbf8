package portrait

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// EventErased is the type a log entry takes when its event is erased: the
// row stays, as a tombstone without payload, so that sequence numbers are
// never reused and a checkpoint still names an existing entry (see
// sqlite.stateBeyondLog); every reader of the log skips it, so a rebuild
// derives exactly what the live state holds after the erasure.
const EventErased = "$erased"

// ErasureReceipt is what an erasure removed, kept for the auditor. It names
// no identifier or value of the person (those are gone): only the profile
// id, counts, and hashes of the suppressed identifiers.
type ErasureReceipt struct {
	ID        string `json:"id"`
	ProfileID string `json:"profile_id"`
	// MergedIDs are ids merged into the profile earlier, erased with it.
	MergedIDs []string       `json:"merged_ids,omitempty"`
	At        time.Time      `json:"at"`
	By        string         `json:"by"`
	Reason    string         `json:"reason,omitempty"`
	Removed   map[string]int `json:"removed"` // what → how many (events, identifiers, quarantined...)
	// Suppressed are the hashes (SuppressionHash) of the identifiers now
	// suppressed: later events carrying them are dropped.
	Suppressed []string `json:"suppressed"`
	// Hash is SHA-256 over the receipt's other fields (hex): a receipt
	// altered later no longer matches it.
	Hash string `json:"hash"`
}

// Suppression is an erased identifier that ingest refuses, by hash only.
type Suppression struct {
	Hash      string    `json:"hash"`
	Type      string    `json:"type"`
	ErasureID string    `json:"erasure_id"`
	At        time.Time `json:"at"`
	Dropped   int64     `json:"dropped"` // events dropped since
	// KeyID names the data key the hash is keyed with (HMAC-SHA-256 under
	// a key derived from it, docs/erasure.md); empty: the unkeyed
	// SuppressionHash of a store without a data key.
	KeyID string `json:"key_id,omitempty"`
}

// SuppressionHash is the unkeyed hash of a suppressed identifier: a SHA-256
// of its type and standardised value. It is what the suppression list keeps
// without a data key, and the input of the keyed hash it keeps with one
// (HMAC-SHA-256, internal/datakey/suppress.go): unkeyed, an 11-digit phone
// number is confirmed from it by trying every number.
func SuppressionHash(id Identifier) string {
	h := sha256.New()
	h.Write([]byte(id.Type))
	h.Write([]byte{0})
	h.Write([]byte(id.Value))
	return hex.EncodeToString(h.Sum(nil))
}
