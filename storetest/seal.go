package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/account"
	"github.com/portrait-cdp/portrait/clean"
	"github.com/portrait-cdp/portrait/erasure"
	"github.com/portrait-cdp/portrait/identity"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
	"github.com/portrait-cdp/portrait/linkage"
	"github.com/portrait-cdp/portrait/profile"
	"github.com/portrait-cdp/portrait/segment"
)

// Sealing at rest (issue 15 §3, docs/privacy.md), once for both stores:
// what each store seals, how it reads it back, re-seals it and erases it
// is the same; only how the raw bytes are read differs (the files of a
// data directory, the columns and table files of a database), and that is
// the harness's.

// SealStore is a whole store with sealing at rest, as the sealing suite
// uses it.
type SealStore interface {
	EraseStore
	erasure.SuppressionStore
	erasure.Store
	SetSealer(*datakey.Sealer)
	Sealer() *datakey.Sealer
	Reseal(ctx context.Context) (*storeseal.Resealed, error)
	Compact(ctx context.Context) error
	Close() error

	SaveCandidates(ctx context.Context, cs []*linkage.Candidate) error
	Candidate(ctx context.Context, id string) (*linkage.Candidate, error)
	SaveImport(ctx context.Context, id, source, state string, summary []byte) error
	ImportSummary(ctx context.Context, id string) ([]byte, error)
	ImportSummaries(ctx context.Context) ([][]byte, error)
	ImportPage(ctx context.Context, cursor string, limit int) ([][]byte, string, error)
	SaveDeadLetter(ctx context.Context, d *segment.DeadLetter) error
	DeadLetters(ctx context.Context, webhookID string, limit int) ([]*segment.DeadLetter, error)
	SaveAccountState(ctx context.Context, seq int64, body []byte) error
	AccountState(ctx context.Context) (int64, []byte, error)
	AppendAccountEdit(ctx context.Context, ed *account.Edit) (int64, error)
	AccountEdits(ctx context.Context) ([]*account.Edit, error)
}

// SealHarness is one store opened again and again (the same data
// directory or database) and read as raw bytes.
type SealHarness struct {
	// Open opens the store with s as its sealer; the suite closes it.
	Open func(t *testing.T, s *datakey.Sealer) SealStore
	// Scan reads every byte the store keeps, with the store closed (the
	// embedded store's files, a database's columns and table files), and
	// reports each needle found; proof must be found somewhere, or the
	// scan proves nothing.
	Scan func(t *testing.T, when, proof string, needles ...string)
	// Compact, when set, replaces the store's Compact before a scan that
	// must find no replaced bytes (a scan that rewrites what it reads
	// needs none).
	Compact func(t *testing.T, db SealStore)
}

// AllSecret makes every name secret, so that every identifier and trait a
// conformance suite writes is stored sealed.
type AllSecret struct{}

func (AllSecret) SecretTrait(string) bool      { return true }
func (AllSecret) SecretIdentifier(string) bool { return true }

