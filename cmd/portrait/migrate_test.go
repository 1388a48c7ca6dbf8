package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/delivery"
	"github.com/portrait-cdp/portrait/postgres"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/segment"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/tag"
)

// buildDeployment serves an embedded store on dir and gives it a little of
// everything: events through the API and the processor (identify and track,
// Chinese names, one rejected), keys, a segment made through the API with
// its history, a tag, a delivery with a run, a dead letter, account edits
// and audit records. It returns once every event is applied and the
// server is closed.
func buildDeployment(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	a := openBackupApp(t, dir)
	defer a.Close()
	for b := 0; b < 4; b++ {
		if _, err := sendBatch(a, b, 100); err != nil {
			t.Fatal(err)
		}
	}
	// One rejected event goes to quarantine.
	body := `{"batch":[{"type":"track","userId":"c-1","messageId":"bad-1","timestamp":"not a time"}]}`
	req, _ := http.NewRequest(http.MethodPost, a.HTTP.URL()+"/v1/batch", strings.NewReader(body))
	req.SetBasicAuth(backupEnv["PORTRAIT_WRITE_KEY"], "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	waitApplied(t, a.DB)

	// A segment through the API (audited as an admin's write).
	req, _ = http.NewRequest(http.MethodPost, a.HTTP.URL()+"/v1/segments", strings.NewReader(`{"name":"高价值","expression":"traits.plan == \"1\""}`))
	req.Header.Set("Authorization", "Bearer "+backupEnv["PORTRAIT_ADMIN_TOKEN"])
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("creating a segment: %s %s", res.Status, b)
	}
	db := a.DB
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	must(db.SaveTag(ctx, &tag.Definition{Name: "vip", Dimension: "value", Expression: "revenue > 100", NameZh: "贵宾"}))
	must(db.SaveTag(ctx, &tag.Definition{Name: "vip", Dimension: "value", Expression: "revenue > 200", NameZh: "贵宾"}))
	must(db.AppendSegmentEvents(ctx, []*segment.Event{{Segment: "seg_x", Profile: "p1", Kind: "enter", At: at}, {Segment: "seg_x", Profile: "p1", Kind: "exit", At: at.Add(time.Hour)}}))
	must(db.SaveDelivery(ctx, &delivery.Delivery{ID: "dl_1", Segment: "seg_x", Identifiers: []string{"email"}, EveryText: "24h", CreatedAt: at}))
	must(db.AppendDeliveryRun(ctx, &delivery.Run{Delivery: "dl_1", At: at, Rows: 3, Status: "ok"}))
	must(db.SaveDeadLetter(ctx, &segment.DeadLetter{Webhook: "wh_1", Body: []byte(`{"kind":"enter"}`), Error: "503", Attempts: 5, At: at}))
	must(db.Decide(ctx, "pair-1", "rejected", "ops", at, ""))
	for i := 0; i < 3; i++ {
		must(db.Record(ctx, portrait.AuditRecord{Actor: "ops", Action: "read", Target: fmt.Sprintf("/v1/profiles/c-%d", i)}))
	}
	waitApplied(t, a.DB)
}

