package datakey_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

func ring(t testing.TB, ids ...string) *datakey.Ring {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := datakey.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	r, err := datakey.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRingSealsAndOpens(t *testing.T) {
	r := ring(t, "k1", "k2")
	if r.Current() != "k2" {
		t.Fatalf("current %q, want the last key k2", r.Current())
	}
	s := r.Seal([]byte(`"110101199003071234"`), nil)
	if !strings.HasPrefix(s, "$sealed:k2:") || strings.Contains(s, "1101011990") {
		t.Fatalf("sealed form %q", s)
	}
	if s2 := r.Seal([]byte(`"110101199003071234"`), nil); s2 == s {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	b, err := r.Open(s, nil)
	if err != nil || string(b) != `"110101199003071234"` {
		t.Fatalf("open: %q %v", b, err)
	}
	// Deterministic sealing: equal for equal inputs, bound to the type.
	a1 := r.SealFixed([]byte("110101199003071234"), []byte("id_card"))
	a2 := r.SealFixed([]byte("110101199003071234"), []byte("id_card"))
	a3 := r.SealFixed([]byte("110101199003071235"), []byte("id_card"))
	if a1 != a2 || a1 == a3 {
		t.Fatalf("fixed sealing: %q %q %q", a1, a2, a3)
	}
	if _, err := r.Open(a1, []byte("passport")); err == nil {
		t.Fatal("a sealed identifier opened under another type")
	}
	// A value sealed with k1 still opens; with a key not in the ring, the
	// error names the key.
	old := ring(t, "k1")
	if _, err := r.Open(old.Seal([]byte("1"), nil), nil); err == nil {
		t.Fatal("a key with the same id but other bytes opened a value")
	}
	only1 := ring(t, "k1")
	_, err = only1.Open(s, nil)
	if err == nil || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("missing key: %v", err)
	}
	var none *datakey.Ring
	_, err = none.Open(s, nil)
	if err == nil || !strings.Contains(err.Error(), `"k2"`) || !strings.Contains(err.Error(), "no data key is configured") {
		t.Fatalf("no ring: %v", err)
	}
	// Tampering is found.
	bad := s[:len(s)-2] + "AA"
	if bad != s {
		if _, err := r.Open(bad, nil); err == nil {
			t.Fatal("a tampered value opened")
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	l1, _ := datakey.NewKeyLine("2026-01")
	l2, _ := datakey.NewKeyLine("2026-02")
	f := filepath.Join(dir, "keys")
	os.WriteFile(f, []byte("# data keys\n"+l1+"\n\n"+l2+"  # newest\n"), 0o600)
	r, err := datakey.Load(f, nil)
	if err != nil || r.Current() != "2026-02" || len(r.IDs()) != 2 {
		t.Fatalf("%v %v", r.IDs(), err)
	}
	env := func(string) string { return l1 + ";" + l2 }
	r, err = datakey.Load("", env)
	if err != nil || r.Current() != "2026-02" {
		t.Fatalf("env: %v %v", r.IDs(), err)
	}
	r, err = datakey.Load("", func(string) string { return "" })
	if r != nil || err != nil {
		t.Fatalf("nothing configured: %v %v", r, err)
	}
	for _, bad := range []string{"k1 notbase64!!", "k1 AAAA", "bad:id " + strings.Fields(l1)[1], l1 + "\n" + l1} {
		if _, err := datakey.Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

var levels = (*access.Classifier)(nil) // the defaults: ID numbers are secret

func TestSealEvent(t *testing.T) {
	s := &datakey.Sealer{Ring: ring(t, "k1"), Levels: levels}
	e := &portrait.Event{MessageID: "m1", Type: "identify", UserID: "u1", Timestamp: time.Unix(1, 0).UTC(), ReceivedAt: time.Unix(2, 0).UTC(),
		Traits:     json.RawMessage(`{"name":"张三","id_card":"110101199003071234","phone":"13800138000","nested":{"passport":{"no":"E12345678"}},"n":null}`),
		Properties: json.RawMessage(`{"items":[{"id_number":123456789012}],"note":"$sealed:k9:AAAA","x":"$plain:y"}`),
		Context:    json.RawMessage(`{"externalIds":[{"type":"id_card","id":"11010119900307999X","collection":"users"},{"type":"crm","id":"c-1"}],"traits":{"id_card":"110101199003071234"}}`),
	}
	body, _ := json.Marshal(e)
	sealed, err := s.SealEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"110101199003071234", "11010119900307999X", "E12345678", "123456789012"} {
		if bytes.Contains(sealed, []byte(secret)) {
			t.Errorf("%s in the sealed body %s", secret, sealed)
		}
	}
	for _, kept := range []string{"张三", "13800138000", `"crm","id":"c-1"`, `"n":null`, `"userId":"u1"`} {
		if !bytes.Contains(sealed, []byte(kept)) {
			t.Errorf("%s not kept in %s", kept, sealed)
		}
	}
	if !json.Valid(sealed) {
		t.Fatalf("invalid JSON: %s", sealed)
	}
	opened, err := s.OpenEvent(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var a, b portrait.Event
	json.Unmarshal(body, &a)
	json.Unmarshal(opened, &b)
	if !reflect.DeepEqual(a, b) || !bytes.Equal(opened, body) {
		t.Fatalf("round trip:\n%s\n%s", body, opened)
	}
	// Without a ring nothing is sealed, look-alikes are still escaped,
	// and a sealed body cannot be read: the error names the key.
	none := &datakey.Sealer{Levels: levels}
	plain, err := none.SealEvent(body)
	if err != nil || !bytes.Contains(plain, []byte("110101199003071234")) || !bytes.Contains(plain, []byte(`"$plain:$sealed:k9:AAAA"`)) {
		t.Fatalf("no ring: %s %v", plain, err)
	}
	if back, err := none.OpenEvent(plain); err != nil || !bytes.Equal(back, body) {
		t.Fatalf("no ring, round trip: %s %v", back, err)
	}
	if _, err := none.OpenEvent(sealed); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("opening without the key: %v", err)
	}
}

func TestSealProfile(t *testing.T) {
	s := &datakey.Sealer{Ring: ring(t, "k1"), Levels: levels}
	p := &portrait.Profile{ID: "p1",
		Traits: map[string]portrait.Trait{
			"id_card":       {Value: "110101199003071234", Source: "crm"},
			"passport_scan": {Value: map[string]any{"no": "E1", "n": 2.5}},
			"name":          {Value: "张三"},
			"odd":           {Value: "$sealed:k9:x"},
		},
		Identifiers: []portrait.Identifier{{Type: "user_id", Value: "u1"}, {Type: "id_card", Value: "110101199003071234"}},
	}
	before, _ := json.Marshal(p)
	st, err := s.SealProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(p)
	if !bytes.Equal(before, after) {
		t.Fatal("SealProfile changed its argument")
	}
	stored, _ := json.Marshal(st)
	if bytes.Contains(stored, []byte("110101199003071234")) || bytes.Contains(stored, []byte(`"E1"`)) || !bytes.Contains(stored, []byte("张三")) {
		t.Fatalf("stored %s", stored)
	}
	var back portrait.Profile
	json.Unmarshal(stored, &back)
	if err := s.OpenProfile(&back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Traits, p.Traits) || !reflect.DeepEqual(back.Identifiers, p.Identifiers) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestIdentifierForms(t *testing.T) {
	id := portrait.Identifier{Type: "id_card", Value: "110101199003071234"}
	s1 := &datakey.Sealer{Ring: ring(t, "k1"), Levels: levels}
	stored := s1.StoreIdentifier(id)
	if !strings.HasPrefix(stored, "$sealed:k1:") || stored != s1.StoreIdentifier(id) {
		t.Fatalf("stored %q", stored)
	}
	if v, err := s1.OpenIdentifier(id.Type, stored); err != nil || v != id.Value {
		t.Fatalf("open %q %v", v, err)
	}
	if got := s1.StoreIdentifier(portrait.Identifier{Type: "email", Value: "a@b.cn"}); got != "a@b.cn" {
		t.Fatalf("an email (confidential) was sealed: %q", got)
	}
	forms := s1.IdentifierForms(id)
	if len(forms) != 2 || forms[0] != id.Value || forms[1] != stored {
		t.Fatalf("forms %q", forms)
	}
	if got := (&datakey.Sealer{}).StoreIdentifier(portrait.Identifier{Type: "x", Value: "$plain:1"}); got != "$plain:$plain:1" {
		t.Fatalf("escape %q", got)
	}
}

func FuzzSealEvent(f *testing.F) {
	f.Add([]byte(`{"traits":{"id_card":"1","a":[1,{"passport":2}]},"context":{"x":"$sealed:"}}`))
	f.Add([]byte(`{"properties":{"id_number":{"a":[true,false,null]}}}`))
	r := ring(f, "k1")
	s := &datakey.Sealer{Ring: r, Levels: levels}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		sealed, err := s.SealEvent(body)
		if err != nil {
			return // not an object
		}
		if !json.Valid(sealed) {
			t.Fatalf("sealed %s is not JSON", sealed)
		}
		back, err := s.OpenEvent(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, body) {
			t.Fatalf("round trip\n%s\n%s", body, back)
		}
	})
}

// A rotation re-seals what was sealed even when the levels it has would
// not (an offline command knows no trait schema): Sticky remembers.
func TestStickyKeepsSealed(t *testing.T) {
	c := &access.Classifier{}
	c.Set(access.KindTrait, "salary", access.Secret)
	c.Set(access.KindIdentifier, "crm", access.Secret)
	l1, _ := datakey.NewKeyLine("k1")
	l2, _ := datakey.NewKeyLine("k2")
	r1, _ := datakey.Parse([]byte(l1))
	r2, err := datakey.Parse([]byte(l1 + "\n" + l2))
	if err != nil {
		t.Fatal(err)
	}
	s := &datakey.Sealer{Ring: r1, Levels: c}
	body := []byte(`{"traits":{"salary":1200,"city":"上海"},"context":{"externalIds":[{"type":"crm","id":"c-9"}]}}`)
	sealed, err := s.SealEvent(body)
	if err != nil || bytes.Contains(sealed, []byte("1200")) || bytes.Contains(sealed, []byte("c-9")) {
		t.Fatalf("%s %v", sealed, err)
	}
	sticky := &datakey.Sticky{Levels: levels} // the defaults: salary and crm are not secret
	if err := sticky.NoteEvent(sealed); err != nil {
		t.Fatal(err)
	}
	if !sticky.SecretTrait("salary") || sticky.SecretTrait("city") || !sticky.SecretIdentifier("crm") || !sticky.SecretIdentifier("id_card") {
		t.Fatal("sticky levels")
	}
	plain, err := (&datakey.Sealer{Ring: r2}).OpenEvent(sealed)
	if err != nil || !bytes.Equal(plain, body) {
		t.Fatalf("%s %v", plain, err)
	}
	again, err := (&datakey.Sealer{Ring: r2, Levels: sticky}).SealEvent(plain)
	if err != nil || bytes.Contains(again, []byte("1200")) || bytes.Contains(again, []byte("c-9")) || !bytes.Contains(again, []byte("$sealed:k2:")) {
		t.Fatalf("re-sealed %s %v", again, err)
	}
	p := &portrait.Profile{Traits: map[string]portrait.Trait{"salary": {Value: "$sealed:k1:x"}}, Identifiers: []portrait.Identifier{{Type: "crm", Value: "$sealed:k1:y"}}}
	sticky.Reset()
	sticky.NoteProfile(p)
	if !sticky.SecretTrait("salary") || !sticky.SecretIdentifier("crm") {
		t.Fatal("sticky profile")
	}
}

// A level changed through the API applies once the sealer's cache of
// level answers expires (CacheFor), not before and not later.
func TestLevelCacheExpires(t *testing.T) {
	c := &access.Classifier{}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s := &datakey.Sealer{Ring: ring(t, "k1"), Levels: c, CacheFor: 2 * time.Second, Now: func() time.Time { return now }}
	body := []byte(`{"traits":{"salary":1200}}`)
	sealedNow := func() bool {
		out, err := s.SealEvent(body)
		if err != nil {
			t.Fatal(err)
		}
		return datakey.HasSealed(out)
	}
	if sealedNow() {
		t.Fatal("salary sealed before it was classified secret")
	}
	c.Set(access.KindTrait, "salary", access.Secret)
	if sealedNow() {
		t.Fatal("the cached answer was not used")
	}
	now = now.Add(2 * time.Second)
	if !sealedNow() {
		t.Fatal("salary not sealed once the cache expired")
	}
}

// TestSealSplitEvent: a split event (profile.SplitEvent) names the
// identifier it undoes as {"via_type": T, "via_value": V}: V is sealed when
// T is secret, read back as sent, and counted in clear by ClearNames
// before (a level raised to secret reseals it).
func TestSealSplitEvent(t *testing.T) {
	s := &datakey.Sealer{Ring: ring(t, "k1"), Levels: levels}
	body := []byte(`{"messageId":"s1","type":"split","properties":{"bridge_message_id":"m3","via_type":"id_card","via_value":"110101199003071234","by":"ops"}}`)
	other := []byte(`{"messageId":"s2","type":"split","properties":{"bridge_message_id":"m3","via_type":"anonymous_id","via_value":"dev-1","by":"ops"}}`)
	if _, ids, err := datakey.ClearNames(body); err != nil || !ids["id_card"] {
		t.Fatalf("ClearNames of a split in clear: %v %v", ids, err)
	}
	sealed, err := s.SealEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("110101199003071234")) || !bytes.Contains(sealed, []byte(`"via_type":"id_card"`)) {
		t.Errorf("sealed split: %s", sealed)
	}
	if _, ids, err := datakey.ClearNames(sealed); err != nil || ids["id_card"] {
		t.Errorf("ClearNames of a sealed split: %v %v", ids, err)
	}
	if opened, err := s.OpenEvent(sealed); err != nil || !bytes.Equal(opened, body) {
		t.Errorf("round trip: %s %v", opened, err)
	}
	if kept, err := s.SealEvent(other); err != nil || !bytes.Equal(kept, other) {
		t.Errorf("a split through an identifier below secret: %s %v", kept, err)
	}
}
