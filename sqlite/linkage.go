package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

var _ linkage.CandidateStore = (*DB)(nil)

// SaveCandidates replaces the undecided pairs with those of the latest run;
// pairs someone (or the linker) decided stay listed with their decision.
func (db *DB) SaveCandidates(ctx context.Context, cs []*linkage.Candidate) error {
	tx, err := db.logW.BeginTx(ctx, nil)
	if err != nil {
		return portrait.Wrap(err, "cannot save candidates")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM linkage_candidates WHERE id NOT IN (SELECT id FROM linkage_decisions)`); err != nil {
		return portrait.Wrap(err, "cannot save candidates")
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO linkage_candidates (id, doc, prob, found_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, prob = excluded.prob`)
	if err != nil {
		return portrait.Wrap(err, "cannot save candidates")
	}
	defer st.Close()
	for _, c := range cs {
		doc, err := json.Marshal(db.storeCandidate(c)) // sealing
		if err != nil {
			return portrait.Wrap(err, "cannot encode candidate")
		}
		if _, err := st.ExecContext(ctx, c.ID, doc, c.Probability, micros(c.FoundAt)); err != nil {
			return portrait.Wrap(err, "cannot save candidates")
		}
	}
	if err := tx.Commit(); err != nil {
		return portrait.Wrap(err, "cannot save candidates")
	}
	return nil
}

const candidateQuery = `SELECT c.doc, coalesce(d.status, ''), coalesce(d.decided_by, ''), coalesce(d.decided_at, 0), coalesce(d.link_message, '')
	FROM linkage_candidates c LEFT JOIN linkage_decisions d ON d.id = c.id`

func (db *DB) scanCandidate(sc interface{ Scan(...any) error }) (*linkage.Candidate, error) {
	var doc []byte
	var status, by, link string
	var at int64
	if err := sc.Scan(&doc, &status, &by, &at, &link); err != nil {
		return nil, err
	}
	c := &linkage.Candidate{}
	if err := json.Unmarshal(doc, c); err != nil {
		return nil, err
	}
	if err := db.openCandidate(c); err != nil { // sealing
		return nil, err
	}
	if status != "" {
		c.Status, c.DecidedBy, c.LinkMessage = status, by, link
		t := fromMicros(at)
		c.DecidedAt = &t
	}
	return c, nil
}

// Candidates lists scored pairs, most likely first; status filters
// (pending, accepted, rejected, linked; "" for all).
func (db *DB) Candidates(ctx context.Context, status string, limit int) ([]*linkage.Candidate, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := candidateQuery
	var args []any
	switch status {
	case "":
	case linkage.Pending:
		q += ` WHERE d.status IS NULL`
	default:
		q += ` WHERE d.status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY c.prob DESC, c.id LIMIT ?`
	args = append(args, limit)
	rows, err := db.logR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list candidates")
	}
	defer rows.Close()
	out := []*linkage.Candidate{}
	for rows.Next() {
		c, err := db.scanCandidate(rows)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot list candidates")
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Candidate returns one scored pair.
func (db *DB) Candidate(ctx context.Context, id string) (*linkage.Candidate, error) {
	c, err := db.scanCandidate(db.logR.QueryRowContext(ctx, candidateQuery+` WHERE c.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no linkage candidate %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read candidate")
	}
	return c, nil
}

// Decide records a decision on a pair.
func (db *DB) Decide(ctx context.Context, id, status, by string, at time.Time, linkMessage string) error {
	_, err := db.logW.ExecContext(ctx, `INSERT INTO linkage_decisions (id, status, decided_by, decided_at, link_message) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, decided_by = excluded.decided_by, decided_at = excluded.decided_at, link_message = excluded.link_message`,
		id, status, by, micros(at), linkMessage)
	if err != nil {
		return portrait.Wrap(err, "cannot record decision")
	}
	return nil
}

// Decisions returns every pair's decision.
func (db *DB) Decisions(ctx context.Context) (map[string]string, error) {
	rows, err := db.logR.QueryContext(ctx, `SELECT id, status FROM linkage_decisions`)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read decisions")
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, portrait.Wrap(err, "cannot read decisions")
		}
		out[id] = st
	}
	return out, rows.Err()
}

// SaveModel keeps the fitted linkage model.
func (db *DB) SaveModel(ctx context.Context, m *linkage.Model) error {
	doc, err := json.Marshal(m)
	if err != nil {
		return portrait.Wrap(err, "cannot encode the linkage model")
	}
	if _, err := db.logW.ExecContext(ctx, `INSERT INTO linkage_model (id, doc, saved_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, saved_at = excluded.saved_at`, doc, micros(db.Now())); err != nil {
		return portrait.Wrap(err, "cannot save the linkage model")
	}
	return nil
}

// LoadModel returns the saved linkage model, nil when none.
func (db *DB) LoadModel(ctx context.Context) (*linkage.Model, error) {
	var doc []byte
	err := db.logR.QueryRowContext(ctx, `SELECT doc FROM linkage_model WHERE id = 1`).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the linkage model")
	}
	m := &linkage.Model{}
	if err := json.Unmarshal(doc, m); err != nil {
		return nil, portrait.Wrap(err, "corrupt linkage model")
	}
	return m, nil
}

var _ linkage.JournalReader = (*DB)(nil)

// RefusedMerges lists the journal's refusals between two profiles, oldest
// first.
func (db *DB) RefusedMerges(ctx context.Context) ([]*portrait.MergeEntry, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT id, kind, into_id, from_id, id_type, id_value, message_id, event_seq, reason, at FROM merges
		WHERE kind = ? AND from_id != '' ORDER BY id`, portrait.MergeRefused)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read refused merges")
	}
	defer rows.Close()
	var out []*portrait.MergeEntry
	for rows.Next() {
		m := &portrait.MergeEntry{}
		var at int64
		if err := rows.Scan(&m.ID, &m.Kind, &m.Into, &m.From, &m.Identifier.Type, &m.Identifier.Value, &m.MessageID, &m.EventSeq, &m.Reason, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot read refused merges")
		}
		m.At = fromMicros(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read refused merges")
	}
	return out, db.openMerges(out) // sealing
}
