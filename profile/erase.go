package profile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// Erasure asks a store to remove one profile and everything derived from it.
type Erasure struct {
	ID        string // the receipt's id
	ProfileID string // any id of the profile (merged-away ids resolve)
	By        string
	Reason    string
	At        time.Time
	// IdentifiersOf extracts an event's identifiers as the processor does,
	// so that the store suppresses every identifier the person's events
	// carried, in the form later events will carry it.
	IdentifiersOf func(*portrait.Event) []portrait.Identifier
	// Audit, when set, makes the erasure's audit record from its receipt,
	// and the store appends it to its own audit chain in the transaction
	// that commits the receipt: a receipt never stands without its record.
	// (Written after the commit, a node dying between the two left the
	// erasure done and unrecorded, and a forwarded erasure performed again
	// answers with the stored receipt without erasing, so nothing wrote it.)
	Audit func(*portrait.ErasureReceipt) portrait.AuditRecord
	// Removed are counts of what was erased outside the store before it
	// (the rows of the delivery drop's files): the store adds them to the
	// receipt, whose hash covers them.
	Removed map[string]int
	// Carried, when set, rewrites an accounts record a retention pass
	// carried forward (Base.Accounts, in the event RetainedID(AccountsID,
	// before) names) without the person whose identifiers are ids
	// (account.ForgetCarried; changed false: the record does not hold
	// them). The expired events that made the record are tombstones
	// already, so without it the record keeps the person in the log, and
	// every rebuild of the accounts installs them again. The store applies
	// it to every such record in the transaction that erases the events.
	Carried func(record []byte, ids []portrait.Identifier) (out []byte, changed bool, err error)
}

// ForgetCarried rewrites the properties of a carried-forward accounts
// event (e) without the person (Erasure.Carried), reporting whether they
// changed; the store writes e back. Anything else (nil, a tombstone, a
// carried profile) is left as it is.
func ForgetCarried(e *portrait.Event, ids []portrait.Identifier, fn func([]byte, []portrait.Identifier) ([]byte, bool, error)) (bool, error) {
	if fn == nil || e == nil || e.Type != portrait.EventRetained || !holdsAccounts(e) {
		return false, nil
	}
	var bs Base
	if err := json.Unmarshal(e.Properties, &bs); err != nil {
		return false, portrait.Errorf(portrait.EINTERNAL, "carried-forward accounts %s cannot be read: %v", e.MessageID, err)
	}
	out, changed, err := fn(bs.Accounts, ids)
	if err != nil || !changed {
		return false, err
	}
	bs.Accounts = out
	props, err := json.Marshal(bs)
	if err != nil {
		return false, portrait.Wrap(err, "cannot encode carried-forward accounts")
	}
	e.Properties = props
	return true, nil
}

