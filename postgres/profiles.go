package postgres

import (
	"context"
	"errors"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/storepage"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// resolve follows aliases from a merged-away or re-numbered id to the
// profile that holds its history now.
func (db *DB) resolve(ctx context.Context, id string) (string, error) {
	for range 32 {
		var next string
		err := db.pool.QueryRow(ctx, `SELECT new_id FROM aliases WHERE old_id = $1`, id).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			return id, nil
		}
		if err != nil {
			return "", portrait.Wrap(err, "cannot read aliases")
		}
		id = next
	}
	return id, nil
}

// Profile returns a profile by id, following merges.
func (db *DB) Profile(ctx context.Context, id string) (*portrait.Profile, error) {
	rid, err := db.resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	var doc []byte
	err = db.pool.QueryRow(ctx, `SELECT doc FROM profiles WHERE id = $1`, rid).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no profile %q", id)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile")
	}
	p, err := profiledoc.Decode(doc)
	if err != nil {
		return nil, portrait.Wrap(err, "corrupt profile")
	}
	if err := db.sealer.OpenProfile(p); err != nil { // sealing
		return nil, err
	}
	return p, nil
}

// ProfileByIdentifier returns the profile that owns an identifier.
func (db *DB) ProfileByIdentifier(ctx context.Context, id portrait.Identifier) (*portrait.Profile, error) {
	var pid string
	err := db.pool.QueryRow(ctx, `SELECT profile_id FROM identities WHERE type = $1 AND value = ANY($2)`, id.Type, db.identifierForms(id)).Scan(&pid) // sealing
	if errors.Is(err, pgx.ErrNoRows) {
		// The type, never the value: this error reaches logs and other
		// callers than the one who knows the value (issue 15).
		return nil, portrait.Errorf(portrait.ENOTFOUND, "no profile has that %s", id.Type)
	}
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read identity")
	}
	return db.Profile(ctx, pid)
}

// ProfileEvents pages a profile's events, newest first by event time.
func (db *DB) ProfileEvents(ctx context.Context, profileID string, p portrait.Page) ([]*portrait.Event, string, error) {
	rid, err := db.resolve(ctx, profileID)
	if err != nil {
		return nil, "", err
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM profiles WHERE id = $1`, rid).Scan(&n); err != nil {
		return nil, "", portrait.Wrap(err, "cannot read profile")
	}
	if n == 0 {
		return nil, "", portrait.Errorf(portrait.ENOTFOUND, "no profile %q", profileID)
	}
	refs := func(ctx context.Context, after bool, ts, seq int64, n int) ([]storepage.Ref, error) {
		return db.profileEventRefs(ctx, rid, after, ts, seq, n)
	}
	return storepage.Events(ctx, p, refs, db.EventsBySeq)
}

// profileEventRefs reads a profile's event index newest first, from after
// the (ts, seq) position when after is set.
func (db *DB) profileEventRefs(ctx context.Context, rid string, after bool, ts, seq int64, limit int) ([]storepage.Ref, error) {
	q := `SELECT ts, seq FROM profile_events WHERE profile_id = $1`
	args := []any{rid}
	if after {
		q += ` AND (ts, seq) < ($2, $3) ORDER BY ts DESC, seq DESC LIMIT $4`
		args = append(args, ts, seq, limit)
	} else {
		q += ` ORDER BY ts DESC, seq DESC LIMIT $2`
		args = append(args, limit)
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	var refs []storepage.Ref
	var r storepage.Ref
	if _, err := pgx.ForEachRow(rows, []any{&r.TS, &r.Seq}, func() error {
		refs = append(refs, r)
		return nil
	}); err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	return refs, nil
}

const mergeColumns = `id, kind, into_id, from_id, id_type, id_value, message_id, event_seq, reason, at`

func scanMerges(rows pgx.Rows) ([]*portrait.MergeEntry, error) {
	out := []*portrait.MergeEntry{}
	defer rows.Close()
	for rows.Next() {
		m := &portrait.MergeEntry{}
		var at int64
		if err := rows.Scan(&m.ID, &m.Kind, &m.Into, &m.From, &m.Identifier.Type, &m.Identifier.Value, &m.MessageID, &m.EventSeq, &m.Reason, &at); err != nil {
			return nil, err
		}
		m.At = fromMicros(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ProfileMerges returns the merge journal of a profile and of every profile
// merged into it, oldest first.
func (db *DB) ProfileMerges(ctx context.Context, profileID string) ([]*portrait.MergeEntry, error) {
	p, err := db.Profile(ctx, profileID)
	if err != nil {
		return nil, err
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	rows, err := db.pool.Query(ctx, `SELECT `+mergeColumns+` FROM merges WHERE into_id = ANY($1) OR from_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read merges")
	}
	out, err := scanMerges(rows)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read merges")
	}
	if err := db.openMerges(out); err != nil { // sealing
		return nil, err
	}
	return out, nil
}

