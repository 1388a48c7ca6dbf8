package postgres

import (
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/linkage"
)

// Encryption at rest (issue 15 §3, docs/privacy.md), as in the embedded
// store and through the same code (internal/datakey for the policy,
// internal/storeseal for the rows): event bodies, profile documents,
// identifier values (identities, refused, merges, splits), refused trait
// values and linkage candidates pass through the sealer on their way in
// and out, so every reader above the store sees them as sent, and a table
// copied from the embedded store (portrait migrate) opens here with the
// same keys. The `// sealing` lines are where the store calls it.

// SetSealer makes the store seal secret-level values from now on and open
// sealed ones. It is called once, after Open and before the store is used;
// without it nothing is sealed, and a sealed value read is an error naming
// its key.
func (db *DB) SetSealer(s *datakey.Sealer) { db.sealer = s }

// Sealer is the store's sealer (nil when none was set).
func (db *DB) Sealer() *datakey.Sealer { return db.sealer }

// identifierForms are the stored forms an identifier may have (in clear,
// sealed under each key of the ring): a lookup is "type = $1 AND value =
// ANY($2)".
func (db *DB) identifierForms(id portrait.Identifier) []string {
	return db.sealer.IdentifierForms(id)
}

// openEvent opens a stored event body and decodes it.
func (db *DB) decodeEvent(body []byte, e *portrait.Event) error {
	b, err := db.sealer.OpenEvent(body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, e); err != nil {
		return portrait.Wrap(err, "corrupt event")
	}
	return nil
}

func (db *DB) openIdentifier(id *portrait.Identifier) error {
	return storeseal.OpenIdentifier(db.sealer, id)
}

func (db *DB) openMerges(ms []*portrait.MergeEntry) error { return storeseal.OpenMerges(db.sealer, ms) }

func (db *DB) storeCandidate(c *linkage.Candidate) *linkage.Candidate {
	return storeseal.StoreCandidate(db.sealer, c)
}

func (db *DB) openCandidate(c *linkage.Candidate) error { return storeseal.OpenCandidate(db.sealer, c) }

// storeSplitSide is a split's side as stored: a JSON array of identifiers,
// secret ones sealed.
func (db *DB) storeSplitSide(ids []portrait.Identifier) (string, error) {
	b, err := json.Marshal(storeseal.StoreIdentifiers(db.sealer, orEmpty(ids)))
	return string(b), err
}
