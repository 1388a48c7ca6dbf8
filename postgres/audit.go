package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
)

var _ portrait.AuditLog = (*DB)(nil)

// lockAudit serialises the audit chain's appends across every process on
// the database: each record's prev must be the hash of the one committed
// before it.
const lockAudit = int64(0x706f7274_0011) // "port" 0x11

// Record appends a record to the audit chain. Records handed in at about
// the same time (every audited read writes one) are committed together,
// one transaction for the group (groupcommit); Record returns once the
// transaction holding its record has committed. The previous hash is read
// inside the transaction that holds the advisory lock, so two nodes
// recording at once still make one chain.
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
	return db.adminTx(ctx, "cannot write the audit log", func(tx pgx.Tx) error {
		return db.appendAudit(ctx, tx, recs)
	})
}

// appendAudit appends records to the chain within tx (Record's group, or
// an erasure's own transaction, which commits its record with its
// receipt). The advisory lock is held to tx's end: take it last.
func (db *DB) appendAudit(ctx context.Context, tx pgx.Tx, recs []portrait.AuditRecord) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
		return portrait.Wrap(err, "cannot lock the audit log")
	}
	var last int64
	var prev string
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	chained, err := portrait.ChainAudit(recs, last, prev, db.Now)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, c := range chained {
		b.Queue(`INSERT INTO audit (seq, at, actor, action, target, body, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.Rec.Seq, micros(c.Rec.At), c.Rec.Actor, c.Rec.Action, c.Rec.Target, c.Body, c.Prev, c.Hash)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return portrait.Wrap(err, "cannot write the audit log")
	}
	return nil
}

// ListAudit lists records oldest first (or newest first), filtered.
func (db *DB) ListAudit(ctx context.Context, f portrait.AuditFilter) ([]*portrait.AuditRecord, error) {
	q := `SELECT body, prev, hash FROM audit WHERE seq > $1`
	args := []any{f.After}
	arg := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(cond, len(args))
	}
	if f.Before > 0 {
		arg(` AND seq < $%d`, f.Before)
	}
	if f.Actor != "" {
		arg(` AND actor = $%d`, f.Actor)
	}
	if f.Action != "" {
		arg(` AND action = $%d`, f.Action)
	}
	if f.Target != "" {
		arg(` AND strpos(target, $%d) > 0`, f.Target)
	}
	if !f.Since.IsZero() {
		arg(` AND at >= $%d`, micros(f.Since))
	}
	if !f.Until.IsZero() {
		arg(` AND at < $%d`, micros(f.Until))
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
	rows, err := db.pool.Query(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read the audit log")
	}
	return out, nil
}

// VerifyAudit walks the chain from the first record: each record's prev
// must be the hash before it, its hash must be that of its body, and its
// body must carry its own sequence number.
func (db *DB) VerifyAudit(ctx context.Context) (int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, body, prev, hash FROM audit ORDER BY seq`)
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
	if err := rows.Err(); err != nil {
		return chain.Verified, portrait.Wrap(err, "cannot read the audit log")
	}
	return chain.Verified, nil
}
