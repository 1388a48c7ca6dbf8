package sqlite

import (
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
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
	v, err := db.sealer.OpenIdentifier(id.Type, id.Value)
	if err != nil {
		return err
	}
	id.Value = v
	return nil
}

// openIdentifiers opens the identifiers of merge-journal entries.
func (db *DB) openMerges(ms []*portrait.MergeEntry) error {
	for _, m := range ms {
		if err := db.openIdentifier(&m.Identifier); err != nil {
			return err
		}
	}
	return nil
}

// storeIdentifiers returns ids as they are stored (a copy).
func (db *DB) storeIdentifiers(ids []portrait.Identifier) []portrait.Identifier {
	out := make([]portrait.Identifier, len(ids))
	for i, id := range ids {
		out[i] = portrait.Identifier{Type: id.Type, Value: db.sealer.StoreIdentifier(id)}
	}
	return out
}

func ptrs(ids []portrait.Identifier) []*portrait.Identifier {
	out := make([]*portrait.Identifier, len(ids))
	for i := range ids {
		out[i] = &ids[i]
	}
	return out
}

// storeCandidate returns a linkage candidate as it is stored: the compared
// values of secret fields and secret identifiers sealed (a copy). The
// profile ids stay in clear: erasure finds a person's candidates by them.
func (db *DB) storeCandidate(c *linkage.Candidate) *linkage.Candidate {
	cp := *c
	cp.A.Value, cp.B.Value = db.sealer.StoreIdentifier(c.A), db.sealer.StoreIdentifier(c.B)
	cp.Fields = make([]linkage.Comparison, len(c.Fields))
	for i, f := range c.Fields {
		f.A, f.B = db.sealer.StoreValue(f.Field, f.A), db.sealer.StoreValue(f.Field, f.B)
		cp.Fields[i] = f
	}
	return &cp
}

// openCandidate opens what storeCandidate sealed, in place.
func (db *DB) openCandidate(c *linkage.Candidate) error {
	if err := db.openIdentifier(&c.A); err != nil {
		return err
	}
	if err := db.openIdentifier(&c.B); err != nil {
		return err
	}
	for i := range c.Fields {
		f := &c.Fields[i]
		var err error
		if f.A, err = db.sealer.OpenValue(f.A); err != nil {
			return err
		}
		if f.B, err = db.sealer.OpenValue(f.B); err != nil {
			return err
		}
	}
	return nil
}

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