// RecentMerges lists the latest merges (two profiles became one), newest
// first.
func (db *DB) RecentMerges(ctx context.Context, limit int) ([]*portrait.MergeEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+mergeColumns+` FROM merges WHERE kind = $1 ORDER BY id DESC LIMIT $2`, portrait.MergeMerged, sqlLimit(limit))
	return db.recentMerges(rows, err)
}

// sqlLimit is a LIMIT argument meaning what it means to SQLite: a
// negative limit is none (LIMIT NULL to PostgreSQL, which refuses -1).
func sqlLimit(n int) any {
	if n < 0 {
		return nil
	}
	return n
}

func (db *DB) recentMerges(rows pgx.Rows, err error) ([]*portrait.MergeEntry, error) {
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the merge journal")
	}
	out, err := scanMerges(rows)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read the merge journal")
	}
	if err := db.openMerges(out); err != nil { // sealing
		return nil, err
	}
	// The embedded store's list does not carry the event's seq.
	for _, m := range out {
		m.EventSeq = 0
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// RefusedMerges lists the journal's refusals between two profiles, oldest
// first.
func (db *DB) RefusedMerges(ctx context.Context) ([]*portrait.MergeEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+mergeColumns+` FROM merges WHERE kind = $1 AND from_id <> '' ORDER BY id`, portrait.MergeRefused)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read refused merges")
	}
	out, err := scanMerges(rows)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read refused merges")
	}
	if err := db.openMerges(out); err != nil { // sealing
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// MergeCounts counts merge-journal entries by kind (merged, refused, ...).
func (db *DB) MergeCounts(ctx context.Context) (map[string]int64, error) {
	return db.countBy(ctx, `SELECT kind, count(*) FROM merges GROUP BY kind`)
}

// CountProfiles counts the profiles.
func (db *DB) CountProfiles(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM profiles`).Scan(&n); err != nil {
		return 0, portrait.Wrap(err, "cannot count profiles")
	}
	return n, nil
}

// AllProfiles calls fn for every profile in id order (for rebuild checks,
// exports and analyses), as of one snapshot (a repeatable-read
// transaction held for the walk, as the embedded store holds its read),
// read in pages of a thousand so that memory stays flat.
func (db *DB) AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error {
	var fnErr error
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		after, first := "", true
		for {
			var rows pgx.Rows
			var err error
			if first {
				rows, err = tx.Query(ctx, `SELECT id, doc FROM profiles ORDER BY id LIMIT 1000`)
			} else {
				rows, err = tx.Query(ctx, `SELECT id, doc FROM profiles WHERE id > $1 ORDER BY id LIMIT 1000`, after)
			}
			if err != nil {
				return err
			}
			var docs [][]byte
			var id string
			var doc []byte
			if _, err := pgx.ForEachRow(rows, []any{&id, &doc}, func() error {
				docs = append(docs, doc)
				doc = nil
				after = id
				return nil
			}); err != nil {
				return err
			}
			for _, d := range docs {
				p, err := profiledoc.Decode(d)
				if err != nil {
					return portrait.Wrap(err, "corrupt profile")
				}
				if fnErr = db.sealer.OpenProfile(p); fnErr != nil { // sealing
					return fnErr
				}
				if fnErr = fn(p); fnErr != nil {
					return fnErr
				}
			}
			if len(docs) < 1000 {
				return nil
			}
			first = false
		}
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return portrait.Wrap(err, "cannot read profiles")
	}
	return nil
}

// ProfileIDs pages through profile ids in order.
func (db *DB) ProfileIDs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT id FROM profiles WHERE id > $1 ORDER BY id LIMIT $2`, after, sqlLimit(limit))
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list profiles")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list profiles")
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func scanIssues(rows pgx.Rows, pid string) ([]*portrait.TraitIssue, error) {
	defer rows.Close()
	var out []*portrait.TraitIssue
	for rows.Next() {
		i := &portrait.TraitIssue{}
		var at int64
		if err := rows.Scan(&i.MessageID, &i.Trait, &i.Source, &i.ProfileID, &i.Value, &i.Reason, &at); err != nil {
			return nil, err
		}
		if pid != "" {
			i.ProfileID = pid
		}
		i.Time = fromMicros(at)
		out = append(out, i)
	}
	return out, rows.Err()
}

