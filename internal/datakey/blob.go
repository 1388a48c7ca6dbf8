package datakey

import (
	"bytes"
	"encoding/json"
)

// Blobs.
//
// Some stored documents are kept whole and are not parsed on the way in: a
// quarantined body (it failed validation, so it may not even be JSON), a
// dead letter, an import's summary with its example values, the accounts'
// checkpoint, an enricher's private state, a delivery file. Which of their
// parts are secret cannot be told reliably, so with a ring configured each
// is sealed as one value (random nonce), whatever the levels say; the
// label (the table or file kind) is the associated data, so a blob cannot
// be moved from one place to another and read there.
//
// A blob is stored as bytes: the sealed string, or the blob itself when no
// ring is configured, or EscapePrefix + the blob when it starts like a
// sealed or escaped value (a client chose those bytes: they must be read
// back as sent, never opened).

// Blob labels: the associated data of the blobs a store seals. A store
// other than SQLite uses the same ones so that a migrated blob still opens.
const (
	BlobQuarantine   = "quarantine"
	BlobDeadLetter   = "dead-letter"
	BlobImport       = "import-summary"
	BlobAccountState = "account-state"
	BlobAccountEdit  = "account-edit"
	BlobDelivery     = "delivery-file"
	BlobUpload       = "import-upload"   // a stream (NewStreamWriter)
	BlobState        = "enricher-state:" // + the enricher's key
)

var (
	prefixBytes = []byte(Prefix)
	escapeBytes = []byte(EscapePrefix)
)

// SealBlob returns the stored form of a whole document. It seals whenever a
// ring is configured, whatever the levels say (see above).
func (s *Sealer) SealBlob(b []byte, label string) []byte {
	if s.HasRing() {
		return []byte(s.Ring.Seal(b, []byte(label)))
	}
	if bytes.HasPrefix(b, prefixBytes) || bytes.HasPrefix(b, escapeBytes) {
		return append(append([]byte(nil), escapeBytes...), b...)
	}
	return b
}

// OpenBlob returns the document SealBlob stored. A blob written before
// sealing existed is returned as it is. A sealed blob without the ring (or
// its key) is an error naming the key.
func (s *Sealer) OpenBlob(b []byte, label string) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, escapeBytes):
		return b[len(escapeBytes):], nil
	case bytes.HasPrefix(b, prefixBytes):
		return s.ring().Open(string(b), []byte(label))
	}
	return b, nil
}

// IsSealedBlob reports whether a stored blob is sealed (a rotation reseals
// it; a scan that looks for clear values skips it).
func IsSealedBlob(b []byte) bool { return bytes.HasPrefix(b, prefixBytes) }

// Enricher state inside a profile document is a JSON value per enricher
// (Profile.State); sealed, it becomes the JSON string of the sealed blob,
// so the document stays valid JSON and its decoder needs no change. A clear
// state that is itself a JSON string starting like a sealed or escaped
// value is kept as the JSON string EscapePrefix + its JSON.

var (
	quotedPrefixState = []byte(`"` + Prefix)
	quotedEscapeState = []byte(`"` + EscapePrefix)
)

// SealState returns the stored form of an enricher's state (name is its
// key in Profile.State). With a ring configured every non-empty state is
// sealed: an accumulator may hold a copy of any value the enricher saw,
// secret or not, and nothing tells which from outside.
func (s *Sealer) SealState(name string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	if s.HasRing() {
		// A sealed string is "$sealed:", a key id and base64url: nothing
		// in it needs a JSON escape, so it is quoted as it is.
		sealed := s.Ring.Seal(raw, []byte(BlobState+name))
		b := make([]byte, 0, len(sealed)+2)
		return append(append(append(b, '"'), sealed...), '"')
	}
	if bytes.HasPrefix(raw, quotedPrefixState) || bytes.HasPrefix(raw, quotedEscapeState) {
		b, _ := json.Marshal(EscapePrefix + string(raw))
		return b
	}
	return raw
}

// OpenState reads back what SealState stored.
func (s *Sealer) OpenState(name string, stored json.RawMessage) (json.RawMessage, error) {
	if !bytes.HasPrefix(stored, quotedPrefixState) && !bytes.HasPrefix(stored, quotedEscapeState) {
		return stored, nil
	}
	var str string
	if err := json.Unmarshal(stored, &str); err != nil {
		return nil, err
	}
	if b, ok := bytes.CutPrefix([]byte(str), escapeBytes); ok {
		return b, nil
	}
	return s.ring().Open(str, []byte(BlobState+name))
}
