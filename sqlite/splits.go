package sqlite

import (
	"context"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
)

// LoadSplits returns the kept-apart decisions (undone identity merges).
func (db *DB) LoadSplits(ctx context.Context) ([]*profile.Split, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT message_id, bridge, via_type, via_value, decided_by, side_a, side_b FROM splits ORDER BY message_id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read splits")
	}
	defer rows.Close()
	var out []*profile.Split
	for rows.Next() {
		s := &profile.Split{}
		var a, b string
		if err := rows.Scan(&s.MessageID, &s.Bridge, &s.Via.Type, &s.Via.Value, &s.By, &a, &b); err != nil {
			return nil, portrait.Wrap(err, "cannot read splits")
		}
		if err := json.Unmarshal([]byte(a), &s.A); err != nil {
			return nil, portrait.Wrap(err, "cannot read split "+s.MessageID)
		}
		if err := json.Unmarshal([]byte(b), &s.B); err != nil {
			return nil, portrait.Wrap(err, "cannot read split "+s.MessageID)
		}
		// sealing: identifier values are stored as seal.go stores them
		for _, id := range append(append([]*portrait.Identifier{&s.Via}, ptrs(s.A)...), ptrs(s.B)...) {
			if err := db.openIdentifier(id); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t *stateTx) PutSplit(s *profile.Split) error {
	a, err := json.Marshal(t.db.storeIdentifiers(orEmpty(s.A))) // sealing
	if err != nil {
		return err
	}
	b, err := json.Marshal(t.db.storeIdentifiers(orEmpty(s.B)))
	if err != nil {
		return err
	}
	args := []any{s.MessageID, s.Bridge, s.Via.Type, t.db.sealer.StoreIdentifier(s.Via), s.By, string(a), string(b)}
	return t.record(func(x *stateExec) error {
		return x.exec(`INSERT INTO splits (message_id, bridge, via_type, via_value, decided_by, side_a, side_b) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (message_id) DO UPDATE SET side_a = excluded.side_a, side_b = excluded.side_b`, args...)
	})
}

func (t *stateTx) DeleteSplit(messageID string) error {
	return t.record(func(x *stateExec) error { return x.exec(`DELETE FROM splits WHERE message_id = ?`, messageID) })
}

func orEmpty(ids []portrait.Identifier) []portrait.Identifier {
	if ids == nil {
		return []portrait.Identifier{}
	}
	return ids
}
