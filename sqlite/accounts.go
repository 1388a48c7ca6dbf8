package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// The accounts' storage (account.Store): the edits journal in the log
// file, beside the events they are replayed with; refused account values
// in trait_issues, where the quality report counts them.

var _ account.Store = (*DB)(nil)

// AppendAccountEdit journals an edit and returns its id.
func (db *DB) AppendAccountEdit(ctx context.Context, ed *account.Edit) (int64, error) {
	b, err := json.Marshal(ed)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot encode the account edit")
	}
	res, err := db.logW.ExecContext(ctx, `INSERT INTO account_edits (at, by, kind, account, body) VALUES (?, ?, ?, ?, ?)`,
		micros(ed.At), ed.By, ed.Kind, ed.Account, string(db.sealer.SealBlob(b, datakey.BlobAccountEdit))) // body: sealing
	if err != nil {
		return 0, portrait.Wrap(err, "cannot journal the account edit")
	}
	return res.LastInsertId()
}

// AccountEdits returns every edit in id order.
func (db *DB) AccountEdits(ctx context.Context) ([]*account.Edit, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT id, body FROM account_edits ORDER BY id`)
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

// AddTraitIssues records refused values (each once: keyed by event and
// trait, so replays add nothing).
func (db *DB) AddTraitIssues(ctx context.Context, issues []*portrait.TraitIssue) error {
	if len(issues) == 0 {
		return nil
	}
	tx, err := db.stateW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot record trait issues")
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO trait_issues (message_id, trait, source, profile_id, value, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return portrait.Wrap(err, "cannot record trait issues")
	}
	defer st.Close()
	for _, i := range issues {
		if _, err := st.ExecContext(ctx, i.MessageID, i.Trait, i.Source, i.ProfileID, db.sealer.StoreValue(i.Trait, i.Value), i.Reason, micros(i.Time)); err != nil { // value: sealing
			return portrait.Wrap(err, "cannot record trait issues")
		}
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot record trait issues")
	}
	return nil
}

// SaveAccountState replaces the accounts' checkpoint.
func (db *DB) SaveAccountState(ctx context.Context, seq int64, body []byte) error {
	if _, err := db.stateW.ExecContext(ctx, `INSERT INTO account_state (id, seq, body) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, body = excluded.body`, seq, db.sealer.SealBlob(body, datakey.BlobAccountState)); err != nil { // body: sealing
		return portrait.Wrap(err, "cannot save the accounts checkpoint")
	}
	return nil
}

// AccountState returns the accounts' checkpoint (seq 0, nil: none).
func (db *DB) AccountState(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var body []byte
	err := db.stateR.QueryRowContext(ctx, `SELECT seq, body FROM account_state WHERE id = 1`).Scan(&seq, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, portrait.Wrap(err, "cannot read the accounts checkpoint")
	}
	if body, err = db.sealer.OpenBlob(body, datakey.BlobAccountState); err != nil { // sealing
		return 0, nil, err
	}
	return seq, body, nil
}
