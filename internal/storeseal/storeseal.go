// Package storeseal is what a store seals, row by row, independently of
// the database it writes to: identifier values, merge entries, linkage
// candidates, and the re-sealing of each stored form under the current key
// (`portrait keys rotate-data-key`). The embedded store (sqlite/) and the
// PostgreSQL store (postgres/) both call it, so that the two keep the same
// stored forms: `portrait migrate` copies rows between them byte for byte,
// and a value sealed by one must open in the other.
//
// The policy itself (which names are secret, how an event body or a profile
// document is sealed) is internal/datakey's; this package applies it to the
// rows a store keeps.
package storeseal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/linkage"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// OpenIdentifier reads a stored identifier value back in place.
func OpenIdentifier(s *datakey.Sealer, id *portrait.Identifier) error {
	v, err := s.OpenIdentifier(id.Type, id.Value)
	if err != nil {
		return err
	}
	id.Value = v
	return nil
}

// OpenIdentifiers opens stored identifier values in place.
func OpenIdentifiers(s *datakey.Sealer, ids []portrait.Identifier) error {
	for i := range ids {
		if err := OpenIdentifier(s, &ids[i]); err != nil {
			return err
		}
	}
	return nil
}

// OpenMerges opens the identifiers of merge-journal entries in place.
func OpenMerges(s *datakey.Sealer, ms []*portrait.MergeEntry) error {
	for _, m := range ms {
		if err := OpenIdentifier(s, &m.Identifier); err != nil {
			return err
		}
	}
	return nil
}

// StoreIdentifiers returns ids as they are stored (a copy).
func StoreIdentifiers(s *datakey.Sealer, ids []portrait.Identifier) []portrait.Identifier {
	out := make([]portrait.Identifier, len(ids))
	for i, id := range ids {
		out[i] = portrait.Identifier{Type: id.Type, Value: s.StoreIdentifier(id)}
	}
	return out
}

// StoreCandidate returns a linkage candidate as it is stored: the compared
// values of secret fields and secret identifiers sealed (a copy). The
// profile ids stay in clear: erasure finds a person's candidates by them.
func StoreCandidate(s *datakey.Sealer, c *linkage.Candidate) *linkage.Candidate {
	cp := *c
	cp.A.Value, cp.B.Value = s.StoreIdentifier(c.A), s.StoreIdentifier(c.B)
	cp.Fields = make([]linkage.Comparison, len(c.Fields))
	for i, f := range c.Fields {
		f.A, f.B = s.StoreValue(f.Field, f.A), s.StoreValue(f.Field, f.B)
		cp.Fields[i] = f
	}
	return &cp
}

// OpenCandidate opens what StoreCandidate sealed, in place.
func OpenCandidate(s *datakey.Sealer, c *linkage.Candidate) error {
	if err := OpenIdentifier(s, &c.A); err != nil {
		return err
	}
	if err := OpenIdentifier(s, &c.B); err != nil {
		return err
	}
	for i := range c.Fields {
		f := &c.Fields[i]
		var err error
		if f.A, err = s.OpenValue(f.A); err != nil {
			return err
		}
		if f.B, err = s.OpenValue(f.B); err != nil {
			return err
		}
	}
	return nil
}

// Changed reports whether a stored form must be rewritten: it held a
// sealed value (perhaps under an older key) or now does.
func Changed(before, after []byte) bool {
	return !bytes.Equal(before, after) && (datakey.HasSealed(before) || datakey.HasSealed(after))
}

// Resealer gives each stored form its form under the sealer's current key,
// with the levels as they are now. What was sealed stays sealed
// (datakey.Sticky), whatever the levels at hand say: an offline command
// knows the explicit classifications and the defaults, not a computed
// trait's classification in the trait schema. Each method returns the new
// form and whether the row must be rewritten (Changed).
type Resealer struct{ S *datakey.Sealer }

