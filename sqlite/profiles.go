package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/storepage"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// resolve follows aliases from a merged-away or re-numbered id to the
// profile that holds its history now.
func (db *DB) resolve(ctx context.Context, id string) (string, error) {
	for range 32 {
		var next string
		err := db.stateR.QueryRowContext(ctx, `SELECT new_id FROM aliases WHERE old_id = ?`, id).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
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
	err = db.stateR.QueryRowContext(ctx, `SELECT doc FROM profiles WHERE id = ?`, rid).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
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
	in, args := db.identifierForms(id) // sealing
	err := db.stateR.QueryRowContext(ctx, `SELECT profile_id FROM identities WHERE type = ? AND value IN `+in, args...).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
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
	if err := db.stateR.QueryRowContext(ctx, `SELECT count(*) FROM profiles WHERE id = ?`, rid).Scan(&n); err != nil {
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
	q := `SELECT ts, seq FROM profile_events WHERE profile_id = ?`
	args := []any{rid}
	if after {
		q += ` AND (ts < ? OR (ts = ? AND seq < ?))`
		args = append(args, ts, ts, seq)
	}
	q += ` ORDER BY ts DESC, seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.stateR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read profile events")
	}
	defer rows.Close()
	var refs []storepage.Ref
	for rows.Next() {
		var r storepage.Ref
		if err := rows.Scan(&r.TS, &r.Seq); err != nil {
			return nil, portrait.Wrap(err, "cannot read profile events")
		}
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// ProfileMerges returns the merge journal of a profile and of every profile
// merged into it, oldest first.
func (db *DB) ProfileMerges(ctx context.Context, profileID string) ([]*portrait.MergeEntry, error) {
	p, err := db.Profile(ctx, profileID)
	if err != nil {
		return nil, err
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	// In chunks: a profile that absorbed thousands of others would exceed
	// SQLite's limit on bound variables in one IN list.
	seen := map[int64]bool{}
	out := []*portrait.MergeEntry{}
	for start := 0; start < len(ids); start += 400 {
		chunk := ids[start:min(start+400, len(ids))]
		args := make([]any, 0, 2*len(chunk))
		for range 2 {
			for _, id := range chunk {
				args = append(args, id)
			}
		}
		ph := placeholders(len(chunk))
		rows, err := db.stateR.QueryContext(ctx, fmt.Sprintf(`SELECT id, kind, into_id, from_id, id_type, id_value, message_id, event_seq, reason, at FROM merges
			WHERE into_id IN (%s) OR from_id IN (%s)`, ph, ph), args...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read merges")
		}
		for rows.Next() {
			m := &portrait.MergeEntry{}
			var at int64
			if err := rows.Scan(&m.ID, &m.Kind, &m.Into, &m.From, &m.Identifier.Type, &m.Identifier.Value, &m.MessageID, &m.EventSeq, &m.Reason, &at); err != nil {
				rows.Close()
				return nil, portrait.Wrap(err, "cannot read merges")
			}
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			m.At = fromMicros(at)
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, portrait.Wrap(err, "cannot read merges")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, db.openMerges(out) // sealing
}

// CountProfiles counts the profiles.
func (db *DB) CountProfiles(ctx context.Context) (int, error) {
	var n int
	if err := db.stateR.QueryRowContext(ctx, `SELECT count(*) FROM profiles`).Scan(&n); err != nil {
		return 0, portrait.Wrap(err, "cannot count profiles")
	}
	return n, nil
}

// AllProfiles calls fn for every profile in id order (for rebuild checks,
// exports and analyses).
func (db *DB) AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error {
	rows, err := db.stateR.QueryContext(ctx, `SELECT doc FROM profiles ORDER BY id`)
	if err != nil {
		return portrait.Wrap(err, "cannot read profiles")
	}
	defer rows.Close()
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return portrait.Wrap(err, "cannot read profiles")
		}
		p, err := profiledoc.Decode(doc)
		if err != nil {
			return portrait.Wrap(err, "corrupt profile")
		}
		if err := db.sealer.OpenProfile(p); err != nil { // sealing
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ProfileIDs pages through profile ids in order.
func (db *DB) ProfileIDs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := db.stateR.QueryContext(ctx, `SELECT id FROM profiles WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list profiles")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, portrait.Wrap(err, "cannot list profiles")
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// TraitIssues lists the trait values standardizers refused, newest first.
func (db *DB) TraitIssues(ctx context.Context, source string, limit int) ([]*portrait.TraitIssue, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT message_id, trait, source, profile_id, value, reason, at FROM trait_issues`
	var args []any
	if source != "" {
		q += ` WHERE source = ?`
		args = append(args, source)
	}
	q += ` ORDER BY at DESC, message_id LIMIT ?`
	args = append(args, limit)
	rows, err := db.stateR.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot read trait issues")
	}
	defer rows.Close()
	var out []*portrait.TraitIssue
	for rows.Next() {
		i := &portrait.TraitIssue{}
		var at int64
		if err := rows.Scan(&i.MessageID, &i.Trait, &i.Source, &i.ProfileID, &i.Value, &i.Reason, &at); err != nil {
			return nil, portrait.Wrap(err, "cannot read trait issues")
		}
		if i.Value, err = db.sealer.OpenValue(i.Value); err != nil { // sealing
			return nil, err
		}
		i.Time = fromMicros(at)
		out = append(out, i)
	}
	return out, rows.Err()
}

// EachTraitIssue counts refused trait values by source, trait and reason.
func (db *DB) EachTraitIssue(ctx context.Context, fn func(source, trait, reason string, n int64) error) error {
	rows, err := db.stateR.QueryContext(ctx, `SELECT source, trait, reason, count(*) FROM trait_issues GROUP BY source, trait, reason`)
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
	return rows.Err()
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
	out := []*portrait.TraitIssue{}
	// Chunked to stay under SQLite's bound-variable limit on much-merged profiles.
	for start := 0; start < len(ids); start += 500 {
		var args []any
		for _, id := range ids[start:min(start+500, len(ids))] {
			args = append(args, id)
		}
		rows, err := db.stateR.QueryContext(ctx, `SELECT message_id, trait, source, value, reason, at FROM trait_issues
			WHERE profile_id IN (`+placeholders(len(args))+`) ORDER BY at DESC, message_id LIMIT ?`, append(args, limit)...)
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read trait issues")
		}
		for rows.Next() {
			i := &portrait.TraitIssue{ProfileID: p.ID}
			var at int64
			if err := rows.Scan(&i.MessageID, &i.Trait, &i.Source, &i.Value, &i.Reason, &at); err != nil {
				rows.Close()
				return nil, portrait.Wrap(err, "cannot read trait issues")
			}
			if i.Value, err = db.sealer.OpenValue(i.Value); err != nil { // sealing
				rows.Close()
				return nil, err
			}
			i.Time = fromMicros(at)
			out = append(out, i)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, portrait.Wrap(err, "cannot read trait issues")
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Time.Equal(out[b].Time) {
			return out[a].Time.After(out[b].Time)
		}
		return out[a].MessageID < out[b].MessageID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
