package portrait

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// AuditRecord is one line of the audit log: who did what, when, from where,
// and which personal fields at which classification level it touched.
// Records are hash-chained by the store (Prev, Hash), so an edit, deletion
// or reordering of stored records is detectable (AuditLog.VerifyAudit).
type AuditRecord struct {
	Seq    int64          `json:"seq"`
	At     time.Time      `json:"at"`
	Actor  string         `json:"actor"`            // key name, or "cli", "system"
	KeyID  int64          `json:"key_id,omitempty"` // the principal's key (0: not a key)
	Role   string         `json:"role,omitempty"`   // the principal's role at the time
	Action string         `json:"action"`           // e.g. "read", "export", "key.create", "erasure"
	Target string         `json:"target,omitempty"` // what it acted on: a route and path, a profile id, a key id
	Remote string         `json:"remote,omitempty"` // client address
	Status int            `json:"status,omitempty"` // HTTP status, when it was a request
	Fields []AuditField   `json:"fields,omitempty"` // personal fields seen or changed
	Detail map[string]any `json:"detail,omitempty"`
	Prev   string         `json:"prev"` // hex hash of the previous record ("" for the first)
	Hash   string         `json:"hash"` // hex SHA-256 over Prev and this record's content
}

// AuditField is a classified field a request touched, at its level, and
// whether the caller saw it masked.
type AuditField struct {
	Name   string `json:"name"`
	Level  string `json:"level"`
	Masked bool   `json:"masked,omitempty"`
}

// Auditor records what happened. Other areas (erasure, consent, retention)
// call it for every change they make; Record fails only when the record
// could not be made durable, and the caller should then refuse the action.
type Auditor interface {
	Record(ctx context.Context, rec AuditRecord) error
}

// AuditFilter narrows an audit listing; zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string
	Target string // substring
	Since  time.Time
	Until  time.Time
	After  int64 // records with Seq > After (paging forwards)
	Before int64 // records with Seq < Before (paging backwards; 0: none)
	Newest bool  // newest first
	Limit  int
}

// AuditLog is an append-only, hash-chained audit store.
type AuditLog interface {
	Auditor
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditRecord, error)
	// VerifyAudit recomputes the chain; it returns the number of records
	// checked, and an error naming the first record that does not match.
	VerifyAudit(ctx context.Context) (int64, error)
}

// AuditorFunc adapts a function to Auditor.
type AuditorFunc func(ctx context.Context, rec AuditRecord) error

// Record calls f.
func (f AuditorFunc) Record(ctx context.Context, rec AuditRecord) error { return f(ctx, rec) }

// AuditBody is the canonical content of a record that its hash covers:
// the record as JSON without Prev and Hash.
func AuditBody(rec AuditRecord) ([]byte, error) {
	rec.Prev, rec.Hash = "", ""
	rec.At = rec.At.UTC()
	return json.Marshal(rec)
}

// AuditHash chains a record to the one before it: hex SHA-256 of the
// previous hash, a newline and the record's body.
func AuditHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// ChainAudit prepares records for appending after a chain whose last
// record has sequence number last and hash prev: each is checked (actor
// and action), stamped with now when it has no time, numbered, and
// hashed onto the one before. Every store appends what it returns, so
// the chain is built the same way whatever holds it.
func ChainAudit(recs []AuditRecord, last int64, prev string, now Clock) ([]ChainedAudit, error) {
	out := make([]ChainedAudit, 0, len(recs))
	for _, rec := range recs {
		if rec.Actor == "" || rec.Action == "" {
			return nil, Errorf(EINVALID, "an audit record needs an actor and an action")
		}
		if rec.At.IsZero() {
			rec.At = now()
		}
		last++
		rec.Seq = last
		body, err := AuditBody(rec)
		if err != nil {
			return nil, Wrap(err, "cannot encode the audit record")
		}
		hash := AuditHash(prev, body)
		out = append(out, ChainedAudit{Rec: rec, Body: string(body), Prev: prev, Hash: hash})
		prev = hash
	}
	return out, nil
}

