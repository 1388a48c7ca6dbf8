package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

// TestStoreConformanceSealed holds the store to the conformance suite with
// every identifier and trait sealed.
func TestStoreConformanceSealed(t *testing.T) {
	r := storetest.Ring(t, storetest.KeyLines(t, "k1")...)
	storetest.Run(t, func(t *testing.T) profile.Store {
		db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
		if err != nil {
			t.Fatal(err)
		}
		db.SetSealer(&datakey.Sealer{Ring: r, Levels: storetest.AllSecret{}})
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestSealedAtRest runs the sealing suite (storetest.SealedAtRest) on one
// data directory, reading every file of it (events.db, state.db, their
// WAL and shm) as raw bytes.
func TestSealedAtRest(t *testing.T) {
	storetest.SealedAtRest(t, sqliteSealHarness(t.TempDir()))
}

// TestRaisedLevelIsResealed runs the background sealing suite
// (storetest.RaisedLevelIsResealed) on one data directory.
func TestRaisedLevelIsResealed(t *testing.T) {
	storetest.RaisedLevelIsResealed(t, sqliteSealHarness(t.TempDir()))
}

func sqliteSealHarness(dir string) storetest.SealHarness {
	return storetest.SealHarness{
		Open: func(t *testing.T, s *datakey.Sealer) storetest.SealStore {
			db, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			db.SetSealer(s)
			return db
		},
		Scan: func(t *testing.T, when, proof string, needles ...string) {
			t.Helper()
			scanFiles(t, dir, when, proof, needles...)
		},
	}
}

// sealedEnv is a store with a processor over it, for the benchmarks.
type sealedEnv struct {
	dir  string
	db   *sqlite.DB
	proc *profile.Processor
	sup  *erasure.Suppressor
}

func openSealed(t testing.TB, dir string, s *datakey.Sealer) *sealedEnv {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.SetSealer(s)
	e := &sealedEnv{dir: dir, db: db}
	e.newProc()
	return e
}

func (e *sealedEnv) newProc() {
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	e.proc = profile.NewProcessor(e.db, rules)
	e.proc.Linger, e.proc.BusyLinger = 0, 0
	e.proc.Now = func() time.Time { return time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC) }
	e.proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	e.sup = &erasure.Suppressor{EventLog: e.db, Store: e.db, IdentifiersOf: e.proc.Identifiers}
}

func (e *sealedEnv) catchUp(t testing.TB) {
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

func (e *sealedEnv) send(t testing.TB, evs ...*portrait.Event) portrait.AppendResult {
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

func ev(msg, typ, user, anon string, minute int, traits, props string) *portrait.Event {
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

// scanFiles reads every file of the data directory as raw bytes and
// reports each needle found; proof must be found somewhere, or the scan
// proves nothing.
func scanFiles(t testing.TB, dir, when, proof string, needles ...string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	seen := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s: %s holds %q", when, filepath.Base(f), s)
			}
		}
		seen = seen || bytes.Contains(b, []byte(proof))
	}
	if !seen {
		t.Errorf("%s: %q is in no file of %v: the scan proves nothing", when, proof, files)
	}
}

// TestRotationLeavesNoOldKeyBytes: after rebuilds and a rotation no byte
// of any file holds the old key's prefix. Two ways it did: the refused
// values (trait_issues) were never resealed (Resealer.Value compared them
// as JSON strings), and rows rewritten by the processor and by rebuilds
// without secure_delete (the hot path) leave their old versions in the
// unused space of live pages and in reused free pages, which a rotation
// rewriting only the live rows does not reach (it ends with a VACUUM now).
func TestRotationLeavesNoOldKeyBytes(t *testing.T) {
	dir := t.TempDir()
	lines := storetest.KeyLines(t, "k1", "k2")
	levels := storetest.AllSecret{}
	e := openSealed(t, dir, &datakey.Sealer{Ring: storetest.Ring(t, lines[0]), Levels: levels})
	var evs []*portrait.Event
	for i := range 300 {
		u := "u-" + strconv.Itoa(i)
		evs = append(evs,
			ev("a"+u, portrait.EventIdentify, u, "", i%60, `{"name":"Person `+u+`","id_card":"1101011990030`+strconv.Itoa(10000+i)+`","note":"`+strings.Repeat("x", 300)+`"}`, ""),
			ev("b"+u, portrait.EventTrack, u, "", i%60, "", `{"revenue":`+strconv.Itoa(i)+`}`))
	}
	e.send(t, evs...)
	e.catchUp(t)
	ctx := context.Background()
	for range 2 { // rebuilds
		if err := e.db.ResetState(ctx); err != nil {
			t.Fatal(err)
		}
		e.newProc()
		e.catchUp(t)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	e = openSealed(t, dir, &datakey.Sealer{Ring: storetest.Ring(t, lines...), Levels: levels})
	if n, err := e.db.Reseal(ctx); err != nil || n.TraitIssues == 0 {
		t.Fatalf("rotation: %+v %v (the refused values were not resealed)", n, err)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	// The ID numbers (most with a wrong check digit: refused values,
	// sealed, with a reason) are in no file in clear either.
	scanFiles(t, dir, "rebuilt and rotated", "$sealed:k2:", "$sealed:k1:", "1101011990030100", "1101011990030101", "1101011990030102")
}

// TestKeyedSuppression runs the keyed suppression suite
// (storetest.KeyedSuppression) on one data directory.
func TestKeyedSuppression(t *testing.T) {
	storetest.KeyedSuppression(t, sqliteSealHarness(t.TempDir()))
}

// TestRetainedIsResealed runs storetest.RetainedIsResealed on one data
// directory.
func TestRetainedIsResealed(t *testing.T) {
	storetest.RetainedIsResealed(t, sqliteSealHarness(t.TempDir()))
}
