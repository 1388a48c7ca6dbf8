package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/postgres/pgtest"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/storetest"
)

// allSecret makes every name secret, so that every identifier the
// conformance suite writes is stored sealed.
type allSecret struct{}

func (allSecret) SecretTrait(string) bool      { return true }
func (allSecret) SecretIdentifier(string) bool { return true }

func sealRing(t testing.TB, ids ...string) (*datakey.Ring, []string) {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := datakey.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	return parseRing(t, lines...), lines
}

func parseRing(t testing.TB, lines ...string) *datakey.Ring {
	t.Helper()
	r, err := datakey.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStoreConformanceSealed holds the store to the conformance suite with
// every identifier and trait sealed (the embedded store's twin, sqlite/).
func TestStoreConformanceSealed(t *testing.T) {
	r, _ := sealRing(t, "k1")
	storetest.Run(t, func(t *testing.T) profile.Store {
		db := openTest(t)
		db.SetSealer(&datakey.Sealer{Ring: r, Levels: allSecret{}})
		return db
	})
}

const (
	sealIDNumber = "110101199003071233" // valid check digit: the cleaner keeps it
	sealIDOther  = "320102198808174564"
	sealSalary   = "98765431" // a trait classified secret through the API
)

type sealedPG struct {
	db   *DB
	proc *profile.Processor
	sup  *erasure.Suppressor
}

func openSealedPG(t testing.TB, url string, s *datakey.Sealer) *sealedPG {
	t.Helper()
	db, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	db.SetSealer(s)
	e := &sealedPG{db: db}
	e.newProc()
	return e
}

func (e *sealedPG) newProc() {
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	e.proc = profile.NewProcessor(e.db, rules)
	e.proc.Linger, e.proc.BusyLinger = 0, 0
	e.proc.Now = func() time.Time { return time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC) }
	e.proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	e.sup = &erasure.Suppressor{EventLog: e.db, Store: e.db, IdentifiersOf: e.proc.Identifiers}
}

