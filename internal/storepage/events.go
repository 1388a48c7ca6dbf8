// Package storepage pages a profile's events for both stores. A store keeps
// an index of (event time, log position) per profile and the events' bodies
// elsewhere (SQLite: another database file; PostgreSQL: the log table), so a
// page is read as positions first and bodies second, and a filter (the
// domain's, on decoded events) is applied in Go. The loop and its cursor
// are the same whatever the store; only the two reads differ.
package storepage

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/portrait-cdp/portrait"
)

// Ref is one entry of a profile's event index.
type Ref struct{ TS, Seq int64 }

// Refs reads a profile's index newest first (ts DESC, seq DESC), at most n
// entries, strictly after (ts, seq) when after is set.
type Refs func(ctx context.Context, after bool, ts, seq int64, n int) ([]Ref, error)

// Bodies reads events by log position, in any order; a position whose event
// is gone (erased, retained away) is simply missing.
type Bodies func(ctx context.Context, seqs []int64) ([]*portrait.Event, error)

// Events returns one page of a profile's events, newest first by event
// time, and the cursor of the next page ("" at the end).
func Events(ctx context.Context, p portrait.Page, refs Refs, bodies Bodies) ([]*portrait.Event, string, error) {
	limit := p.Limit
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	var ts, seq int64
	after := p.Cursor != ""
	if after {
		var err error
		if ts, seq, err = DecodeCursor(p.Cursor); err != nil {
			return nil, "", err
		}
	}
	// One more than the page tells whether there is a next one; a filter
	// reads larger batches, since many of the index's entries may not match.
	batch := limit + 1
	if !p.Filter.Empty() {
		batch = max(batch, 500)
	}
	var out []*portrait.Event
	var outRefs []Ref
	for {
		rs, err := refs(ctx, after, ts, seq, batch)
		if err != nil {
			return nil, "", err
		}
		seqs := make([]int64, len(rs))
		for i, r := range rs {
			seqs[i] = r.Seq
		}
		events, err := bodies(ctx, seqs)
		if err != nil {
			return nil, "", err
		}
		bySeq := make(map[int64]*portrait.Event, len(events))
		for _, e := range events {
			bySeq[e.Seq] = e
		}
		for _, r := range rs {
			if e, ok := bySeq[r.Seq]; ok && p.Filter.Match(e) {
				out = append(out, e)
				outRefs = append(outRefs, r)
			}
		}
		if len(out) > limit || len(rs) < batch {
			break
		}
		last := rs[len(rs)-1]
		after, ts, seq = true, last.TS, last.Seq
	}
	next := ""
	if len(out) > limit {
		last := outRefs[limit-1]
		next = EncodeCursor(last.TS, last.Seq)
		out = out[:limit]
	}
	return out, next, nil
}

// EncodeCursor is the (event time, log position) of the last event listed;
// both stores encode it alike, so a cursor survives a migration.
func EncodeCursor(ts, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts, 10) + ":" + strconv.FormatInt(seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if ts, seq, ok := strings.Cut(string(b), ":"); ok {
			n, err1 := strconv.ParseInt(ts, 10, 64)
			s, err2 := strconv.ParseInt(seq, 10, 64)
			if err1 == nil && err2 == nil {
				return n, s, nil
			}
		}
	}
	return 0, 0, portrait.Errorf(portrait.EINVALID, "invalid cursor %q", c)
}
