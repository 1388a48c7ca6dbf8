package storeseal

import (
	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

func ringOf(s *datakey.Sealer) *datakey.Ring {
	if s == nil {
		return nil
	}
	return s.Ring
}

// Suppression is how an erased identifier is kept in the suppression list
// under the sealer's current key (datakey/suppress.go): its hash, the key
// id ("" without a data key: the unkeyed hash) and the inner hash sealed.
func Suppression(s *datakey.Sealer, id portrait.Identifier) datakey.SuppressedRow {
	r := ringOf(s)
	inner := datakey.SuppressionInner(id)
	kid := r.SuppressionKeyID()
	h, _ := r.SuppressionHash(kid, inner) // the current key is in the ring
	return datakey.SuppressedRow{Hash: h, KeyID: kid, Sealed: r.SealSuppression(inner)}
}

// Rekeyed is a suppression row and what it becomes under the current key.
type Rekeyed struct{ Old, New datakey.SuppressedRow }

// RekeySuppressions returns the rows of a suppression list not yet kept
// under the current key, with their new form: the upgrade of unkeyed rows
// when a key is configured, and the rotation's re-keying. Nothing without
// a data key. A row under a key the ring lacks is an error naming it.
func RekeySuppressions(s *datakey.Sealer, rows []datakey.SuppressedRow) ([]Rekeyed, error) {
	r := ringOf(s)
	if r == nil {
		return nil, nil
	}
	var out []Rekeyed
	for _, row := range rows {
		nw, changed, err := r.Rekey(row)
		if err != nil {
			return nil, err
		}
		if changed {
			out = append(out, Rekeyed{Old: row, New: nw})
		}
	}
	return out, nil
}