// KeyLines makes a new data key line for each id.
func KeyLines(t testing.TB, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		l, err := datakey.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// Ring parses data key lines into a ring.
func Ring(t testing.TB, lines ...string) *datakey.Ring {
	t.Helper()
	r, err := datakey.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Sealed values of the suite.
const (
	SealIDNumber = "110101199003071233" // valid check digit: the cleaner keeps it
	SealIDOther  = "320102198808174564"
	SealSalary   = "98765431" // a trait classified secret through the API
)

// copier is an enricher that keeps, in its private state, the last
// id_number property it saw: what a computed trait's accumulator does with
// any value (the traits, journey and needs enrichers keep copies of
// property values the same way).
type copier struct{}

func (copier) Event(p *portrait.Profile, e *portrait.Event, props map[string]any) {
	if v, ok := props["id_number"].(string); ok {
		if p.State == nil {
			p.State = map[string]json.RawMessage{}
		}
		b, _ := json.Marshal(map[string]string{"last": v})
		p.State["copier"] = b
	}
}
func (copier) Merge(keep, gone *portrait.Profile) {
	if keep.State["copier"] == nil && gone.State["copier"] != nil {
		if keep.State == nil {
			keep.State = map[string]json.RawMessage{}
		}
		keep.State["copier"] = gone.State["copier"]
	}
}
func (copier) Finish(*portrait.Profile, time.Time) {}

// sealEnv is a store opened by the harness with a processor over it.
type sealEnv struct {
	db   SealStore
	proc *profile.Processor
	sup  *erasure.Suppressor
}

func openSealEnv(t *testing.T, h SealHarness, s *datakey.Sealer) *sealEnv {
	t.Helper()
	e := &sealEnv{db: h.Open(t, s)}
	e.newProc()
	return e
}

func (e *sealEnv) newProc() {
	rules := identity.DefaultRules()
	rules.Normalize = clean.Identifier
	e.proc = profile.NewProcessor(e.db, rules)
	e.proc.Linger, e.proc.BusyLinger = 0, 0
	e.proc.Now = func() time.Time { return time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC) }
	e.proc.Standardize = clean.DefaultTraitStandardizer().Standardize
	e.proc.Enrichers = []profile.Enricher{copier{}}
	e.sup = &erasure.Suppressor{EventLog: e.db, Store: e.db, IdentifiersOf: e.proc.Identifiers}
}

func (e *sealEnv) catchUp(t *testing.T) {
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

func (e *sealEnv) send(t *testing.T, evs ...*portrait.Event) portrait.AppendResult {
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

func (e *sealEnv) close(t *testing.T) {
	t.Helper()
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// SealEvent is an event of the sealing tests.
func SealEvent(msg, typ, user, anon string, minute int, traits, props string) *portrait.Event {
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

func sealedProfiles(t *testing.T, db SealStore) map[string]string {
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

// SealedAtRest: with a data key, an ID number (an identity identifier, a
// trait, an event property), a trait classified secret through the API,
// and what the store keeps whole rather than field by field (a quarantined
// body, an import's example values, a dead letter, the accounts'
// checkpoint and journal, an enricher's private state) are in none of the
// store's raw bytes, while every read gives them back as written; the
// identities table finds and merges by the sealed ID number; a rebuild
// gives the same profiles; a rotation re-seals everything under the new
// key (a blob written before any key included), a second one rewrites no
// blob, and the old key can go; a missing key is an error naming it;
// erasure by the sealed ID number removes the person, finds them in the
// sealed blobs, and leaves none of the identifier's stored forms.
func SealedAtRest(t *testing.T, h SealHarness) {
	ctx := context.Background()
	lines := KeyLines(t, "k1", "k2")
	k1, k2 := lines[0], lines[1]
	levels := &access.Classifier{}
	levels.Set(access.KindTrait, "salary", access.Secret)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	// Before any key: a quarantined body kept in clear, which the
	// rotation seals.
	e := openSealEnv(t, h, &datakey.Sealer{})
	early := []byte(`{"userId":"u-1","type":"bogus","note":"early-in-clear"}`)
	if _, err := e.db.Append(ctx, nil, []*portrait.Rejected{{Source: "crm", Reason: "unknown type", Raw: early, ReceivedAt: at}}); err != nil {
		t.Fatal(err)
	}
	e.close(t)

	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k1), Levels: levels})
	raw := []byte(`{"userId":"u-1","traits":{"id_card":"` + SealIDNumber + `"},"type":"bogus","note":"late-quarantined"}`)
	summary := []byte(`{"id":"imp1","state":"done","issues":[{"column":"id_card","row":3,"examples":["` + SealIDNumber + `"]}]}`)
	letter := json.RawMessage(`{"profile_id":"p1","traits":{"id_card":"` + SealIDNumber + `"}}`)
	checkpoint := []byte(`{"accounts":{"a1":{"traits":{"id_card":"` + SealIDNumber + `"}}}}`)
	edit := &account.Edit{Kind: "set_trait", Account: "a1", Trait: "id_card", Value: SealIDNumber, By: "admin", At: at}
	if _, err := e.db.Append(ctx, nil, []*portrait.Rejected{{Source: "crm", Reason: "unknown type", Raw: raw, ReceivedAt: at}}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveImport(ctx, "imp1", "crm", "done", summary); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveDeadLetter(ctx, &segment.DeadLetter{Webhook: "wh1", Body: letter, Error: "the webhook answered 500", Attempts: 3, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveAccountState(ctx, 7, checkpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.AppendAccountEdit(ctx, edit); err != nil {
		t.Fatal(err)
	}
	e.send(t,
		SealEvent("m1", portrait.EventIdentify, "u-1", "", 0, `{"name":"Wang Sealed","salary":`+SealSalary+`,"email":"wang@example.com"}`, ""),
		// Another device with the ID number, a profile of its own until
		// u-1 sends the same ID number: merged through it.
		SealEvent("m0", portrait.EventIdentify, "", "anon-2", 0, `{"city":"Nanjing","id_card":"`+SealIDNumber+`"}`, ""),
		SealEvent("m2", portrait.EventIdentify, "u-1", "", 1, `{"id_card":"`+SealIDNumber+`"}`, ""),
		SealEvent("m3", portrait.EventTrack, "u-1", "", 2, "", `{"revenue":10,"id_number":"`+SealIDNumber+`"}`),
		SealEvent("m4", portrait.EventIdentify, "u-2", "", 3, `{"name":"Li Other","id_card":"`+SealIDOther+`"}`, ""),
	)
	e.catchUp(t)
	pa, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: SealIDNumber})
	if err != nil {
		t.Fatal(err)
	}
	// A record-linkage candidate compares the two ID numbers.
	cand := &linkage.Candidate{ID: "c1", A: portrait.Identifier{Type: "id_card", Value: SealIDNumber}, B: portrait.Identifier{Type: "id_card", Value: SealIDOther},
		AProfile: pa.ID, BProfile: "p_b", Probability: 0.5, Status: "pending", FoundAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Fields: []linkage.Comparison{{Field: "id_card", A: SealIDNumber, B: SealIDOther, Level: 2}, {Field: "name", A: "Wang Sealed", B: "Li Other", Level: -1}}}
	if err := e.db.SaveCandidates(ctx, []*linkage.Candidate{cand}); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: SealIDNumber})
		if err != nil {
			t.Fatalf("%s: lookup by the sealed ID number: %v", when, err)
		}
		if p.Traits["id_card"].Value != SealIDNumber || p.Traits["salary"].Value != 98765431.0 || p.Traits["city"].Value != "南京市" {
			t.Errorf("%s: traits %+v", when, p.Traits)
		}
		if got := string(p.State["copier"]); got != `{"last":"`+SealIDNumber+`"}` {
			t.Errorf("%s: enricher state %q", when, got)
		}
		ids := map[portrait.Identifier]bool{}
		for _, id := range p.Identifiers {
			ids[id] = true
		}
		if !ids[portrait.Identifier{Type: "id_card", Value: SealIDNumber}] || !ids[portrait.Identifier{Type: portrait.IDAnonymousID, Value: "anon-2"}] {
			t.Errorf("%s: identifiers %v (anon-2 merged through the ID number?)", when, p.Identifiers)
		}
		merges, err := e.db.ProfileMerges(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		viaID := false
		for _, m := range merges {
			viaID = viaID || (m.Kind == portrait.MergeMerged && m.Identifier == portrait.Identifier{Type: "id_card", Value: SealIDNumber})
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
		if len(evs) != 4 || !bytes.Contains(body, []byte(`"id_number":"`+SealIDNumber+`"`)) || !bytes.Contains(body, []byte(`"salary":`+SealSalary)) {
			t.Errorf("%s: events read back: %s", when, body)
		}
		if got, err := e.db.Candidate(ctx, "c1"); err != nil || !reflect.DeepEqual(got, cand) {
			t.Errorf("%s: candidate %+v %v", when, got, err)
		}
		// The blobs.
		q, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(q) != 2 || !bytes.Equal(q[0].Raw, early) || !bytes.Equal(q[1].Raw, raw) {
			t.Errorf("%s: quarantine %d records", when, len(q))
		}
		if s, err := e.db.ImportSummary(ctx, "imp1"); err != nil || !bytes.Equal(s, summary) {
			t.Errorf("%s: import summary %s %v", when, s, err)
		}
		if ss, err := e.db.ImportSummaries(ctx); err != nil || len(ss) != 1 || !bytes.Equal(ss[0], summary) {
			t.Errorf("%s: import summaries %v", when, err)
		}
		if pg, _, err := e.db.ImportPage(ctx, "", 10); err != nil || len(pg) != 1 || !bytes.Equal(pg[0], summary) {
			t.Errorf("%s: import page %v", when, err)
		}
		if dl, err := e.db.DeadLetters(ctx, "wh1", 10); err != nil || len(dl) != 1 || !bytes.Equal(dl[0].Body, letter) {
			t.Errorf("%s: dead letters %v", when, err)
		}
		if seq, b, err := e.db.AccountState(ctx); err != nil || seq != 7 || !bytes.Equal(b, checkpoint) {
			t.Errorf("%s: accounts checkpoint %d %s %v", when, seq, b, err)
		}
		if eds, err := e.db.AccountEdits(ctx); err != nil || len(eds) != 1 || eds[0].Value != SealIDNumber {
			t.Errorf("%s: account edits %v", when, err)
		}
	}
	check("live")

	// A rebuild from the log gives the same profiles.
	live := sealedProfiles(t, e.db)
	if err := e.db.ResetState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SaveAccountState(ctx, 7, checkpoint); err != nil { // the accounts' checkpoint is derived state too
		t.Fatal(err)
	}
	e.newProc()
	e.catchUp(t)
	if rebuilt := sealedProfiles(t, e.db); !reflect.DeepEqual(rebuilt, live) {
		t.Fatalf("rebuild differs:\n%v\n%v", rebuilt, live)
	}
	check("rebuilt")
	e.close(t)
	// Only the early quarantined body is in clear: it names no secret.
	secrets := []string{SealIDNumber, SealIDOther, SealSalary, "late-quarantined", "examples"}
	h.Scan(t, "live", "Wang Sealed", secrets...)

	// Rotation: k2 added, everything re-sealed, k1 removed.
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k1, k2), Levels: levels})
	n, err := e.db.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Events != 5 || n.Profiles != 2 || n.Identifiers != 2 || n.Merges != 1 || n.Candidates != 1 ||
		n.Quarantined != 2 || n.ImportSummaries != 1 || n.DeadLetters != 1 || n.AccountEdits != 1 || n.AccountState != 1 {
		t.Errorf("resealed %+v, want 5 events, 2 profiles, 2 identifiers, the merge, the candidate and every blob (2 quarantined)", n)
	}
	if n, err := e.db.Reseal(ctx); err != nil || n.Quarantined+n.ImportSummaries+n.DeadLetters+n.AccountEdits+n.AccountState != 0 {
		t.Errorf("a second rotation to the same key rewrote %+v %v", n, err)
	}
	e.close(t)
	h.Scan(t, "rotated", "Wang Sealed", append(secrets, "$sealed:k1:", "early-in-clear")...)
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k2), Levels: levels})
	if got := sealedProfiles(t, e.db); !reflect.DeepEqual(got, live) {
		t.Fatalf("after rotation:\n%v\n%v", got, live)
	}
	check("rotated")
	e.close(t)

	// The key missing: an error naming it, never garbage.
	for _, s := range []*datakey.Sealer{{Ring: Ring(t, k1), Levels: levels}, {}} {
		e = openSealEnv(t, h, s)
		if _, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-2"}); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("a profile read without its key: %v", err)
		}
		if _, err := e.db.ReadLog(ctx, 0, 10); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("the log read without its key: %v", err)
		}
		if _, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{}); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("the quarantine read without its key: %v", err)
		}
		if _, _, err := e.db.AccountState(ctx); err == nil || !strings.Contains(err.Error(), `data key "k2"`) {
			t.Errorf("the checkpoint read without its key: %v", err)
		}
		e.close(t)
	}

	// Erasure by the sealed identifier: the person goes, the other stays,
	// the ID number is suppressed; the sealed blobs are opened to find
	// the person: the quarantined bodies and the dead letter go, the
	// import summary stays without the value.
	e = openSealEnv(t, h, &datakey.Sealer{Ring: Ring(t, k2), Levels: levels})
	e.catchUp(t)
	svc := &erasure.Service{Proc: e.proc, Store: e.db, Suppressor: e.sup, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
	if err := e.sup.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := svc.EraseByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: SealIDNumber}, "test", "request")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Removed["events"] != 4 || rc.Removed["quarantined"] != 2 || rc.Removed["dead_letters"] != 1 || rc.Removed["import_summaries"] != 1 {
		t.Errorf("receipt %+v", rc.Removed)
	}
	if s, err := e.db.ImportSummary(ctx, "imp1"); err != nil || bytes.Contains(s, []byte(SealIDNumber)) || !bytes.Contains(s, []byte(`"[erased]"`)) {
		t.Errorf("the import summary after erasure: %s %v", s, err)
	}
	if q, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{}); err != nil || len(q) != 0 {
		t.Errorf("quarantine after erasure: %d %v", len(q), err)
	}
	if _, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: SealIDNumber}); portrait.ErrorCode(err) != portrait.ENOTFOUND {
		t.Errorf("the erased ID number still finds a profile: %v", err)
	}
	if p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "id_card", Value: SealIDOther}); err != nil || p.Traits["name"].Value != "Li Other" {
		t.Errorf("the other person: %+v %v", p, err)
	}
	if res := e.send(t, SealEvent("m5", portrait.EventIdentify, "", "anon-9", 9, `{"id_card":"`+SealIDNumber+`"}`, "")); res.Suppressed != 1 {
		t.Errorf("an event with the erased ID number was not suppressed: %+v", res)
	}
	e.catchUp(t)
	// The sealed forms of the erased identifier are gone too.
	forms := e.db.Sealer().IdentifierForms(portrait.Identifier{Type: "id_card", Value: SealIDNumber})
	if h.Compact != nil {
		h.Compact(t, e.db)
	} else if err := e.db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	h.Scan(t, "erased", "Li Other", append(forms, "Wang Sealed", "anon-2")...)
}