func (e *sealedPG) catchUp(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	last, err := e.db.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.CatchUp(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := e.proc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *sealedPG) send(t testing.TB, evs ...*portrait.Event) portrait.AppendResult {
	t.Helper()
	if err := e.sup.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := e.sup.Append(context.Background(), evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sealEv(msg, typ, user, anon string, minute int, traits, props string) *portrait.Event {
	at := time.Date(2026, 3, 1, 9, minute, 0, 0, time.UTC)
	e := &portrait.Event{MessageID: msg, Type: typ, Source: "crm", UserID: user, AnonymousID: anon, Timestamp: at, ReceivedAt: at}
	if traits != "" {
		e.Traits = json.RawMessage(traits)
	}
	if props != "" {
		e.Name = "Order Completed"
		e.Properties = json.RawMessage(props)
	}
	return e
}

func sealedProfiles(t testing.TB, db *DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.AllProfiles(context.Background(), func(p *portrait.Profile) error {
		p.UpdatedAt = time.Time{}
		b, _ := json.Marshal(p)
		out[p.ID] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scanColumns reads every column of every table of the store's schema as
// raw bytes (text, bytea, json alike) and reports each needle found; proof
// must be found somewhere, or the scan proves nothing.
func scanColumns(t testing.TB, db *DB, when, proof string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.pool.Query(ctx, `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
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
		rows, err := db.pool.Query(ctx, `SELECT * FROM `+tb, pgx.QueryExecModeSimpleProtocol)
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

func hexDecode(b []byte) ([]byte, error) { return hex.DecodeString(string(b)) }

// scanTableFiles rewrites the store's tables (VACUUM FULL: no dead row
// versions left), checkpoints, and reads the files of every table, its
// TOAST table and its indexes from the server's data directory, when this
// process can read them (the same machine, as root or the postgres user);
// otherwise it says so and the column scan stands alone.
func scanTableFiles(t testing.TB, db *DB, when, proof string, needles ...string) {
	t.Helper()
	ctx := context.Background()
	// The tables that hold anything (VACUUM FULL of the whole database
	// rewrites the catalogs too, which takes seconds).
	rows, err := db.pool.Query(ctx, `SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.reltuples <> 0`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `VACUUM FULL `+strings.Join(tables, ", ")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Logf("%s: no CHECKPOINT (%v): the table files may lag", when, err)
		return
	}
	var dir string
	if err := db.pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		t.Logf("%s: the data directory is not shown (%v): table files not scanned", when, err)
		return
	}
	rows, err = db.pool.Query(ctx, `WITH t AS (SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r')
		SELECT pg_relation_filepath(oid) FROM t
		UNION SELECT pg_relation_filepath(reltoastrelid) FROM t WHERE reltoastrelid <> 0
		UNION SELECT pg_relation_filepath(i.indexrelid) FROM pg_index i JOIN t ON i.indrelid = t.oid OR i.indrelid = t.reltoastrelid`)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		t.Fatal(err)
	}
	seen, read := false, 0
	for _, p := range paths {
		if p == nil {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, *p) + "*") // segments (.1) and forks
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				if read == 0 {
					t.Logf("%s: table files not readable here (%v): the column scan stands alone", when, err)
					return
				}
				t.Fatal(err)
			}
			read++
			for _, s := range needles {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s: table file %s holds %q", when, *p, s)
				}
			}
			seen = seen || bytes.Contains(b, []byte(proof))
		}
	}
	if read == 0 {
		t.Logf("%s: no table file found under %s: the column scan stands alone", when, dir)
		return
	}
	if !seen {
		t.Errorf("%s: %q is in none of %d table files: the scan proves nothing", when, proof, read)
	}
}

// TestSealedAtRest is the embedded store's TestSealedAtRest on PostgreSQL:
// with a data key, an ID number (an identity identifier), an event
// property and a trait classified secret are in no column and no table
// file in clear, while every read gives them back; the identities table
// finds and merges by the ID number; a rebuild gives the same profiles; a
// rotation re-seals everything under the new key, after which the old key
// can go; a missing key is an error naming it; erasure by the sealed ID
// number removes the person and every stored form.
func TestSealedAtRest(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	_, lines := sealRing(t, "k1", "k2")
	k1, k2 := lines[0], lines[1]
	levels := &access.Classifier{}
	levels.Set(access.KindTrait, "salary", access.Secret)
	e := openSealedPG(t, url, &datakey.Sealer{Ring: parseRing(t, k1), Levels: levels})
	defer func() { e.db.Close() }()

	e.send(t,
		sealEv("m1", portrait.EventIdentify, "u-1", "", 0, `{"name":"Wang Sealed","salary":`+sealSalary+`,"email":"wang@example.com"}`, ""),
		sealEv("m0", portrait.EventIdentify, "", "anon-2", 0, `{"city":"Nanjing","id_card":"`+sealIDNumber+`"}`, ""),
		sealEv("m2", portrait.EventIdentify, "u-1", "", 1, `{"id_card":"`+sealIDNumber+`"}`, ""),
		sealEv("m3", portrait.EventTrack, "u-1", "", 2, "", `{"revenue":10,"id_number":"`+sealIDNumber+`"}`),
		sealEv("m4", portrait.EventIdentify, "u-2", "", 3, `{"name":"Li Other","id_card":"`+sealIDOther+`"}`, ""),
	)
	e.catchUp(t)

	check := func(when string) {
		t.Helper()
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: sealIDNumber})
		if err != nil {
			t.Fatalf("%s: lookup by the sealed ID number: %v", when, err)
		}
		if p.Traits["id_card"].Value != sealIDNumber || p.Traits["salary"].Value != 98765431.0 || p.Traits["city"].Value != "南京市" {
			t.Errorf("%s: traits %+v", when, p.Traits)
		}
		ids := map[portrait.Identifier]bool{}
		for _, id := range p.Identifiers {
			ids[id] = true
		}
		if !ids[portrait.Identifier{Type: "id_card", Value: sealIDNumber}] || !ids[portrait.Identifier{Type: portrait.IDAnonymousID, Value: "anon-2"}] {
			t.Errorf("%s: identifiers %v (anon-2 merged through the ID number?)", when, p.Identifiers)
		}
		merges, err := e.db.ProfileMerges(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		viaID := false
		for _, m := range merges {
			viaID = viaID || (m.Kind == portrait.MergeMerged && m.Identifier == portrait.Identifier{Type: "id_card", Value: sealIDNumber})
		}
		if !viaID {
			b, _ := json.Marshal(merges)
			t.Errorf("%s: the merge journal does not show the merge through the ID number: %s", when, b)
		}
		evs, _, err := e.db.ProfileEvents(ctx, p.ID, portrait.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(evs)
		if len(evs) != 4 || !bytes.Contains(body, []byte(`"id_number":"`+sealIDNumber+`"`)) || !bytes.Contains(body, []byte(`"salary":`+sealSalary)) {
			t.Errorf("%s: events read back: %s", when, body)
		}
	}
	pa, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: sealIDNumber})
	if err != nil {
		t.Fatal(err)
	}
	cand := &linkage.Candidate{ID: "c1", A: portrait.Identifier{Type: "id_card", Value: sealIDNumber}, B: portrait.Identifier{Type: "id_card", Value: sealIDOther},
		AProfile: pa.ID, BProfile: "p_b", Probability: 0.5, Status: "pending", FoundAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Fields: []linkage.Comparison{{Field: "id_card", A: sealIDNumber, B: sealIDOther, Level: 2}, {Field: "name", A: "Wang Sealed", B: "Li Other", Level: -1}}}
	if err := e.db.SaveCandidates(ctx, []*linkage.Candidate{cand}); err != nil {
		t.Fatal(err)
	}
	checkCandidate := func(when string) {
		t.Helper()
		got, err := e.db.Candidate(ctx, "c1")
		if err != nil || !reflect.DeepEqual(got, cand) {
			t.Errorf("%s: candidate %+v %v", when, got, err)
		}
	}
	checkCandidate("live")
	check("live")
	secrets := []string{sealIDNumber, sealIDOther, sealSalary}
	scanColumns(t, e.db, "live", "Wang Sealed", secrets...)
	scanTableFiles(t, e.db, "live", "Wang Sealed", secrets...)

	// A rebuild from the log gives the same profiles.
	live := sealedProfiles(t, e.db)
	if err := e.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	e.newProc()
	e.catchUp(t)
	if rebuilt := sealedProfiles(t, e.db); !reflect.DeepEqual(rebuilt, live) {
		t.Fatalf("rebuild differs:\n%v\n%v", rebuilt, live)
	}
	check("rebuilt")

	// Rotation: k2 added, everything re-sealed, k1 removed.
	e.db.Close()
	e = openSealedPG(t, url, &datakey.Sealer{Ring: parseRing(t, k1, k2), Levels: levels})
	n, err := e.db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 5 || n.Profiles != 2 || n.Identifiers != 2 || n.Merges != 1 || n.Candidates != 1 {
		t.Errorf("resealed %+v, want 5 events, 2 profiles, 2 identifiers, the merge, the candidate", n)
	}
	scanColumns(t, e.db, "rotated", "Wang Sealed", append(secrets, "$sealed:k1:")...)
	scanTableFiles(t, e.db, "rotated", "Wang Sealed", append(secrets, "$sealed:k1:")...)
	e.db.Close()
	e = openSealedPG(t, url, &datakey.Sealer{Ring: parseRing(t, k2), Levels: levels})
	if got := sealedProfiles(t, e.db); !reflect.DeepEqual(got, live) {
		t.Fatalf("after rotation:\n%v\n%v", got, live)
	}
	check("rotated")
	checkCandidate("rotated")

	// The key missing: an error naming it, never garbage.
	e.db.Close()
	for _, s := range []*datakey.Sealer{{Ring: parseRing(t, k1), Levels: levels}, {}} {
		e = openSealedPG(t, url, s)
		_, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-2"})
		if err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("a profile read without its key: %v", err)
		}
		if _, err := e.db.ReadLog(ctx, 0, 10); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("the log read without its key: %v", err)
		}
		e.db.Close()
	}

	// Erasure by the sealed identifier: the person goes, the other stays,
	// the ID number is suppressed, none of its stored forms is left.
	e = openSealedPG(t, url, &datakey.Sealer{Ring: parseRing(t, k2), Levels: levels})
	e.catchUp(t)
	svc := &erasure.Service{Proc: e.proc, Store: e.db, Suppressor: e.sup, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
	if err := e.sup.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := svc.EraseByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: sealIDNumber}, "test", "request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["events"] != 4 {
		t.Errorf("receipt %+v", rc)
	}
	if _, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: sealIDNumber}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the erased ID number still finds a profile: %v", err)
	}
	if p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: sealIDOther}); err != nil || p.Traits["name"].Value != "Li Other" {
		t.Errorf("the other person: %+v %v", p, err)
	}
	if res := e.send(t, sealEv("m5", portrait.EventIdentify, "", "anon-9", 9, `{"id_card":"`+sealIDNumber+`"}`, "")); res.Suppressed != 1 {
		t.Errorf("an event with the erased ID number was not suppressed: %+v", res)
	}
	e.catchUp(t)
	forms := e.db.Sealer().IdentifierForms(portrait.Identifier{Type: "id_card", Value: sealIDNumber})
	scanColumns(t, e.db, "erased", "Li Other", append(forms, "Wang Sealed", "anon-2")...)
	scanTableFiles(t, e.db, "erased", "Li Other", append(forms, "Wang Sealed", "anon-2")...)
}
