package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.AuditLog = (*DB)(nil)

// Record appends a record to the audit chain (migration log/016). Records
// handed in at about the same time (every audited read writes one) are
// committed together, one transaction for the group (groupcommit): each
// record's Prev is still the hash of the one before, and Record returns
// once the transaction holding its record has committed.
func (db *DB) Record(ctx context.Context, rec portrait.AuditRecord) error {
	if rec.Actor == "" || rec.Action == "" {
		return portrait.Errorf(portrait.EINVALID, "an audit record needs an actor and an action")
	}
	if rec.At.IsZero() {
		rec.At = db.Now()
	}
	return db.auditGroup.Do(ctx, rec, db.commitAudit)
}

// commitAudit appends a group of records in one transaction.
func (db *DB) commitAudit(ctx context.Context, recs []portrait.AuditRecord) error {
	db.auditMu.Lock()
	defer db.auditMu.Unlock()
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	defer tx.Rollback()
	if err := db.appendAudit(ctx, tx, recs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	return nil
}

// appendAudit appends records to the chain within tx, a transaction on
// the log's one writing connection (Record's group, or an erasure's log
// transaction, which commits its record with its receipt): that
// connection serialises the chain's appends.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, recs []portrait.AuditRecord) error {
	var last int64
	var prev string
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	chained, err := portrait.ChainAudit(recs, last, prev, db.Now)
	if err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO audit (seq, at, actor, action, target, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	defer st.Close()
	for _, c := range chained {
		if _, err := st.ExecContext(ctx, c.Rec.Seq, micros(c.Rec.At), c.Rec.Actor, c.Rec.Action, c.Rec.Target, c.Body, c.Prev, c.Hash); err != nil {
			return portrait.Wrap(err, "cannot write the audit log")
		}
	}
	return nil
}

// ListAudit lists records oldest first (or newest first), filtered.
func (db *DB) ListAudit(ctx context.Context, f portrait.AuditFilter) ([]*portrait.AuditRecord, error) {
	q := `SELECT body, prev, hash FROM audit WHERE seq > ?`
	args := []any{f.After}
	if f.Before > 0 {
		q += ` AND seq < ?`
		args = append(args, f.Before)
	}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.Target != "" {
		q += ` AND instr(target, ?) > 0`
		args = append(args, f.Target)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, micros(f.Until))
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	order := "seq"
	if f.Newest {
		order = "seq DESC"
	}
	q += fmt.Sprintf(` ORDER BY %s LIMIT %d`, order, limit)
	rows, err := db.logR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the audit log")
	}
	defer rows.Close()
	out := []*portrait.AuditRecord{}
	for rows.Next() {
		var body, prev, hash string
		if err := rows.Scan(&body, &prev, &hash); err != nil {
			return nil, portrait.Wrap(err, "cannot read the audit log")
		}
		rec := &portrait.AuditRecord{}
		if err := json.Unmarshal([]byte(body), rec); err != nil {
			return nil, portrait.Wrap(err, "cannot read the audit log")
		}
		rec.Prev, rec.Hash = prev, hash
		out = append(out, rec)
	}
	return out, rows.Err()
}

// VerifyAudit walks the chain from the first record: each record's prev
// must be the hash before it, its hash must be that of its body, and its
// body must carry its own sequence number.
func (db *DB) VerifyAudit(ctx context.Context) (int64, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT seq, body, prev, hash FROM audit ORDER BY seq`)
	if err != nil {
		return 0, portrait.Wrap(err, "cannot read the audit log")
	}
	defer rows.Close()
	var chain portrait.AuditChain
	for rows.Next() {
		var seq int64
		var body, prev, hash string
		if err := rows.Scan(&seq, &body, &prev, &hash); err != nil {
			return chain.Verified, portrait.Wrap(err, "cannot read the audit log")
		}
		if err := chain.Next(seq, body, prev, hash); err != nil {
			return chain.Verified, err
		}
	}
	return chain.Verified, rows.Err()
}
