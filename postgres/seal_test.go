package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestStoreConformanceSealed holds the store to the conformance suite with
// every identifier and trait sealed (the embedded store's twin, sqlite/).
func TestStoreConformanceSealed(t *testing.T) {
	r := storetest.Ring(t, storetest.KeyLines(t, "k1")...)
	storetest.Run(t, func(t *testing.T) profile.Store {
		db := openTest(t)
		db.SetSealer(&datakey.Sealer{Ring: r, Levels: storetest.AllSecret{}})
		return db
	})
}

// TestSealedAtRest runs the sealing suite (storetest.SealedAtRest) on one
// database, reading every column of every table as raw bytes and, after
// VACUUM FULL, the files of every table, its TOAST table and its indexes
// when the server's data directory is readable here.
func TestSealedAtRest(t *testing.T) {
	storetest.SealedAtRest(t, pgSealHarness(pgtest.URL(t)))
}

// TestRaisedLevelIsResealed runs the background sealing suite
// (storetest.RaisedLevelIsResealed) on one database.
func TestRaisedLevelIsResealed(t *testing.T) {
	storetest.RaisedLevelIsResealed(t, pgSealHarness(pgtest.URL(t)))
}

func pgSealHarness(url string) storetest.SealHarness {
	return storetest.SealHarness{
		Open: func(t *testing.T, s *datakey.Sealer) storetest.SealStore {
			db, err := Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			db.SetSealer(s)
			return db
		},
		Scan: func(t *testing.T, when, proof string, needles ...string) {
			t.Helper()
			scanDatabase(t, url, when, proof, needles...)
		},
		// The scan rewrites every table written to: the store's Compact
		// (VACUUM FULL of the whole database, catalogs included) would
		// add seconds and nothing the scan does not do.
		Compact: func(*testing.T, storetest.SealStore) {},
	}
}

// scanDatabase is scanColumns and scanTableFiles over one connection.
func scanDatabase(t testing.TB, url, when, proof string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	scanColumns(t, conn, when, proof, needles...)
	scanTableFiles(t, conn, when, proof, needles...)
}

