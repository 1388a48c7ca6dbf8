package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/linkage"
)

var _ linkage.CandidateStore = (*DB)(nil)

// lockLinkage serialises SaveCandidates: two nodes replacing the pending
// pairs at once would otherwise interleave their delete and upserts.
const lockLinkage = int64(0x706f7274_0020) // "port" 0x20

// SaveCandidates replaces the undecided pairs with those of the latest run;
// pairs someone (or the linker) decided stay listed with their decision.
func (db *DB) SaveCandidates(ctx context.Context, cs []*linkage.Candidate) error {
	// One statement upserts every row: a pair listed twice would make it
	// touch one row twice, which PostgreSQL refuses, so the last listing
	// wins as it does when the rows are written one by one.
	last := make(map[string]int, len(cs))
	for i, c := range cs {
		last[c.ID] = i
	}
	var ids []string
	var docs [][]byte
	var probs []float64
	var found []int64
	for i, c := range cs {
		if last[c.ID] != i {
			continue
		}
		doc, err := json.Marshal(db.storeCandidate(c)) // sealing
		if err != nil {
			return portrait.Wrap(err, "cannot encode candidate")
		}
		ids, docs, probs, found = append(ids, c.ID), append(docs, doc), append(probs, c.Probability), append(found, micros(c.FoundAt))
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockLinkage); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM linkage_candidates c WHERE NOT EXISTS (SELECT 1 FROM linkage_decisions d WHERE d.id = c.id)`); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO linkage_candidates (id, doc, prob, found_at)
			SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::int8[])
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, prob = excluded.prob`, ids, docs, probs, found)
		return err
	})
	if err != nil {
		return portrait.Wrap(err, "cannot save candidates")
	}
	return nil
}

const candidateQuery = `SELECT c.doc, coalesce(d.status, ''), coalesce(d.decided_by, ''), coalesce(d.decided_at, 0), coalesce(d.link_message, '')
	FROM linkage_candidates c LEFT JOIN linkage_decisions d ON d.id = c.id`

func (db *DB) scanCandidate(sc pgx.Row) (*linkage.Candidate, error) {
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
	args := []any{limit}
	switch status {
	case "":
	case linkage.Pending:
		q += ` WHERE d.status IS NULL`
	default:
		q += ` WHERE d.status = $2`
		args = append(args, status)
	}
	// COLLATE "C": ties in the order SQLite gives them (bytes), whatever
	// the database's collation.
	q += ` ORDER BY c.prob DESC, c.id COLLATE "C" LIMIT $1`
	rows, err := db.pool.Query(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot list candidates")
	}
	return out, nil
}

// Candidate returns one scored pair.
func (db *DB) Candidate(ctx context.Context, id string) (*linkage.Candidate, error) {
	c, err := db.scanCandidate(db.pool.QueryRow(ctx, candidateQuery+` WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no linkage candidate %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read candidate")
	}
	return c, nil
}

// Decide records a decision on a pair.
func (db *DB) Decide(ctx context.Context, id, status, by string, at time.Time, linkMessage string) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO linkage_decisions (id, status, decided_by, decided_at, link_message) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, decided_by = excluded.decided_by, decided_at = excluded.decided_at, link_message = excluded.link_message`,
		id, status, by, micros(at), linkMessage)
	if err != nil {
		return portrait.Wrap(err, "cannot record decision")
	}
	return nil
}

// Decisions returns every pair's decision.
func (db *DB) Decisions(ctx context.Context) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, status FROM linkage_decisions`)
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
	if err := rows.Err(); err != nil {
		return nil, portrait.Wrap(err, "cannot read decisions")
	}
	return out, nil
}

// SaveModel keeps the fitted linkage model.
func (db *DB) SaveModel(ctx context.Context, m *linkage.Model) error {
	doc, err := json.Marshal(m)
	if err != nil {
		return portrait.Wrap(err, "cannot encode the linkage model")
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO linkage_model (id, doc, saved_at) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, saved_at = excluded.saved_at`, doc, micros(db.Now())); err != nil {
		return portrait.Wrap(err, "cannot save the linkage model")
	}
	return nil
}

// LoadModel returns the saved linkage model, nil when none.
func (db *DB) LoadModel(ctx context.Context) (*linkage.Model, error) {
	var doc []byte
	err := db.pool.QueryRow(ctx, `SELECT doc FROM linkage_model WHERE id = 1`).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
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