// tableRows reads a table of the target as sorted canonical rows.
func tableRows(t *testing.T, conn *pgx.Conn, table string, columns []string) []string {
	t.Helper()
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	rows, err := conn.Query(context.Background(), `SELECT `+strings.Join(quoted, ", ")+` FROM `+pgx.Identifier{table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, canonicalRow(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// canonicalRow writes a row so that both stores' values of one row read
// alike: integers of any width, text and bytes by their bytes.
func canonicalRow(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		switch x := v.(type) {
		case int32:
			fmt.Fprintf(&b, "i%d|", x)
		case int64:
			fmt.Fprintf(&b, "i%d|", x)
		case float64:
			fmt.Fprintf(&b, "f%v|", x)
		case string:
			fmt.Fprintf(&b, "s%q|", x)
		case []byte:
			fmt.Fprintf(&b, "s%q|", x)
		case nil:
			b.WriteString("null|")
		default:
			fmt.Fprintf(&b, "?%T%v|", x, x)
		}
	}
	return b.String()
}

// An embedded deployment moved to PostgreSQL arrives whole: every table
// row for row, the profile documents byte for byte, the audit chain
// intact, the sequences past the copied ids; a second move into the same
// store is refused, as is a data directory a server holds.
func TestMigrateToPostgres(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	buildDeployment(t, src)
	url := pgtest.URL(t)

	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"migrate", "--data", src, "--to", url, "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	var res migrateResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err, stdout.String())
	}
	copied := map[string]int64{}
	for _, tb := range res.Tables {
		copied[tb.Table] = tb.Rows
	}
	for _, table := range []string{"events", "profiles", "profile_events", "identities", "keys", "audit", "segments", "segment_events", "tag_definitions", "quarantine", "checkpoints", "segment_delivery_runs", "segment_dead_letters"} {
		if copied[table] == 0 {
			t.Errorf("no rows of %s copied (%v)", table, copied)
		}
	}
	if copied["events"] < 400 || copied["schema_migrations"] != 0 {
		t.Errorf("copied %v", copied)
	}

	// Table by table, the same rows.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db, err := sqlite.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	var total int64
	err = db.ExportTables(ctx, func(tb sqlite.ExportTable, rows *sqlite.ExportRows) error {
		tables++
		var want []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			want = append(want, canonicalRow(vals))
		}
		sort.Strings(want)
		total += int64(len(want))
		got := tableRows(t, conn, tb.Name, tb.Columns)
		if len(got) != len(want) || copied[tb.Name] != int64(len(want)) {
			t.Errorf("%s: %d rows in PostgreSQL, %d embedded, %d reported copied", tb.Name, len(got), len(want), copied[tb.Name])
			return nil
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s differs:\n  postgres %s\n  embedded %s", tb.Name, got[i], want[i])
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tables != len(res.Tables) || total != res.Rows {
		t.Errorf("%d tables, %d rows embedded; the move reported %d, %d", tables, total, len(res.Tables), res.Rows)
	}

	// The profile documents, byte for byte.
	docs := map[string][]byte{}
	db.ExportTables(ctx, func(tb sqlite.ExportTable, rows *sqlite.ExportRows) error {
		if tb.Name != "profiles" {
			return nil
		}
		for rows.Next() {
			v, _ := rows.Values()
			row := map[string]any{}
			for i, c := range tb.Columns {
				row[c] = v[i]
			}
			docs[row["id"].(string)] = append([]byte(nil), row["doc"].([]byte)...)
		}
		return nil
	})
	pgDocs, err := conn.Query(ctx, `SELECT id, doc FROM profiles`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for pgDocs.Next() {
		var id string
		var doc []byte
		if err := pgDocs.Scan(&id, &doc); err != nil {
			t.Fatal(err)
		}
		n++
		if !bytes.Equal(doc, docs[id]) {
			t.Errorf("profile %s: %d bytes in PostgreSQL, %d embedded, not the same", id, len(doc), len(docs[id]))
		}
	}
	pgDocs.Close()
	if n != len(docs) || n < 100 {
		t.Errorf("%d profiles in PostgreSQL, %d embedded", n, len(docs))
	}
	db.Close()

	// The audit chain verifies on the target: each record follows the one
	// before and hashes to what it holds.
	audit, err := conn.Query(ctx, `SELECT seq, body, prev, hash FROM audit ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	last := ""
	for audit.Next() {
		var seq int64
		var body, prev, hash string
		if err := audit.Scan(&seq, &body, &prev, &hash); err != nil {
			t.Fatal(err)
		}
		records++
		if seq != records || prev != last || portrait.AuditHash(prev, []byte(body)) != hash {
			t.Errorf("audit record %d does not verify on PostgreSQL", seq)
		}
		last = hash
	}
	audit.Close()
	if records < 3 {
		t.Errorf("%d audit records on PostgreSQL", records)
	}

	// New rows get ids past the copied ones.
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	run1 := &delivery.Run{Delivery: "dl_1", At: time.Now(), Status: "ok"}
	if err := pg.AppendDeliveryRun(ctx, run1); err != nil || run1.ID != copied["segment_delivery_runs"]+1 {
		t.Errorf("a new delivery run got id %d (%v) after %d copied", run1.ID, err, copied["segment_delivery_runs"])
	}
	evs := []*segment.Event{{Segment: "seg_x", Profile: "p2", Kind: "enter", At: time.Now()}}
	if err := pg.AppendSegmentEvents(ctx, evs); err != nil || evs[0].ID != copied["segment_events"]+1 {
		t.Errorf("a new segment event got id %d (%v) after %d copied", evs[0].ID, err, copied["segment_events"])
	}
	if vs, err := pg.TagVersions(ctx, "vip"); err != nil || len(vs) != 2 || vs[1].Expression != "revenue > 200" {
		t.Errorf("tags on PostgreSQL: %+v %v", vs, err)
	}

	// A second move into a store that holds events is refused, and
	// leaves it as it was.
	stdout.Reset()
	err = run(ctx, []string{"migrate", "--data", src, "--to", url}, &stdout, &stderr)
	if portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), "already holds") {
		t.Errorf("a second move: %v", err)
	}
	var events int64
	conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events)
	if events != copied["events"] {
		t.Errorf("after a refused move the target holds %d events, not %d", events, copied["events"])
	}
}

func TestMigrateRefuses(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	// A directory without a store.
	if err := run(ctx, []string{"migrate", "--data", t.TempDir(), "--to", url}, io.Discard, io.Discard); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("a directory without a store: %v", err)
	}
	// Not a PostgreSQL URL.
	if err := run(ctx, []string{"migrate", "--data", t.TempDir(), "--to", "mysql://x"}, io.Discard, io.Discard); portrait.ErrorCode(err) != portrait.EINVALID {
		t.Errorf("not PostgreSQL: %v", err)
	}
	// A data directory a server is running on.
	dir := t.TempDir()
	a := openBackupApp(t, dir)
	err := run(ctx, []string{"migrate", "--data", dir, "--to", url}, io.Discard, io.Discard)
	a.Close()
	if portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), "in use") {
		t.Errorf("a directory in use: %v", err)
	}
	// A target someone already started a server on (its keys made) but
	// that holds no events: refused too, table named, nothing copied.
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := pg.SaveTag(ctx, &tag.Definition{Name: "vip", Expression: "revenue > 1"}); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"migrate", "--data", dir, "--to", url}, io.Discard, io.Discard)
	if portrait.ErrorCode(err) != portrait.ECONFLICT || !strings.Contains(portrait.ErrorMessage(err), "tag_definitions") {
		t.Errorf("a target with rows: %v", err)
	}
	if vs, _ := pg.TagVersions(ctx, "vip"); len(vs) != 1 {
		t.Errorf("the refused move changed the target: %d tag versions", len(vs))
	}
}

func TestRedactMigrateURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db": "postgres://u:***@h:5432/db",
		"postgres://u@h/db":             "postgres://u@h/db",
		"postgres://h/db":               "postgres://h/db",
	} {
		if got := redactMigrateURL(in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}