// querier is a connection or a pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// scanColumns reads every column of every table of the store's schema as
// raw bytes (text, bytea, json alike) and reports each needle found; proof
// must be found somewhere, or the scan proves nothing.
func scanColumns(t testing.TB, db querier, when, proof string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, tb := range tables {
		rows, err := db.Query(ctx, `SELECT * FROM `+tb, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			// The simple protocol gives every value as the server's text;
			// bytea comes as hex, so raw values are read too.
			raw := rows.RawValues()
			for _, v := range raw {
				b := v
				if bytes.HasPrefix(b, []byte(`\x`)) {
					if d, err := hexDecode(b[2:]); err == nil {
						b = d
					}
				}
				for _, s := range needles {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s: table %s holds %q", when, tb, s)
					}
				}
				seen = seen || bytes.Contains(b, []byte(proof))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !seen {
		t.Errorf("%s: %q is in no column: the scan proves nothing", when, proof)
	}
}

var relFile = regexp.MustCompile(`^(\.\d+|_fsm|_vm|_init)?$`)

func hexDecode(b []byte) ([]byte, error) { return hex.DecodeString(string(b)) }

// scanTableFiles rewrites the store's tables (VACUUM FULL: no dead row
// versions left), checkpoints, and reads the files of every table, its
// TOAST table and its indexes from the server's data directory, when this
// process can read them (the same machine, as root or the postgres user);
// otherwise it says so and the column scan stands alone.
func scanTableFiles(t testing.TB, db querier, when, proof string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	// The tables written to (VACUUM FULL of the whole database rewrites
	// the catalogs too, which takes seconds): a table never written has
	// an empty heap and indexes of one page (a btree's metapage). A heap
	// a plain VACUUM truncated to nothing may still have index pages
	// holding removed keys' bytes, so the indexes are looked at too.
	rows, err := db.Query(ctx, `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r'
			AND (pg_relation_size(c.oid) > 0 OR (c.reltoastrelid <> 0 AND pg_relation_size(c.reltoastrelid) > 0)
				OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid IN (c.oid, c.reltoastrelid) AND pg_relation_size(i.indexrelid) > current_setting('block_size')::int))`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// VACUUM FULL keeps the row versions a snapshot may still see, and on
	// a server shared with other tests a transaction in another database
	// was seen to hold the horizon back for seconds: a file holding a
	// needle is rewritten and read again, a few times, before it counts.
	for attempt := 1; ; attempt++ {
		found, read, seen, ok := scanTableFilesOnce(t, db, tables, when, proof, needles...)
		if !ok {
			return
		}
		if len(found) > 0 && attempt < 8 {
			var holders string
			db.QueryRow(context.Background(), `SELECT coalesce(string_agg(datname || ':' || backend_type || ':' || coalesce(backend_xmin::text, '') || ':' || left(query, 40), '; '), '')
				FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()`).Scan(&holders)
			t.Logf("%s: attempt %d found %d needles in the table files (snapshots held: %s); again", when, attempt, len(found), holders)
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
			continue
		}
		for _, f := range found {
			t.Error(f)
		}
		if read == 0 {
			t.Logf("%s: no table file found: the column scan stands alone", when)
			return
		}
		if !seen {
			t.Errorf("%s: %q is in none of %d table files: the scan proves nothing", when, proof, read)
		}
		return
	}
}

// scanTableFilesOnce rewrites tables, checkpoints and reads the files:
// the needles found, the files read, whether proof was seen, and false
// when the files cannot be read here.
func scanTableFilesOnce(t testing.TB, db querier, tables []string, when, proof string, needles ...string) (found []string, read int, seen, ok bool) {
	t.Helper()
	ctx := context.Background()
	// VACUUM FULL keeps the row versions a snapshot may still see, and an
	// autovacuum's ANALYZE holds one: wait for the database's other
	// sessions to hold none.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var busy bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL))`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: another session still holds a snapshot: old row versions may stay", when)
			break
		}
	}
	if _, err := db.Exec(ctx, `VACUUM FULL `+strings.Join(tables, ", ")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Logf("%s: no CHECKPOINT (%v): the table files may lag", when, err)
		return nil, 0, false, false
	}
	var dir string
	if err := db.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		t.Logf("%s: the data directory is not shown (%v): table files not scanned", when, err)
		return nil, 0, false, false
	}
	rows, err := db.Query(ctx, `WITH t AS (SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r')
		SELECT pg_relation_filepath(oid), oid::regclass::text FROM t
		UNION SELECT pg_relation_filepath(reltoastrelid), reltoastrelid::regclass::text FROM t WHERE reltoastrelid <> 0
		UNION SELECT pg_relation_filepath(i.indexrelid), i.indexrelid::regclass::text FROM pg_index i JOIN t ON i.indrelid = t.oid OR i.indrelid = t.reltoastrelid`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct {
		Path *string
		Name string
	}
	rels, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rel])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		p := r.Path
		if p == nil {
			continue
		}
		// The relation's segments (.1) and forks (_fsm, _vm), not another
		// relation whose number starts with this one's.
		files, _ := filepath.Glob(filepath.Join(dir, *p) + "*")
		files = slices.DeleteFunc(files, func(f string) bool { return !relFile.MatchString(strings.TrimPrefix(f, filepath.Join(dir, *p))) })
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				if read == 0 {
					t.Logf("%s: table files not readable here (%v): the column scan stands alone", when, err)
					return nil, 0, false, false
				}
				t.Fatal(err)
			}
			read++
			for _, s := range needles {
				if bytes.Contains(b, []byte(s)) {
					found = append(found, fmt.Sprintf("%s: table file %s (%s) holds %q", when, f, r.Name, s))
				}
			}
			seen = seen || bytes.Contains(b, []byte(proof))
		}
	}
	return found, read, seen, true
}

