package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/profile"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

var eraseT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// The person to erase, in every form the scan looks for afterwards.
var erasedValues = []string{
	"u-erase-7781", "anon-erase-4410", "zhang.erasable@example.com", "Zhang.Erasable@Example.com",
	"13800138000", "138 0013 8000", "Zhang Erasable", "Hangzhou Xihu Erasable Road 9", "Zhang.Erasable@Example",
	"m-a1", "m-a2", "m-a3",
	"Erasablecity Qq", // an import example of the person's row: no identifier, found by the row's event
}

// eraseFixture writes, as the processor and the other services would, two
// people into every table that can hold a person: A (profile p-a, which
// absorbed p-a-old) and B (p-b).
func eraseFixture(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	type ev struct {
		msg, typ, user, anon, traits, pid string
	}
	for i, e := range []ev{
		{"m-a1", portrait.EventIdentify, "", "anon-erase-4410", `{"email":"Zhang.Erasable@Example.com","phone":"138 0013 8000","name":"Zhang Erasable"}`, "p-a"},
		{"m-a2", portrait.EventIdentify, "u-erase-7781", "anon-erase-4410", `{"address":"Hangzhou Xihu Erasable Road 9","email":"Zhang.Erasable@Example"}`, "p-a"},
		{"m-a3", portrait.EventTrack, "u-erase-7781", "", "", "p-a"},
		{"m-b1", portrait.EventIdentify, "u-keep-1", "", `{"email":"li.kept@example.com","name":"Li Kept"}`, "p-b"},
		{"m-b2", portrait.EventTrack, "u-keep-1", "", "", "p-b"},
	} {
		at := eraseT0.Add(time.Duration(i) * time.Minute)
		x := &portrait.Event{MessageID: e.msg, Type: e.typ, Source: "web", UserID: e.user, AnonymousID: e.anon, Timestamp: at, ReceivedAt: at}
		if e.traits != "" {
			x.Traits = json.RawMessage(e.traits)
		}
		if e.typ == portrait.EventTrack {
			x.Name = "Order Completed"
			x.Properties = json.RawMessage(`{"note":"gift for ` + map[string]string{"p-a": "Zhang Erasable", "p-b": "Li Kept"}[e.pid] + `"}`)
		}
		body, _ := json.Marshal(x)
		seq := int64(i + 1)
		exec(`INSERT INTO events (seq, message_id, type, source, ts, received_at, body) VALUES ($1, $2, $3, 'web', $4, $4, $5)`, seq, e.msg, e.typ, micros(at), body)
		exec(`INSERT INTO profile_events (profile_id, ts, seq) VALUES ($1, $2, $3)`, e.pid, micros(at), seq)
	}
	put := func(p *portrait.Profile) {
		t.Helper()
		doc, err := profiledoc.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		exec(`INSERT INTO profiles (id, doc, updated_at) VALUES ($1, $2, 0)`, p.ID, doc)
		for _, id := range p.Identifiers {
			exec(`INSERT INTO identities (type, value, profile_id) VALUES ($1, $2, $3)`, id.Type, id.Value, p.ID)
		}
	}
	trait := func(v any, msg string) portrait.Trait {
		return portrait.Trait{Value: v, Source: "web", Time: eraseT0, MessageID: msg}
	}
	put(&portrait.Profile{ID: "p-a", MergedFrom: []string{"p-a-old"}, EventCount: 3, FirstSeen: eraseT0, LastSeen: eraseT0,
		Identifiers: []portrait.Identifier{{Type: "anonymous_id", Value: "anon-erase-4410"}, {Type: "email", Value: "zhang.erasable@example.com"}, {Type: "phone", Value: "13800138000"}, {Type: "user_id", Value: "u-erase-7781"}},
		Traits:      map[string]portrait.Trait{"name": trait("Zhang Erasable", "m-a1"), "address": trait("Hangzhou Xihu Erasable Road 9", "m-a2")}})
	put(&portrait.Profile{ID: "p-b", EventCount: 2, FirstSeen: eraseT0, LastSeen: eraseT0,
		Identifiers: []portrait.Identifier{{Type: "email", Value: "li.kept@example.com"}, {Type: "user_id", Value: "u-keep-1"}},
		Traits:      map[string]portrait.Trait{"name": trait("Li Kept", "m-b1")}})
	exec(`INSERT INTO aliases (old_id, new_id) VALUES ('p-a-old', 'p-a')`)
	exec(`INSERT INTO refused (type, value, profile_id) VALUES ('email', 'zhang.erasable@example.com', 'p-a'), ('email', 'li.kept@example.com', 'p-b')`)
	exec(`INSERT INTO merges (kind, into_id, from_id, id_type, id_value, message_id, at) VALUES
		('merged', 'p-a', 'p-a-old', 'user_id', 'u-erase-7781', 'm-a2', 1),
		('refused', 'p-b', '', 'anonymous_id', 'anon-erase-4410', 'm-b1', 2),
		('merged', 'p-b', 'p-b-old', 'user_id', 'u-keep-1', 'm-b2', 3)`)
	exec(`INSERT INTO trait_issues (message_id, trait, source, profile_id, value, reason, at) VALUES
		('m-a2', 'email', 'web', 'p-a', 'Zhang.Erasable@Example', 'not an email', 1),
		('m-b1', 'phone', 'web', 'p-b', '12', 'too short', 1)`)
	exec(`INSERT INTO retracted (message_id) VALUES ('m-a1'), ('m-b2')`)
	exec(`INSERT INTO checkpoints (name, seq, message_id) VALUES ('profiles', 3, 'm-a3')`)
	exec(`INSERT INTO splits (message_id, bridge, via_type, via_value) VALUES ('m-b2', 'p-b', 'user_id', 'u-keep-1')`)
	quarantineRow(t, db, "web", "bad timestamp", []byte(`{"userId":"u-erase-7781","timestamp":"yesterday"}`), eraseT0, "web:erase")
	quarantineRow(t, db, "web", "bad timestamp", []byte(`{"userId":"u-keep-1","timestamp":"yesterday"}`), eraseT0, "web:keep")
	exec(`INSERT INTO imports (id, source, state, summary, updated_at) VALUES ('imp-1', 'crm', 'done', $1, 1)`,
		[]byte(`{"examples":[{"row":3,"field":"email","value":"zhang.erasable@example.com","reason":"duplicate"},{"row":4,"value":"li.kept@example.com","reason":"duplicate"},`+
			`{"row":5,"field":"trait:city","value":"Erasablecity Qq","reason":"city: not a known city","message_id":"m-a3"},{"row":6,"field":"trait:city","value":"Keptcity Qq","reason":"city: not a known city","message_id":"m-b1"}]}`))
	exec(`INSERT INTO segment_events (segment_id, profile_id, kind, at, version) VALUES ('vip', 'p-a', 'enter', 1, 1), ('vip', 'p-a-old', 'exit', 1, 1), ('vip', 'p-b', 'enter', 1, 1)`)
	exec(`INSERT INTO linkage_candidates (id, doc, prob, found_at) VALUES ('c1', '{"a":"p-a","b":"p-x"}', 0.9, 1), ('c2', '{"a":"p-b","b":"p-y"}', 0.9, 1)`)
	exec(`INSERT INTO linkage_decisions (id, status, decided_by, decided_at) VALUES ('c1', 'accepted', 'ops', 1), ('c2', 'rejected', 'ops', 1)`)
	exec(`INSERT INTO segment_dead_letters (webhook_id, body, error, attempts, at) VALUES
		('w1', '{"profile":{"email":"zhang.erasable@example.com"}}', 'HTTP 503', 3, 1),
		('w1', '{"profile":{"email":"li.kept@example.com"}}', 'HTTP 503', 3, 1)`)
}