// Event reseals an event body.
func (r Resealer) Event(body []byte) ([]byte, bool, error) {
	sticky := &datakey.Sticky{Levels: r.S.Levels}
	rs := &datakey.Sealer{Ring: r.S.Ring, Levels: sticky}
	if err := sticky.NoteEvent(body); err != nil {
		return nil, false, err
	}
	plain, err := r.S.OpenEvent(body)
	if err != nil {
		return nil, false, err
	}
	sealed, err := rs.SealEvent(plain)
	if err != nil {
		return nil, false, err
	}
	// A carried-forward event's profile is a blob: sealed under the new
	// key, also when it was written before a key was configured.
	if sealed, err = SealRetained(r.S, sealed); err != nil {
		return nil, false, err
	}
	return sealed, Changed(body, sealed), nil
}

// Profile reseals a stored profile document.
func (r Resealer) Profile(id string, doc []byte) ([]byte, bool, error) {
	sticky := &datakey.Sticky{Levels: r.S.Levels}
	rs := &datakey.Sealer{Ring: r.S.Ring, Levels: sticky}
	p, err := profiledoc.Decode(doc)
	if err == nil {
		sticky.NoteProfile(p)
		err = r.S.OpenProfile(p)
	}
	if err == nil {
		p, err = rs.SealProfile(p)
	}
	var out []byte
	if err == nil {
		out, err = profiledoc.Encode(p)
	}
	if err != nil {
		return nil, false, portrait.Wrap(err, "cannot reseal profile "+id)
	}
	return out, Changed(doc, out), nil
}

// Identifier reseals an identifier value of type typ (identities, refused,
// merges, splits).
func (r Resealer) Identifier(typ, stored string) (string, bool, error) {
	v, err := r.S.OpenIdentifier(typ, stored)
	if err != nil {
		return "", false, err
	}
	now := r.S.StoreIdentifier(portrait.Identifier{Type: typ, Value: v})
	if datakey.IsSealed(stored) { // sealed stays sealed
		now = r.S.Ring.SealFixed([]byte(v), []byte(typ))
	}
	return now, now != stored && (datakey.IsSealed(stored) || datakey.IsSealed(now)), nil
}

// Value reseals a refused trait value of trait name.
func (r Resealer) Value(name, stored string) (string, bool, error) {
	plain, err := r.S.OpenValue(stored)
	if err != nil {
		return "", false, err
	}
	now := r.S.StoreValue(name, plain)
	if datakey.IsSealed(stored) { // sealed stays sealed
		now = r.S.Ring.Seal([]byte(plain), nil)
	}
	// Changed looks for a sealed JSON string ("$sealed:…"); a column
	// value is bare.
	return now, now != stored && (datakey.IsSealed(stored) || datakey.IsSealed(now)), nil
}

// SplitSide reseals one side of a split: a JSON array of identifiers.
func (r Resealer) SplitSide(msg, side string) (string, bool, error) {
	var ids []portrait.Identifier
	if err := json.Unmarshal([]byte(side), &ids); err != nil {
		return "", false, portrait.Wrap(err, "cannot read split "+msg)
	}
	ch := false
	for j := range ids {
		now, c, err := r.Identifier(ids[j].Type, ids[j].Value)
		if err != nil {
			return "", false, err
		}
		ids[j].Value, ch = now, ch || c
	}
	out, _ := json.Marshal(ids)
	return string(out), ch, nil
}

// Candidate reseals a stored linkage candidate document.
func (r Resealer) Candidate(id string, doc []byte) ([]byte, bool, error) {
	c := &linkage.Candidate{}
	if err := json.Unmarshal(doc, c); err != nil {
		return nil, false, portrait.Wrap(err, "cannot read linkage candidate "+id)
	}
	// What was sealed stays sealed: the compared fields' names.
	sticky := &datakey.Sticky{Levels: r.S.Levels}
	for _, f := range c.Fields {
		if datakey.IsSealed(f.A) || datakey.IsSealed(f.B) {
			sticky.NoteProfile(&portrait.Profile{Traits: map[string]portrait.Trait{f.Field: {Value: datakey.Prefix}}})
		}
	}
	for _, id := range []portrait.Identifier{c.A, c.B} {
		if datakey.IsSealed(id.Value) {
			sticky.NoteProfile(&portrait.Profile{Identifiers: []portrait.Identifier{id}})
		}
	}
	if err := OpenCandidate(r.S, c); err != nil {
		return nil, false, err
	}
	out, err := json.Marshal(StoreCandidate(&datakey.Sealer{Ring: r.S.Ring, Levels: sticky}, c))
	if err != nil {
		return nil, false, portrait.Wrap(err, "cannot encode linkage candidate "+id)
	}
	return out, Changed(doc, out), nil
}