// TestRotationWaitsForHeldOldVersions: a transaction left open in another
// session since before a rotation keeps the row versions the rotation
// replaced (old-key ciphertexts) in the table files, whatever VACUUM FULL
// does. The rotation names the session (its result and a log line) when
// it stays open past VacuumWait; when it ends within the wait, the vacuum
// runs after it and the events table's file holds no old-key ciphertext.
func TestRotationWaitsForHeldOldVersions(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	lines := storetest.KeyLines(t, "k1", "k2", "k3")
	open := func(n int) (*DB, *bytes.Buffer) {
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		db.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, lines[:n]...), Levels: storetest.AllSecret{}})
		var log bytes.Buffer
		db.Log = slog.New(slog.NewTextHandler(&log, nil))
		t.Cleanup(func() { db.Close() })
		return db, &log
	}
	db, _ := open(1)
	var evs []*portrait.Event
	for i := range 50 {
		evs = append(evs, storetest.SealEvent(fmt.Sprintf("h%d", i), portrait.EventIdentify, fmt.Sprintf("u-%d", i), "", i%60, `{"id_card":"`+storetest.SealIDNumber+`"}`, ""))
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	// hold opens a session with a snapshot taken now, kept until commit.
	hold := func() (*pgx.Conn, int) {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := c.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ`); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c, pid
	}

	// Held past the wait: reported.
	c, pid := hold()
	db, log := open(2)
	db.VacuumWait = 500 * time.Millisecond
	n, err := db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 50 || n.OldVersions == nil || !slices.ContainsFunc(n.OldVersions.Holders, func(h storeseal.Holder) bool { return h.PID == pid }) {
		t.Fatalf("rotation with a snapshot held: %+v %+v", n, n.OldVersions)
	}
	if want := fmt.Sprintf("transaction pid %d ", pid); !strings.Contains(log.String(), "old row versions may remain: ") || !strings.Contains(log.String(), want) {
		t.Errorf("the log does not say old row versions may remain, held by %q: %s", want, log.String())
	}
	c.Close(ctx)

	// Ended within the wait: vacuumed after it, nothing reported, and no
	// k2 ciphertext left in the events table's file.
	c, pid = hold()
	db, log = open(3)
	db.VacuumWait = time.Minute
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		time.Sleep(time.Second)
		c.Exec(context.Background(), `COMMIT`)
	}()
	n, err = db.Reseal(ctx)
	// The server may end the transaction (which the rotation waits for)
	// before this client has read its answer: the connection is closed
	// at cleanup only after the goroutine is done with it.
	<-committed
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 50 {
		t.Errorf("rotation after the snapshot ended: %+v", n)
	}
	if o := n.OldVersions; o != nil {
		if slices.ContainsFunc(o.Holders, func(h storeseal.Holder) bool { return h.PID == pid }) {
			t.Fatalf("the ended session is still reported: %+v", o)
		}
		// Another test's transaction on this shared server held the
		// versions too: reported, so the file may hold them.
		t.Skipf("another session held the old versions: %s", o.Note)
	}
	if want := fmt.Sprintf("transaction pid %d", pid); !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "waiting") {
		t.Errorf("the log does not say it waited for pid %d: %s", pid, log.String())
	}
	var path, dir string
	if _, err := db.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Skipf("no CHECKPOINT here (%v): the table file is not read", err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT pg_relation_filepath('events'), current_setting('data_directory')`).Scan(&path, &dir); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, path) + "*")
	files = slices.DeleteFunc(files, func(f string) bool { return !relFile.MatchString(strings.TrimPrefix(f, filepath.Join(dir, path))) })
	read := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("the table files are not readable here (%v)", err)
		}
		read++
		if bytes.Contains(b, []byte("$sealed:k2:")) {
			t.Errorf("%s holds old row versions sealed with k2", f)
		}
		if !bytes.Contains(b, []byte("$sealed:k3:")) && !strings.Contains(f, "_") {
			t.Errorf("%s holds no k3 ciphertext: the scan proves nothing", f)
		}
	}
	if read == 0 {
		t.Skip("no table file found")
	}
}

// TestKeyedSuppression runs the keyed suppression suite
// (storetest.KeyedSuppression) on one database.
func TestKeyedSuppression(t *testing.T) {
	storetest.KeyedSuppression(t, pgSealHarness(pgtest.URL(t)))
}

// rotationHolders appends 20 sealed events under k1 and returns a function
// that rotates to k2 (a short wait) and returns what it reports.
func rotationHolders(t *testing.T, url string) func() *storeseal.OldVersions {
	t.Helper()
	ctx := context.Background()
	lines := storetest.KeyLines(t, "k1", "k2")
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, lines[0]), Levels: storetest.AllSecret{}})
	var evs []*portrait.Event
	for i := range 20 {
		evs = append(evs, storetest.SealEvent(fmt.Sprintf("p%d", i), portrait.EventIdentify, fmt.Sprintf("u-%d", i), "", i, `{"id_card":"`+storetest.SealIDNumber+`"}`, ""))
	}
	if _, err := db.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	return func() *storeseal.OldVersions {
		t.Helper()
		db.SetSealer(&datakey.Sealer{Ring: storetest.Ring(t, lines...), Levels: storetest.AllSecret{}})
		db.VacuumWait = 200 * time.Millisecond
		n, err := db.Reseal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Events != 20 {
			t.Errorf("resealed %+v", n)
		}
		return n.OldVersions
	}
}