// RaiseStore is a SealStore that seals a raised name's stored values in
// the background and counts those still in clear.
type RaiseStore interface {
	SealStore
	storeseal.RaiseStore
	InClear(ctx context.Context, kind, name string) (map[string]int, error)
}

// RaisedLevelIsResealed: values stored in clear (a trait, and an
// identifier type with its trait of the same name) are sealed by the
// background pass once their level is raised to secret, beside a processor
// that keeps writing the same profile; the pass stops half-way (the store
// closed after one step) and resumes from its kept progress when the store
// is opened again; afterwards nothing counts in clear, every read gives
// the values back, the lookup by the sealed identifier still finds the
// profile, and no raw byte of the store holds them.
func RaisedLevelIsResealed(t *testing.T, h SealHarness) {
	ctx := context.Background()
	const (
		bonus   = "55443322"
		mail    = "raise.me@example.com"
		mail2   = "split.me@example.com"
		badMail = "bad@@raise.example"
	)
	levels := &access.Classifier{}
	ring := Ring(t, KeyLines(t, "k1")...)
	// Before any key: an import summary and a quarantined body with the
	// address, kept in clear (documents sealed whole from the key on).
	summary := []byte(`{"id":"imp-r","state":"done","issues":[{"column":"email","row":2,"examples":["` + mail + `"]}]}`)
	early := []byte(`{"userId":"u-1","type":"bogus","traits":{"email":"` + mail + `"}}`)
	e := openSealEnv(t, h, &datakey.Sealer{})
	if err := e.db.SaveImport(ctx, "imp-r", "crm", "done", summary); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Append(ctx, nil, []*portrait.Rejected{{Source: "crm", Reason: "unknown type", Raw: early, ReceivedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	open := func() (*sealEnv, RaiseStore) {
		e := openSealEnv(t, h, &datakey.Sealer{Ring: ring, Levels: levels})
		rs, ok := e.db.(RaiseStore)
		if !ok {
			t.Fatalf("%T does not reseal raised levels", e.db)
		}
		return e, rs
	}
	e, db := open()
	e.send(t,
		SealEvent("r1", portrait.EventIdentify, "u-1", "", 0, `{"name":"Raise Person","bonus":`+bonus+`,"email":"`+mail+`"}`, ""),
		SealEvent("r2", portrait.EventTrack, "u-1", "", 1, "", `{"revenue":3,"bonus":`+bonus+`}`),
		// An address the standardizer refuses: a refused value of the trait.
		SealEvent("r3", portrait.EventIdentify, "u-2", "", 2, `{"name":"Other Person","plan":"gold","email":"`+badMail+`"}`, ""),
		// A device with another address, merged into u-7 through it, and
		// the merge split again: the merge journal, the split decision
		// (its via and both sides) and the split event hold the address.
		SealEvent("r5", portrait.EventIdentify, "", "anon-7", 5, `{"email":"`+mail2+`"}`, ""),
		SealEvent("r6", portrait.EventIdentify, "u-7", "", 6, `{"name":"Split Person"}`, ""),
		SealEvent("r7", portrait.EventIdentify, "u-7", "", 7, `{"email":"`+mail2+`"}`, ""),
	)
	e.catchUp(t)
	u7, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-7"})
	if err != nil {
		t.Fatal(err)
	}
	merges, err := e.db.ProfileMerges(ctx, u7.ID)
	if err != nil {
		t.Fatal(err)
	}
	var viaMail *portrait.MergeEntry
	for _, m := range merges {
		if m.Kind == portrait.MergeMerged && m.Identifier == (portrait.Identifier{Type: "email", Value: mail2}) {
			viaMail = m
		}
	}
	if viaMail == nil {
		b, _ := json.Marshal(merges)
		t.Fatalf("no merge through the address: %s", b)
	}
	e.send(t, profile.SplitEvent("r-split", viaMail, "ops", portrait.EventKey{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}))
	e.catchUp(t)
	// A record-linkage candidate comparing the addresses.
	cand := &linkage.Candidate{ID: "c-r", A: portrait.Identifier{Type: "email", Value: mail2}, B: portrait.Identifier{Type: portrait.IDUserID, Value: "u-2"},
		AProfile: u7.ID, BProfile: "p_b", Probability: 0.5, Status: "pending", FoundAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Fields: []linkage.Comparison{{Field: "email", A: mail2, B: "other.raise@example.com", Level: 1}, {Field: "name", A: "Split Person", B: "Other Person", Level: -1}}}
	if err := e.db.SaveCandidates(ctx, []*linkage.Candidate{cand}); err != nil {
		t.Fatal(err)
	}
	jobs := []storeseal.Job{{Kind: access.KindTrait, Name: "bonus"}, {Kind: access.KindTrait, Name: "email"}, {Kind: access.KindIdentifier, Name: "email"}}
	inClear := func(j storeseal.Job) int {
		t.Helper()
		n, err := db.InClear(ctx, j.Kind, j.Name)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, v := range n {
			total += v
		}
		return total
	}
	for _, j := range jobs {
		if inClear(j) == 0 {
			t.Fatalf("%s %s: nothing in clear before the raise: the test proves nothing", j.Kind, j.Name)
		}
		levels.Set(j.Kind, j.Name, access.Secret)
		if err := db.ScheduleReseal(ctx, j.Kind, j.Name); err != nil {
			t.Fatal(err)
		}
	}
	// One step of bonus: its events are done, its profile is not.
	next, done, err := db.ResealStep(ctx, storeseal.Job{Kind: access.KindTrait, Name: "bonus", Phase: storeseal.PhaseEvents})
	if err != nil || done || next.Phase != storeseal.PhaseProfiles {
		t.Fatalf("first step: %+v %v %v", next, done, err)
	}
	if n, err := db.InClear(ctx, access.KindTrait, "bonus"); err != nil || n["events"] != 0 || n["profiles"] != 1 {
		t.Errorf("bonus after its events were sealed: %v %v", n, err)
	}
	// The processor goes on writing the person's profile meanwhile (sealed
	// by the new level).
	e.send(t, SealEvent("r4", portrait.EventTrack, "u-1", "", 3, "", `{"revenue":4}`))
	e.catchUp(t)
	e.close(t)

	// Restarted: the jobs resume where they were, and finish.
	e, db = open()
	defer func() { e.close(t) }()
	held, err := db.ResealJobs(ctx)
	if err != nil || len(held) != 3 {
		t.Fatalf("jobs after the restart: %+v %v", held, err)
	}
	for _, j := range held {
		if want := storeseal.PhaseEvents; j.Name == "bonus" && j.Phase != storeseal.PhaseProfiles || j.Name != "bonus" && j.Phase != want {
			t.Errorf("job after the restart: %+v", j)
		}
	}
	w := storeseal.NewWorker(db)
	w.Wait, w.Poll, w.Retry = 0, 0, 10*time.Millisecond
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Run(wctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := db.ResealJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs left: %+v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-stopped
	for _, j := range jobs {
		if n := inClear(j); n != 0 {
			t.Errorf("%s %s: %d values still in clear", j.Kind, j.Name, n)
		}
	}
	p, err := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "email", Value: mail})
	if err != nil {
		t.Fatalf("lookup by the sealed email: %v", err)
	}
	if p.Traits["bonus"].Value != 55443322.0 || p.Traits["email"].Value != mail || p.EventCount != 3 {
		t.Errorf("the profile after the sealing: %+v (%d events)", p.Traits, p.EventCount)
	}
	evs, _, err := e.db.ProfileEvents(ctx, p.ID, portrait.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := json.Marshal(evs); len(evs) != 3 || bytes.Count(body, []byte(`"bonus":`+bonus)) != 2 || !bytes.Contains(body, []byte(mail)) {
		t.Errorf("events after the sealing: %s", body)
	}
	// The other records of the address read back as written.
	if got, err := e.db.Candidate(ctx, "c-r"); err != nil || !reflect.DeepEqual(got, cand) {
		t.Errorf("candidate after the sealing: %+v %v", got, err)
	}
	if merges, err := e.db.ProfileMerges(ctx, u7.ID); err != nil || !slices.ContainsFunc(merges, func(m *portrait.MergeEntry) bool { return m.ID == viaMail.ID && m.Identifier == viaMail.Identifier }) {
		b, _ := json.Marshal(merges)
		t.Errorf("the merge journal after the sealing: %s %v", b, err)
	}
	if s, err := e.db.ImportSummary(ctx, "imp-r"); err != nil || !bytes.Equal(s, summary) {
		t.Errorf("import summary after the sealing: %s %v", s, err)
	}
	if q, err := e.db.ListQuarantine(ctx, portrait.QuarantineFilter{}); err != nil || len(q) != 1 || !bytes.Equal(q[0].Raw, early) {
		t.Errorf("quarantine after the sealing: %v", err)
	}
	e.close(t)
	h.Scan(t, "raised and sealed", "Raise Person", bonus, mail, mail2, badMail)
	e, db = open()
	// A processor started afresh reads the split decision back.
	e.catchUp(t)
	a, errA := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDAnonymousID, Value: "anon-7"})
	b, errB := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: portrait.IDUserID, Value: "u-7"})
	if errA != nil || errB != nil || a.ID == b.ID {
		t.Errorf("the split profiles after the sealing: %v %v", errA, errB)
	}
}