// ChainedAudit is a record ready to append: numbered, with its canonical
// body, the hash before it and its own.
type ChainedAudit struct {
	Rec              AuditRecord
	Body, Prev, Hash string
}

// AuditChain checks an audit log's records one by one, in sequence order,
// as every store's VerifyAudit reads them: each record's prev must be the
// hash before it, its hash must be that of its body, and its body must
// carry its own sequence number.
type AuditChain struct {
	Verified int64 // records checked and found sound
	last     string
}

// Next checks the next record; the first error ends the walk.
func (c *AuditChain) Next(seq int64, body, prev, hash string) error {
	want := c.Verified + 1
	var rec struct {
		Seq int64 `json:"seq"`
	}
	switch {
	case seq != want:
		return Errorf(ECONFLICT, "audit record %d is missing (found %d next)", want, seq)
	case prev != c.last:
		return Errorf(ECONFLICT, "audit record %d does not follow record %d: the chain is broken", seq, seq-1)
	case AuditHash(prev, []byte(body)) != hash:
		return Errorf(ECONFLICT, "audit record %d was altered: its hash does not match its content", seq)
	case json.Unmarshal([]byte(body), &rec) != nil || rec.Seq != seq:
		return Errorf(ECONFLICT, "audit record %d carries another record's content", seq)
	}
	c.last = hash
	c.Verified++
	return nil
}

// AuditHead names a record of the chain by its sequence number and hash:
// the last one when VerifyAuditFrom reports it. Kept outside the store (a
// ticket, a log shipped elsewhere, an auditor's notes) it is an anchor: a
// chain can only be checked against what it claims of itself, so someone
// with the database can cut records off its end, or edit a record and
// re-hash every record after it, and the chain still verifies; neither
// keeps a record whose hash an anchor holds.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// ParseAuditHead reads an anchor written as "SEQ:HASH".
func ParseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n <= 0 || len(hash) != 64 {
		return AuditHead{}, Errorf(EINVALID, "an audit anchor is SEQ:HASH (a record's sequence number and its 64-digit hash, as verify reports the head), not %q", s)
	}
	return AuditHead{Seq: n, Hash: strings.ToLower(hash)}, nil
}

// String writes the head as ParseAuditHead reads it.
func (h AuditHead) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// VerifyAuditAnchored recomputes the chain (VerifyAudit) and returns its
// head, the last record; with anchors, each must still be in the chain
// with the hash it had: a log that now ends before an anchor lost records
// from its end, a record whose hash differs was rewritten.
func VerifyAuditAnchored(ctx context.Context, log AuditLog, anchors ...AuditHead) (AuditHead, int64, error) {
	n, err := log.VerifyAudit(ctx)
	if err != nil {
		return AuditHead{}, n, err
	}
	var head AuditHead
	if n > 0 {
		last, err := log.ListAudit(ctx, AuditFilter{After: n - 1, Limit: 1})
		if err != nil {
			return AuditHead{}, n, err
		}
		if len(last) != 1 || last[0].Seq != n {
			return AuditHead{}, n, Errorf(ECONFLICT, "audit record %d, the last one verified, cannot be read back", n)
		}
		head = AuditHead{Seq: n, Hash: last[0].Hash}
	}
	for _, a := range anchors {
		if a.Seq > n {
			return head, n, Errorf(ECONFLICT, "the audit log ends at record %d, before the anchor's record %d: records were removed from its end", n, a.Seq)
		}
		got, err := log.ListAudit(ctx, AuditFilter{After: a.Seq - 1, Limit: 1})
		if err != nil {
			return head, n, err
		}
		if len(got) != 1 || got[0].Seq != a.Seq || got[0].Hash != a.Hash {
			return head, n, Errorf(ECONFLICT, "audit record %d does not have the anchor's hash: the chain was rewritten from there or before", a.Seq)
		}
	}
	return head, n, nil
}