// TraitIssues lists the trait values standardizers refused, newest first.
func (db *DB) TraitIssues(ctx context.Context, source string, limit int) ([]*portrait.TraitIssue, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT message_id, trait, source, profile_id, value, reason, at FROM trait_issues`
	args := []any{}
	if source != "" {
		q += ` WHERE source = $1 ORDER BY at DESC, message_id LIMIT $2`
		args = append(args, source, limit)
	} else {
		q += ` ORDER BY at DESC, message_id LIMIT $1`
		args = append(args, limit)
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait issues")
	}
	out, err := scanIssues(rows, "")
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait issues")
	}
	for _, i := range out {
		if i.Value, err = db.sealer.OpenValue(i.Value); err != nil { // sealing
			return nil, err
		}
	}
	return out, nil
}

// EachTraitIssue counts refused trait values by source, trait and reason.
func (db *DB) EachTraitIssue(ctx context.Context, fn func(source, trait, reason string, n int64) error) error {
	rows, err := db.pool.Query(ctx, `SELECT source, trait, reason, count(*) FROM trait_issues GROUP BY source, trait, reason`)
	if err != nil {
		return portrait.Wrap(err, "cannot read trait issues")
	}
	defer rows.Close()
	for rows.Next() {
		var source, trait, reason string
		var n int64
		if err := rows.Scan(&source, &trait, &reason, &n); err != nil {
			return portrait.Wrap(err, "cannot read trait issues")
		}
		if err := fn(source, trait, reason, n); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return portrait.Wrap(err, "cannot read trait issues")
	}
	return nil
}

// ProfileTraitIssues lists the trait values the standardizers refused on
// one profile's events, newest first. Issues keep the profile id they were
// recorded under, so those of the profiles merged into it count as well.
func (db *DB) ProfileTraitIssues(ctx context.Context, profileID string, limit int) ([]*portrait.TraitIssue, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	p, err := db.Profile(ctx, profileID)
	if err != nil {
		return nil, err
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	rows, err := db.pool.Query(ctx, `SELECT message_id, trait, source, profile_id, value, reason, at FROM trait_issues
		WHERE profile_id = ANY($1) ORDER BY at DESC, message_id LIMIT $2`, ids, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait issues")
	}
	out, err := scanIssues(rows, p.ID)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait issues")
	}
	for _, i := range out {
		if i.Value, err = db.sealer.OpenValue(i.Value); err != nil { // sealing
			return nil, err
		}
	}
	if out == nil {
		out = []*portrait.TraitIssue{}
	}
	// Go's order, as the embedded store sorts (byte order of message ids,
	// whatever the database's collation).
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].Time.Equal(out[b].Time) {
			return out[a].Time.After(out[b].Time)
		}
		return out[a].MessageID < out[b].MessageID
	})
	return out, nil
}