// scanSchema looks for each value in every text and bytea column of every
// table of the schema, and returns "table.column: value" for each hit.
func scanSchema(t *testing.T, db *DB, values []string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.pool.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type IN ('text', 'bytea', 'character varying', 'json', 'jsonb')
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 40 {
		t.Fatalf("only %d columns to scan: the scan would prove little", len(cols))
	}
	var hits []string
	for _, c := range cols {
		expr := fmt.Sprintf(`position(convert_to($1, 'UTF8') IN %q) > 0`, c.column)
		if c.typ != "bytea" {
			expr = fmt.Sprintf(`strpos(%q::text, $1) > 0`, c.column)
		}
		for _, v := range values {
			var n int
			if err := db.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %q WHERE %s`, c.table, expr), v).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				hits = append(hits, c.table+"."+c.column+": "+v)
			}
		}
	}
	return hits
}

// TestEraseLeavesNoTrace erases one person of two and then reads every
// text and bytea column of every table: none of the person's identifiers,
// values or message ids remains; the other person is untouched; the log
// keeps a tombstone at each erased sequence number; the receipt and the
// suppressions are kept.
func TestEraseLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	eraseFixture(t, db)
	if hits := scanSchema(t, db, erasedValues); len(hits) < len(erasedValues) {
		t.Fatalf("before erasure the scan finds only %v: it would prove nothing", hits)
	}
	identifiersOf := func(e *portrait.Event) []portrait.Identifier {
		var out []portrait.Identifier
		if e.UserID != "" {
			out = append(out, portrait.Identifier{Type: "user_id", Value: e.UserID})
		}
		if e.AnonymousID != "" {
			out = append(out, portrait.Identifier{Type: "anonymous_id", Value: e.AnonymousID})
		}
		var tr struct{ Email string }
		if json.Unmarshal(e.Traits, &tr) == nil && tr.Email != "" {
			out = append(out, portrait.Identifier{Type: "email", Value: strings.ToLower(tr.Email)})
		}
		return out
	}
	at := eraseT0.Add(48 * time.Hour)
	rc, err := db.EraseProfile(ctx, profile.Erasure{ID: "er-1", ProfileID: "p-a-old", By: "admin", Reason: "art. 17", At: at, IdentifiersOf: identifiersOf})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"events": 3, "quarantined": 1, "import_summaries": 1, "segment_history": 2, "linkage_candidates": 1,
		"linkage_decisions": 1, "dead_letters": 1, "profiles": 2, "identifiers": 5, "import_examples": 1}
	for k, n := range want {
		if rc.Removed[k] != n {
			t.Errorf("receipt: removed %s = %d, want %d (%v)", k, rc.Removed[k], n, rc.Removed)
		}
	}
	if rc.ProfileID != "p-a" || fmt.Sprint(rc.MergedIDs) != "[p-a-old]" || !rc.At.Equal(at) || rc.Hash != profile.ReceiptHash(rc) || len(rc.Suppressed) != 5 {
		t.Errorf("receipt: %+v", rc)
	}

	if hits := scanSchema(t, db, erasedValues); len(hits) > 0 {
		t.Errorf("after erasure the person is still in: %v", hits)
	}
	// The other person is all there.
	kept := []string{"u-keep-1", "li.kept@example.com", "Li Kept", "m-b1", "m-b2", "p-b-old", "Keptcity Qq"}
	found := map[string]bool{}
	for _, h := range scanSchema(t, db, kept) {
		found[h[strings.Index(h, ": ")+2:]] = true
	}
	if len(found) != len(kept) {
		t.Errorf("the other person lost values: found only %v of %v", found, kept)
	}
	var doc []byte
	if err := db.pool.QueryRow(ctx, `SELECT doc FROM profiles WHERE id = 'p-b'`).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	if p, err := profiledoc.Decode(doc); err != nil || p.Traits["name"].Value != "Li Kept" || len(p.Identifiers) != 2 {
		t.Errorf("the other profile: %+v %v", p, err)
	}
	for q, n := range map[string]int{
		`SELECT count(*) FROM profiles`:                                1,
		`SELECT count(*) FROM identities`:                              2,
		`SELECT count(*) FROM profile_events`:                          2,
		`SELECT count(*) FROM aliases`:                                 0,
		`SELECT count(*) FROM refused`:                                 1,
		`SELECT count(*) FROM merges`:                                  2, // p-b's refusal stays, its identifier blanked
		`SELECT count(*) FROM merges WHERE id_value = ''`:              1,
		`SELECT count(*) FROM retracted`:                               1,
		`SELECT count(*) FROM trait_issues`:                            1,
		`SELECT count(*) FROM quarantine_keys`:                         1,
		`SELECT count(*) FROM segment_events`:                          1,
		`SELECT count(*) FROM linkage_decisions`:                       1,
		`SELECT count(*) FROM events`:                                  5,
		`SELECT count(*) FROM events WHERE type = '$erased'`:           3,
		`SELECT count(*) FROM events WHERE source = '$erased'`:         3,
		`SELECT count(*) FROM events WHERE message_id LIKE 'erased:%'`: 3,
		`SELECT count(*) FROM events WHERE type = '$erased' AND ts = 0 AND received_at = 0 AND seq <= 3`: 3,
	} {
		var got int
		if err := db.pool.QueryRow(ctx, q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("%s: %d, want %d", q, got, n)
		}
	}
	// The checkpoint names the tombstone now, so a restart can still
	// check that the state was built from this log.
	var cp string
	db.pool.QueryRow(ctx, `SELECT message_id FROM checkpoints WHERE name = 'profiles'`).Scan(&cp)
	if cp != profile.TombstoneID("m-a3") {
		t.Errorf("checkpoint message %q, want the tombstone's", cp)
	}
	var tomb []byte
	db.pool.QueryRow(ctx, `SELECT body FROM events WHERE seq = 1`).Scan(&tomb)
	if string(tomb) != `{"messageId":"`+profile.TombstoneID("m-a1")+`","receivedAt":"1970-01-01T00:00:00Z","source":"$erased","timestamp":"1970-01-01T00:00:00Z","type":"$erased"}` {
		t.Errorf("tombstone body %s", tomb)
	}
	var sum []byte
	db.pool.QueryRow(ctx, `SELECT summary FROM imports WHERE id = 'imp-1'`).Scan(&sum)
	if !json.Valid(sum) || !strings.Contains(string(sum), `"value":"[erased]"`) || !strings.Contains(string(sum), "li.kept@example.com") {
		t.Errorf("import summary after erasure: %s", sum)
	}

	// The receipt and the suppressions are kept.
	receipts, err := db.Erasures(ctx, 10)
	if err != nil || len(receipts) != 1 || receipts[0].Hash != rc.Hash || receipts[0].Removed["events"] != 3 {
		t.Errorf("receipts: %+v %v", receipts, err)
	}
	sups, err := db.Suppressions(ctx)
	if err != nil || len(sups) != 5 {
		t.Fatalf("suppressions: %+v %v", sups, err)
	}
	var hashes []string
	for _, s := range sups {
		hashes = append(hashes, s.Hash)
		if s.ErasureID != "er-1" || !s.At.Equal(at) {
			t.Errorf("suppression %+v", s)
		}
	}
	sort.Strings(hashes)
	wantHashes := append([]string(nil), rc.Suppressed...)
	sort.Strings(wantHashes)
	if fmt.Sprint(hashes) != fmt.Sprint(wantHashes) {
		t.Errorf("suppressed %v, receipt %v", hashes, wantHashes)
	}
	email := portrait.SuppressionHash(portrait.Identifier{Type: "email", Value: "zhang.erasable@example.com"})
	if err := db.CountSuppressed(ctx, map[string]int64{email: 2, "unknown": 5}); err != nil {
		t.Fatal(err)
	}
	if err := db.CountSuppressed(ctx, map[string]int64{email: 1}); err != nil {
		t.Fatal(err)
	}
	sups, _ = db.Suppressions(ctx)
	for _, s := range sups {
		if s.Hash == email && s.Dropped != 3 {
			t.Errorf("dropped %d, want 3", s.Dropped)
		}
	}
	if ok, err := db.Unsuppress(ctx, email); !ok || err != nil {
		t.Errorf("unsuppress: %v %v", ok, err)
	}
	if ok, err := db.Unsuppress(ctx, email); ok || err != nil {
		t.Errorf("unsuppress twice: %v %v", ok, err)
	}

	// Erased is gone: the profile cannot be erased again.
	if _, err := db.EraseProfile(ctx, profile.Erasure{ID: "er-2", ProfileID: "p-a", At: at}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("erasing again: %v", err)
	}
	// The touched tables were vacuumed (partitions of profiles too): no
	// dead row of the person waits for autovacuum.
	if err := db.vacuumErased(ctx); err != nil {
		t.Fatal(err)
	}
	var notVacuumed []string
	// (A partitioned table has no storage of its own: its partitions are
	// what is vacuumed.)
	rows, err := db.pool.Query(ctx, `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.last_vacuum IS NULL AND c.relkind <> 'p' AND s.relname = ANY($1) ORDER BY 1`,
		append(erasedTables, "profiles_p0", "profile_events_p15"))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		rows.Scan(&r)
		notVacuumed = append(notVacuumed, r)
	}
	rows.Close()
	if len(notVacuumed) > 0 {
		t.Errorf("not vacuumed: %v", notVacuumed)
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
}

// An erasure that fails half-way leaves nothing changed: the tombstones,
// the deletions and the receipt are one transaction.
func TestEraseIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	eraseFixture(t, db)
	// A receipt with this id already exists: the last write fails.
	if _, err := db.pool.Exec(ctx, `INSERT INTO erasures (id, profile_id, at, receipt) VALUES ('er-1', 'x', 0, '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EraseProfile(ctx, profile.Erasure{ID: "er-1", ProfileID: "p-a", At: eraseT0}); err == nil {
		t.Fatal("the erasure succeeded with a duplicate receipt id")
	}
	for q, n := range map[string]int{
		`SELECT count(*) FROM events WHERE type = '$erased'`: 0,
		`SELECT count(*) FROM quarantine`:                    2,
		`SELECT count(*) FROM suppressed`:                    0,
		`SELECT count(*) FROM profiles`:                      2,
	} {
		var got int
		db.pool.QueryRow(ctx, q).Scan(&got)
		if got != n {
			t.Errorf("%s: %d, want %d", q, got, n)
		}
	}
}

// filesHolding lists the relations of the database (tables, indexes,
// TOAST) whose data files contain v, after a checkpoint has written every page.
// It reads the files through the server (pg_read_binary_file), so it needs
// a superuser, as the machine's test server gives; elsewhere it skips.
func filesHolding(t *testing.T, db *DB, v string) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Skipf("cannot checkpoint (not a superuser?): %v", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT relname FROM (
			SELECT relname, f, (pg_stat_file(f, true)).size AS size FROM (
				SELECT relname, pg_relation_filepath(oid) AS f FROM pg_class WHERE relkind IN ('r', 'i', 't', 'm')) x
			WHERE f IS NOT NULL) y
		WHERE size > 0 AND position($1::bytea IN coalesce(pg_read_binary_file(f, 0, size, true), '')) > 0 ORDER BY relname`, []byte(v))
	if err != nil {
		t.Skipf("cannot read the data files (not a superuser?): %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		t.Skipf("cannot read the data files: %v", err)
	}
	return out
}

// What the bytes on disk hold: the erasure's plain VACUUM makes the
// person's rows unreachable and their space reusable, but may leave their
// bytes in the pages' free space; Compact (VACUUM FULL) rewrites every
// table and index, and then no data file of the database holds any of the
// person's values, while the other person's are still found (the scan
// sees what it looks for). The write-ahead log is outside this: see
// docs/erasure.md.
func TestCompactLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	eraseFixture(t, db)
	if len(filesHolding(t, db, "Zhang Erasable")) == 0 {
		t.Fatal("before erasure no data file holds the person: the scan proves nothing")
	}
	if _, err := db.EraseProfile(ctx, profile.Erasure{ID: "er-1", ProfileID: "p-a", At: eraseT0}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, v := range erasedValues {
		if fs := filesHolding(t, db, v); len(fs) > 0 {
			left = append(left, fmt.Sprintf("%s in %v", v, fs))
		}
	}
	t.Logf("after the erasure's VACUUM, still in the data files' free space: %v", left)
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, v := range erasedValues {
		if fs := filesHolding(t, db, v); len(fs) > 0 {
			t.Errorf("after Compact, %q is in %v", v, fs)
		}
	}
	if len(filesHolding(t, db, "Li Kept")) == 0 {
		t.Error("after Compact the other person is in no file: the scan proves nothing")
	}
}
