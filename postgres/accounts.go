package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// The accounts' edits journal, beside the events it is replayed with. (The
// accounts' checkpoint and refused values are the derived state's.)

// lockAccountEdits is held by AppendAccountEdit to commit, so that edit ids
// become visible in order across nodes, as the replay reads them in id
// order.
const lockAccountEdits = int64(0x706f7274_0023) // "port" 0x23

// AppendAccountEdit journals an edit and returns its id.
func (db *DB) AppendAccountEdit(ctx context.Context, ed *account.Edit) (int64, error) {
	b, err := json.Marshal(ed)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot encode the account edit")
	}
	var id int64
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAccountEdits); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO account_edits (at, by, kind, account, body) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			micros(ed.At), ed.By, ed.Kind, ed.Account, string(db.sealer.SealBlob(b, datakey.BlobAccountEdit))).Scan(&id) // body: sealing
	})
	if err != nil {
		return 0, portrait.Wrap(err, "cannot journal the account edit")
	}
	return id, nil
}

// AccountEdits returns every edit in id order.
func (db *DB) AccountEdits(ctx context.Context) ([]*account.Edit, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, body FROM account_edits ORDER BY id`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the account edits")
	}
	defer rows.Close()
	var out []*account.Edit
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, portrait.Wrap(err, "cannot read the account edits")
		}
		opened, err := db.sealer.OpenBlob([]byte(body), datakey.BlobAccountEdit) // sealing
		if err != nil {
			return nil, err
		}
		ed := &account.Edit{}
		if err := json.Unmarshal(opened, ed); err != nil {
			return nil, portrait.Wrap(err, "account edit "+body+" is damaged")
		}
		ed.ID = id
		out = append(out, ed)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the account edits")
	}
	return out, nil
}