// Resealed counts what a store's Reseal rewrote, by table.
type Resealed struct {
	Events      int `json:"events"`
	Profiles    int `json:"profiles"`
	Identifiers int `json:"identifiers"`
	Refused     int `json:"refused"`
	Merges      int `json:"merges"`
	TraitIssues int `json:"trait_issues"`
	Splits      int `json:"splits"`
	Candidates  int `json:"linkage_candidates"`
	// Whole blobs (datakey.SealBlob): sealed under the new key, those
	// written in clear (before a key was configured) included.
	Quarantined     int `json:"quarantined"`
	ImportSummaries int `json:"import_summaries"`
	DeadLetters     int `json:"dead_letters"`
	AccountEdits    int `json:"account_edits"`
	AccountState    int `json:"account_state"`
	// Suppressions re-keyed under the new key (or upgraded from the
	// unkeyed hash: datakey/suppress.go).
	Suppressions int `json:"suppressions"`
	// OldVersions, when set, says that replaced row versions (old-key
	// ciphertexts) may still be in the database's files, and why.
	OldVersions *OldVersions `json:"old_versions_may_remain,omitempty"`
}

// OldVersions is why a store could not remove the row versions a pass
// replaced: PostgreSQL's VACUUM keeps every version a snapshot may still
// see, so a transaction open since before the rewrite (in any session of
// the server) holds them until it ends.
type OldVersions struct {
	Holders []Holder `json:"holders"`
	// Note says what to do.
	Note string `json:"note"`
}

// Holder is what keeps row versions replaced by a rewrite: a session whose
// snapshot or transaction predates it, a prepared transaction, or a
// replication slot.
type Holder struct {
	// Kind is HolderSession, HolderPrepared or HolderSlot.
	Kind        string    `json:"kind"`
	PID         int       `json:"pid,omitempty"`  // a session's
	Name        string    `json:"name,omitempty"` // a prepared transaction's gid, a slot's name
	Database    string    `json:"database"`
	User        string    `json:"user,omitempty"`
	Application string    `json:"application,omitempty"`
	State       string    `json:"state"`
	Since       time.Time `json:"since,omitzero"` // its transaction's start, or when it was prepared
	// CatalogOnly: a slot holding only the system catalogs' row versions
	// (a logical slot's catalog_xmin), not the store's tables'.
	CatalogOnly bool `json:"catalog_only,omitempty"`
}

// Kinds of Holder.
const (
	HolderSession  = "session"
	HolderPrepared = "prepared transaction"
	HolderSlot     = "replication slot"
)

// Sessions counts the holders that are sessions (those that end by
// themselves, and are waited for).
func Sessions(hs []Holder) int {
	n := 0
	for _, h := range hs {
		if h.Kind == HolderSession || h.Kind == "" {
			n++
		}
	}
	return n
}

func (h Holder) String() string {
	switch h.Kind {
	case HolderPrepared:
		return fmt.Sprintf("prepared transaction %q (database %s, owner %s) prepared at %s", h.Name, h.Database, h.User, h.Since.UTC().Format(time.RFC3339))
	case HolderSlot:
		what := "its xmin"
		if h.CatalogOnly {
			what = "its catalog_xmin: system catalog rows only"
		}
		db := h.Database
		if db == "" {
			db = "all databases"
		}
		return fmt.Sprintf("replication slot %q (%s, %s, by %s)", h.Name, h.State, db, what)
	}
	return fmt.Sprintf("transaction pid %d (database %s, user %s, %s) open since %s", h.PID, h.Database, h.User, h.State, h.Since.UTC().Format(time.RFC3339))
}

// Batch is how many rows a store reseals in one transaction.
const Batch = 500
