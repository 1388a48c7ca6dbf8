package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait"
)

// sliceRows is a RowSource over rows held in memory.
type sliceRows struct {
	rows [][]any
	i    int
}

func (s *sliceRows) Next() bool             { s.i++; return s.i <= len(s.rows) }
func (s *sliceRows) Values() ([]any, error) { return s.rows[s.i-1], nil }
func (s *sliceRows) Err() error             { return nil }

// An import takes the values an embedded store holds (text in a blob
// column, an integer in a real one) and sets the sequences past the ids
// it copied.
func TestImportConvertsAndSetsSequences(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	imp, err := db.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Rollback(ctx)
	n, err := imp.Table(ctx, "events", []string{"seq", "message_id", "type", "source", "ts", "received_at", "body"}, &sliceRows{rows: [][]any{
		{int64(1), "m1", "track", "web", int64(10), int64(11), []byte(`{"a":1}`)},
		{int64(2), "m2", "track", "web", int64(10), int64(12), `{"a":2}`}, // text where bytes go
	}})
	if err != nil || n != 2 {
		t.Fatalf("events: %d %v", n, err)
	}
	if _, err := imp.Table(ctx, "linkage_candidates", []string{"id", "doc", "prob", "found_at"}, &sliceRows{rows: [][]any{
		{"c1", []byte(`{}`), int64(1), int64(5)}, // an integer where a real goes
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := imp.Table(ctx, "segment_events", []string{"id", "segment_id", "profile_id", "kind", "at", "version"}, &sliceRows{rows: [][]any{
		{int64(7), "s", "p", "enter", int64(1), int64(1)},
		{int64(41), "s", "p", "exit", int64(2), int64(2)},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := imp.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var body []byte
	if err := db.pool.QueryRow(ctx, `SELECT body FROM events WHERE seq = 2`).Scan(&body); err != nil || string(body) != `{"a":2}` {
		t.Errorf("event 2's body %q %v", body, err)
	}
	if c, err := db.Candidate(ctx, "c1"); err != nil {
		t.Errorf("candidate: %v", err)
	} else if c.ID != "" {
		t.Errorf("candidate doc read back as %+v", c)
	}
	var id int64
	if err := db.pool.QueryRow(ctx, `INSERT INTO segment_events (segment_id, profile_id, kind, at, version) VALUES ('s', 'p', 'enter', 3, 3) RETURNING id`).Scan(&id); err != nil || id != 42 {
		t.Errorf("the next segment event got id %d %v, want 42", id, err)
	}
	if err := db.pool.QueryRow(ctx, `INSERT INTO segment_dead_letters (webhook_id, body, error, attempts, at) VALUES ('w', '', '', 1, 1) RETURNING id`).Scan(&id); err != nil || id != 1 {
		t.Errorf("an empty table's next id %d %v, want 1", id, err)
	}
}

func TestImportRefuses(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	imp, err := db.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table   string
		columns []string
		rows    [][]any
		code    string
		says    string
	}{
		{"nope", []string{"a"}, nil, portrait.EINVALID, "no table"},
		{"schema_migrations", []string{"name"}, nil, portrait.EINVALID, "no table"},
		{"segments", []string{"id", "colour"}, nil, portrait.EINVALID, "no column"},
		{"segments", []string{"id", "body", "updated_at"}, [][]any{{"s1", []byte("{}"), 3.5}}, portrait.EINVALID, "row 1: column updated_at"},
	} {
		_, err := imp.Table(ctx, c.table, c.columns, &sliceRows{rows: c.rows})
		if portrait.ErrorCode(err) != c.code || !strings.Contains(portrait.ErrorMessage(err), c.says) {
			t.Errorf("%s %v: %v", c.table, c.columns, err)
		}
		// A failed COPY ends the transaction: begin again.
		imp.Rollback(ctx)
		if imp, err = db.BeginImport(ctx); err != nil {
			t.Fatal(err)
		}
	}
	imp.Rollback(ctx)

	if _, err := db.pool.Exec(ctx, `INSERT INTO events (seq, message_id, type, source, ts, received_at, body) VALUES (1, 'm', 'track', 'web', 1, 1, '\x7b7d')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BeginImport(ctx); portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), "already holds 1 events") {
		t.Errorf("into a store with events: %v", err)
	}
}

func TestImportValue(t *testing.T) {
	for _, c := range []struct {
		v    any
		kind string
		want any
		ok   bool
	}{
		{"x", "bytea", []byte("x"), true},
		{[]byte("x"), "text", "x", true},
		{int64(3), "text", "3", true},
		{3.0, "bigint", int64(3), true},
		{3.5, "bigint", nil, false},
		{"3", "bigint", nil, false},
		{int64(2), "double precision", 2.0, true},
		{nil, "bigint", nil, true},
		{int64(1), "integer", int64(1), true},
	} {
		got, ok := importValue(c.v, c.kind)
		if ok != c.ok || ok && !equalValue(got, c.want) {
			t.Errorf("importValue(%#v, %s) = %#v, %v", c.v, c.kind, got, ok)
		}
	}
}

func equalValue(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return a == b
}
