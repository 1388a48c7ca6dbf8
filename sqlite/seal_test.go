package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/sqlite"
	"github.com/portrait-cdp/portrait/sqlite/sqlitetest"
	"github.com/portrait-cdp/portrait/storetest"
)

// allSecret makes every name secret, so that every identifier the
// conformance suite writes is stored sealed.
type allSecret struct{}

func (allSecret) SecretTrait(string) bool      { return true }
func (allSecret) SecretIdentifier(string) bool { return true }

func keyRing(t *testing.T, lines ...string) *datakey.Ring {
	t.Helper()
	r, err := datakey.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func keyLine(t *testing.T, id string) string {
	t.Helper()
	l, err := datakey.NewKeyLine(id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestStoreConformanceSealed holds the store to the conformance suite with
// every identifier and trait sealed.
func TestStoreConformanceSealed(t *testing.T) {
	r := keyRing(t, keyLine(t, "k1"))
	storetest.Run(t, func(t *testing.T) profile.Store {
		db, err := sqlite.Open(context.Background(), sqlitetest.Dir(t))
		if err != nil {
			t.Fatal(err)
		}
		db.SetSealer(&datakey.Sealer{Ring: r, Levels: allSecret{}})
		t.Cleanup(func() { db.Close() })
		return db
	})
}

const (
	idNumber = "110101199003071233" // valid check digit: the cleaner keeps it
	idOther  = "320102198808174564"
	salary   = "98765431" // a trait classified secret through the API
)

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

func (e *sealedEnv) catchUp(t *testing.T) {
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

func (e *sealedEnv) send(t *testing.T, evs ...*portrait.Event) portrait.AppendResult {
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

func allProfiles(t *testing.T, db *sqlite.DB) map[string]string {
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

// scanFiles reads every file of the data directory as raw bytes and
// reports each needle found; proof must be found somewhere, or the scan
// proves nothing.
func scanFiles(t *testing.T, dir, when, proof string, needles ...string) {
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

// TestSealedAtRest: with a data key, an ID number (an identity
// identifier) and a trait classified secret through the API are in no file
// of the data directory in clear, while every read gives them back; the
// identities table still finds and merges by the ID number; a rebuild gives
// the same profiles; a rotation re-seals everything under the new key, after
// which the old key can go; a missing key is an error naming it; erasure
// still removes the person, sealed forms included.
func TestSealedAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1, k2 := keyLine(t, "k1"), keyLine(t, "k2")
	levels := &access.Classifier{}
	levels.Set(access.KindTrait, "salary", access.Secret)
	e := openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k1), Levels: levels})
	defer func() { e.db.Close() }()

	e.send(t,
		ev("m1", portrait.EventIdentify, "u-1", "", 0, `{"name":"Wang Sealed","salary":`+salary+`,"email":"wang@example.com"}`, ""),
		// Another device with the ID number, a profile of its own until u-1
		// sends the same ID number: merged through it.
		ev("m0", portrait.EventIdentify, "", "anon-2", 0, `{"city":"Nanjing","id_card":"`+idNumber+`"}`, ""),
		ev("m2", portrait.EventIdentify, "u-1", "", 1, `{"id_card":"`+idNumber+`"}`, ""),
		ev("m3", portrait.EventTrack, "u-1", "", 2, "", `{"revenue":10,"id_number":"`+idNumber+`"}`),
		ev("m4", portrait.EventIdentify, "u-2", "", 3, `{"name":"Li Other","id_card":"`+idOther+`"}`, ""),
	)
	e.catchUp(t)

	check := func(when string) {
		t.Helper()
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: idNumber})
		if err != nil {
			t.Fatalf("%s: lookup by the sealed ID number: %v", when, err)
		}
		if p.Traits["id_card"].Value != idNumber || p.Traits["salary"].Value != 98765431.0 || p.Traits["city"].Value != "南京市" {
			t.Errorf("%s: traits %+v", when, p.Traits)
		}
		ids := map[portrait.Identifier]bool{}
		for _, id := range p.Identifiers {
			ids[id] = true
		}
		if !ids[portrait.Identifier{Type: "id_card", Value: idNumber}] || !ids[portrait.Identifier{Type: portrait.IDAnonymousID, Value: "anon-2"}] {
			t.Errorf("%s: identifiers %v (anon-2 merged through the ID number?)", when, p.Identifiers)
		}
		merges, err := e.db.ProfileMerges(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		viaID := false
		for _, m := range merges {
			viaID = viaID || (m.Kind == portrait.MergeMerged && m.Identifier == portrait.Identifier{Type: "id_card", Value: idNumber})
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
		if len(evs) != 4 || !bytes.Contains(body, []byte(`"id_number":"`+idNumber+`"`)) || !bytes.Contains(body, []byte(`"salary":`+salary)) {
			t.Errorf("%s: events read back: %s", when, body)
		}
	}
	// A record-linkage candidate compares the two ID numbers.
	pa, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: idNumber})
	if err != nil {
		t.Fatal(err)
	}
	cand := &linkage.Candidate{ID: "c1", A: portrait.Identifier{Type: "id_card", Value: idNumber}, B: portrait.Identifier{Type: "id_card", Value: idOther},
		AProfile: pa.ID, BProfile: "p_b", Probability: 0.5, Status: "pending", FoundAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Fields: []linkage.Comparison{{Field: "id_card", A: idNumber, B: idOther, Level: 2}, {Field: "name", A: "Wang Sealed", B: "Li Other", Level: -1}}}
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
	scanFiles(t, dir, "live", "Wang Sealed", idNumber, idOther, salary)

	// A rebuild from the log gives the same profiles.
	live := allProfiles(t, e.db)
	if err := e.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	e.newProc()
	e.catchUp(t)
	if rebuilt := allProfiles(t, e.db); !reflect.DeepEqual(rebuilt, live) {
		t.Fatalf("rebuild differs:\n%v\n%v", rebuilt, live)
	}
	check("rebuilt")

	// Rotation: k2 added, everything re-sealed, k1 removed.
	e.db.Close()
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k1, k2), Levels: levels})
	n, err := e.db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 5 || n.Profiles != 2 || n.Identifiers != 2 || n.Merges != 1 || n.Candidates != 1 {
		t.Errorf("resealed %+v, want 5 events, 2 profiles, 2 identifiers, the merge, the candidate", n)
	}
	e.db.Close()
	scanFiles(t, dir, "rotated", "Wang Sealed", idNumber, idOther, salary, "$sealed:k1:")
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k2), Levels: levels})
	if got := allProfiles(t, e.db); !reflect.DeepEqual(got, live) {
		t.Fatalf("after rotation:\n%v\n%v", got, live)
	}
	check("rotated")
	checkCandidate("rotated")

	// The key missing: an error naming it, never garbage.
	e.db.Close()
	for _, s := range []*datakey.Sealer{{Ring: keyRing(t, k1), Levels: levels}, {}} {
		e = openSealed(t, dir, s)
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
	// the ID number is suppressed.
	e = openSealed(t, dir, &datakey.Sealer{Ring: keyRing(t, k2), Levels: levels})
	e.catchUp(t)
	svc := &erasure.Service{Proc: e.proc, Store: e.db, Suppressor: e.sup, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
	if err := e.sup.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := svc.EraseByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: idNumber}, "test", "request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["events"] != 4 {
		t.Errorf("receipt %+v", rc)
	}
	if _, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: idNumber}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the erased ID number still finds a profile: %v", err)
	}
	if p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: idOther}); err != nil || p.Traits["name"].Value != "Li Other" {
		t.Errorf("the other person: %+v %v", p, err)
	}
	if res := e.send(t, ev("m5", portrait.EventIdentify, "", "anon-9", 9, `{"id_card":"`+idNumber+`"}`, "")); res.Suppressed != 1 {
		t.Errorf("an event with the erased ID number was not suppressed: %+v", res)
	}
	e.catchUp(t)
	// The sealed forms of the erased identifier are gone too.
	forms := e.db.Sealer().IdentifierForms(portrait.Identifier{Type: "id_card", Value: idNumber})
	if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	scanFiles(t, dir, "erased", "Li Other", append(forms, "Wang Sealed", "anon-2")...)
}