// CarriedAccountIDs are the message ids of the accounts records the
// events passes (their cut-offs, befores) may have written: an erasure
// rewrites each one the log holds.
func CarriedAccountIDs(befores []time.Time) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(befores))
	for _, b := range befores {
		id := RetainedID(AccountsID, b)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// EraseStore removes a profile from the log and the derived state: its
// events become tombstones that every reader of the log skips, so a rebuild
// derives exactly what the live state holds afterwards.
type EraseStore interface {
	EraseProfile(ctx context.Context, e Erasure) (*portrait.ErasureReceipt, error)
}

// Identifiers returns the identifiers the processor would extract from e.
func (p *Processor) Identifiers(e *portrait.Event) []portrait.Identifier {
	return p.prepareIDs(e).ids
}

// Erase removes a profile through st while no batch runs: the processor's
// commits are drained first, its caches are dropped afterwards (they hold
// the erased identities), and OnChange hears that the profile and the ids
// merged into it are gone, so indexes and segments let go of them.
func (p *Processor) Erase(ctx context.Context, st EraseStore, e Erasure) (*portrait.ErasureReceipt, error) {
	if e.IdentifiersOf == nil {
		e.IdentifiersOf = p.Identifiers
	}
	if e.At.IsZero() {
		e.At = p.Now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false
		return nil, err
	}
	p.committed.Store(p.applied.Load())
	rc, err := st.EraseProfile(ctx, e)
	// Whatever happened, the caches may now disagree with storage.
	p.loaded = false
	if err != nil {
		return nil, err
	}
	if p.OnChange != nil {
		deleted := append([]string{rc.ProfileID}, rc.MergedIDs...)
		p.OnChange(nil, deleted, nil)
	}
	return rc, nil
}

// TombstoneID is an erased event's message id in the log.
func TombstoneID(messageID string) string {
	h := sha256.Sum256([]byte(messageID))
	return "erased:" + hex.EncodeToString(h[:16])
}

// ReceiptHash is SHA-256 over a receipt's fields but the hash itself.
func ReceiptHash(rc *portrait.ErasureReceipt) string {
	c := *rc
	c.Hash = ""
	b, _ := json.Marshal(&c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Needles are what an erasure looks for in raw bytes elsewhere
// (quarantined bodies, import examples, dead letters): every form in which
// the person's identifiers may sit there, as sent and as standardised,
// and the values the cleaners refused on their events (refused). Raw
// bodies are JSON, so each needle is quoted as a JSON string, so that a
// short user id ("7") matches only itself; they come sorted. ids, the
// person's identifiers, gains those identifiersOf finds on the events.
// Both stores search with them, so that they erase the same records.
func Needles(ids map[portrait.Identifier]bool, events []*portrait.Event, identifiersOf func(*portrait.Event) []portrait.Identifier, refused []string) [][]byte {
	needles := map[string]bool{}
	for id := range ids {
		needles[id.Value] = true
	}
	for _, e := range events {
		for _, s := range []string{e.UserID, e.AnonymousID, e.PreviousID} {
			needles[s] = true
		}
		if identifiersOf != nil {
			for _, id := range identifiersOf(e) {
				needles[id.Value] = true
				ids[id] = true
			}
		}
		RawIdentifierValues(e, ids, needles)
	}
	for _, v := range refused {
		needles[v] = true
	}
	delete(needles, "")
	quoted := make([][]byte, 0, len(needles))
	for _, s := range slices.Sorted(maps.Keys(needles)) {
		q, _ := json.Marshal(s)
		quoted = append(quoted, q)
	}
	return quoted
}

// RawIdentifierValues adds the values of e's traits that are identifiers
// (by type name: "email", "phone") as sent, before standardising.
func RawIdentifierValues(e *portrait.Event, ids map[portrait.Identifier]bool, needles map[string]bool) {
	types := map[string]bool{}
	for id := range ids {
		types[id.Type] = true
	}
	add := func(raw json.RawMessage) {
		if len(raw) == 0 {
			return
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for k, v := range m {
			if s, ok := v.(string); ok && types[strings.ToLower(k)] {
				needles[s] = true
			}
		}
	}
	add(e.Traits)
	if len(e.Context) > 0 {
		var c struct {
			Traits json.RawMessage `json:"traits"`
		}
		if json.Unmarshal(e.Context, &c) == nil {
			add(c.Traits)
		}
	}
}

// SortedIdentifiers lists the identifiers of a set with a value, in order.
func SortedIdentifiers(m map[portrait.Identifier]bool) []portrait.Identifier {
	out := make([]portrait.Identifier, 0, len(m))
	for id := range m {
		if id.Value != "" {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// EraseStoredRowExamples is EraseRowExamples on a summary as a store keeps
// it: opened with the store's sealer and sealed again when it was sealed,
// so both stores rewrite it alike. It returns the summary to write back
// and the examples erased; nothing to write when that is 0.
func EraseStoredRowExamples(s *datakey.Sealer, stored []byte, ids map[string]bool) ([]byte, int, error) {
	doc, err := s.OpenBlob(stored, datakey.BlobImport)
	if err != nil {
		return nil, 0, err
	}
	out, n := EraseRowExamples(doc, ids)
	if n > 0 && !bytes.Equal(doc, stored) { // it was sealed: so it stays
		out = s.SealBlob(out, datakey.BlobImport)
	}
	return out, n, nil
}

// EraseRowExamples takes an erased person's values out of an import
// summary's examples (importer.Example): each example that names, by
// message_id, the event of one of ids (the person's events, by their
// message ids before the erasure) gets "[erased]" for its value and loses
// the id. A value that is none of the person's identifiers (a refused city,
// a birthday that was no date) cannot be found by value, only by the row
// it came from. It returns the summary unchanged and 0 when nothing
// matched (or it is not a summary).
func EraseRowExamples(summary []byte, ids map[string]bool) ([]byte, int) {
	if len(ids) == 0 || !bytes.Contains(summary, []byte(`"message_id"`)) {
		return summary, 0
	}
	var doc map[string]any
	if json.Unmarshal(summary, &doc) != nil {
		return summary, 0
	}
	exs, _ := doc["examples"].([]any)
	n := 0
	for _, x := range exs {
		ex, _ := x.(map[string]any)
		id, _ := ex["message_id"].(string)
		if id == "" || !ids[id] {
			continue
		}
		delete(ex, "message_id")
		if _, ok := ex["value"]; ok {
			ex["value"] = "[erased]"
		}
		n++
	}
	if n == 0 {
		return summary, 0
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return summary, 0
	}
	return out, n
}
