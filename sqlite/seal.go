package sqlite

import (
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/linkage"
)

// Encryption at rest (issue 15 §3, docs/privacy.md): the store keeps
// secret-level values sealed by a datakey.Sealer. Event bodies, profile
// documents, identifier values (identities, refused, merges, splits) and
// refused trait values pass through it on their way in and out, so every
// reader above the store sees them as sent.

// SetSealer makes the store seal secret-level values from now on and open
// sealed ones. It is called once, after Open and before the store is used;
// without it nothing is sealed, and a sealed value read is an error naming
// its key.
func (db *DB) SetSealer(s *datakey.Sealer) { db.sealer = s }

// Sealer is the store's sealer (nil when none was set).
func (db *DB) Sealer() *datakey.Sealer { return db.sealer }

// identifierForms are the stored forms an identifier may have, as query
// arguments after its type: the lookup is "type = ? AND value IN (forms)".
func (db *DB) identifierForms(id portrait.Identifier) (string, []any) {
	forms := db.sealer.IdentifierForms(id)
	args := make([]any, 0, 1+len(forms))
	args = append(args, id.Type)
	for _, f := range forms {
		args = append(args, f)
	}
	return "(" + placeholders(len(forms)) + ")", args
}

// openIdentifier reads a stored identifier value back in place.
func (db *DB) openIdentifier(id *portrait.Identifier) error {
	return storeseal.OpenIdentifier(db.sealer, id)
}

// openMerges opens the identifiers of merge-journal entries.
func (db *DB) openMerges(ms []*portrait.MergeEntry) error { return storeseal.OpenMerges(db.sealer, ms) }

// storeIdentifiers returns ids as they are stored (a copy).
func (db *DB) storeIdentifiers(ids []portrait.Identifier) []portrait.Identifier {
	return storeseal.StoreIdentifiers(db.sealer, ids)
}

func ptrs(ids []portrait.Identifier) []*portrait.Identifier {
	out := make([]*portrait.Identifier, len(ids))
	for i := range ids {
		out[i] = &ids[i]
	}
	return out
}

// storeCandidate returns a linkage candidate as it is stored (a copy).
func (db *DB) storeCandidate(c *linkage.Candidate) *linkage.Candidate {
	return storeseal.StoreCandidate(db.sealer, c)
}

// openCandidate opens what storeCandidate sealed, in place.
func (db *DB) openCandidate(c *linkage.Candidate) error { return storeseal.OpenCandidate(db.sealer, c) }

// deleteForms removes identities rows by (type, value) pairs, many to a
// statement: a write removes an identifier's other stored forms, and a
// statement per identifier cost the processor more than the sealing.
func deleteForms(x *stateExec, pairs []any) error {
	for len(pairs) > 0 {
		n := min(len(pairs), 2*flushRows)
		if _, err := x.tx.ExecContext(x.ctx, `DELETE FROM identities WHERE (type, value) IN (VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?),", n/2), ",")+`)`, pairs[:n]...); err != nil {
			return portrait.Wrap(err, "cannot write derived state")
		}
		pairs = pairs[n:]
	}
	return nil
}