// TestRotationReportsPreparedTransactions: a prepared transaction (two-phase
// commit left pending) holds the row versions a rotation replaced like an
// open transaction that has written, but no session shows it in
// pg_stat_activity: the rotation reports it by its gid in
// old_versions_may_remain. Needs max_prepared_transactions > 0.
func TestRotationReportsPreparedTransactions(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Closed last, after the cleanups below that use it.
	t.Cleanup(func() { c.Close(context.Background()) })
	var max int
	if err := c.QueryRow(ctx, `SELECT current_setting('max_prepared_transactions')::int`).Scan(&max); err != nil {
		t.Fatal(err)
	}
	if max == 0 {
		t.Skip("max_prepared_transactions is 0 on this server: no transaction can be prepared (set it > 0 and restart the server, or point PORTRAIT_TEST_POSTGRES at one that allows it)")
	}
	rotate := rotationHolders(t, url)
	gid := fmt.Sprintf("portrait-test-%d", time.Now().UnixNano())
	// An xid taken is what holds (a prepared transaction need not write).
	for _, q := range []string{`BEGIN`, `SELECT pg_current_xact_id()`, `PREPARE TRANSACTION '` + gid + `'`} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, err := c.Exec(context.Background(), `ROLLBACK PREPARED '`+gid+`'`); err != nil {
			t.Errorf("cannot roll back the prepared transaction %s: %v", gid, err)
		}
	})
	o := rotate()
	if o == nil || !slices.ContainsFunc(o.Holders, func(h storeseal.Holder) bool { return h.Kind == storeseal.HolderPrepared && h.Name == gid }) {
		t.Fatalf("the rotation does not report the prepared transaction %s: %+v", gid, o)
	}
	if !strings.Contains(o.Note, `prepared transaction "`+gid+`"`) || !strings.Contains(o.Note, "ROLLBACK PREPARED") {
		t.Errorf("the note does not name it or what to do: %s", o.Note)
	}
}

// TestRotationReportsReplicationSlots: a logical replication slot created
// before a rotation holds the system catalogs' row versions (its
// catalog_xmin) and is reported as such, marked catalog_only: it does not
// hold the store's tables' rows (a slot's xmin, set by a physical standby
// with hot_standby_feedback, would). Needs wal_level=logical.
func TestRotationReportsReplicationSlots(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Closed last, after the cleanup below that uses it.
	t.Cleanup(func() { c.Close(context.Background()) })
	var level string
	if err := c.QueryRow(ctx, `SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Skipf("wal_level is %s on this server: pg_create_logical_replication_slot needs logical (set it and restart the server, or point PORTRAIT_TEST_POSTGRES at one that has it)", level)
	}
	rotate := rotationHolders(t, url)
	slot := fmt.Sprintf("portrait_test_%d", time.Now().UnixNano())
	// Creating a logical slot waits for every transaction of the server
	// that has written to end: bounded, since on a shared server one may
	// stay open.
	if _, err := c.Exec(ctx, `SET statement_timeout = '30s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, slot); err != nil {
		t.Skipf("cannot create a logical replication slot here (%v)", err)
	}
	t.Cleanup(func() {
		if _, err := c.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
			t.Errorf("cannot drop the replication slot %s: %v", slot, err)
		}
	})
	o := rotate()
	i := -1
	if o != nil {
		i = slices.IndexFunc(o.Holders, func(h storeseal.Holder) bool { return h.Kind == storeseal.HolderSlot && h.Name == slot })
	}
	if i < 0 {
		t.Fatalf("the rotation does not report the replication slot %s: %+v", slot, o)
	}
	if h := o.Holders[i]; !h.CatalogOnly || !strings.Contains(o.Note, `replication slot "`+slot+`"`) {
		t.Errorf("the slot is not reported as holding the catalogs only: %+v, %s", h, o.Note)
	}
}

// TestRetainedIsResealed runs storetest.RetainedIsResealed on one database.
func TestRetainedIsResealed(t *testing.T) {
	storetest.RetainedIsResealed(t, pgSealHarness(pgtest.URL(t)))
}
