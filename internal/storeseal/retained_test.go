package storeseal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
	"github.com/portrait-cdp/portrait/internal/storeseal"
)

func ring(t *testing.T, ids ...string) *datakey.Ring {
	t.Helper()
	var text []byte
	for _, id := range ids {
		line, err := datakey.NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		text = append(text, line+"\n"...)
	}
	r, err := datakey.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRetainedProfileSealedWhole: a carried-forward event's profile
// document is sealed whole with a ring (no level names it), opened by
// OpenEvent, resealed under a new key by a rotation, and sealed by a
// rotation when it was written before any key; other events are left as
// they are.
func TestRetainedProfileSealedWhole(t *testing.T) {
	doc := []byte(`{"id":"p1","traits":{"id_card":{"v":"110105198507151238"}}}`)
	props, _ := json.Marshal(map[string]any{"profile": doc, "identities": []map[string]string{{"type": "user_id", "value": "u1"}}})
	body, _ := json.Marshal(&portrait.Event{MessageID: "~retained:1", Type: portrait.EventRetained, Source: portrait.SourceRetention, Properties: props})
	b64 := func(b []byte) []byte { s, _ := json.Marshal(b); return s[1 : len(s)-1] }
	r1 := ring(t, "k1")
	s1 := &datakey.Sealer{Ring: r1}

	// Without a ring: as it was.
	if got, err := storeseal.SealRetained(&datakey.Sealer{}, body); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("no ring: %s %v", got, err)
	}
	// Another event type: as it was.
	other := bytes.Replace(body, []byte(portrait.EventRetained), []byte("track"), 1)
	if got, err := storeseal.SealRetained(s1, other); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("another type: %s %v", got, err)
	}
	sealed, err := storeseal.SealRetained(s1, body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, b64(doc)) || !bytes.Contains(sealed, []byte(`"profile":"$sealed:k1:`)) {
		t.Fatalf("not sealed: %s", sealed)
	}
	if again, _ := storeseal.SealRetained(s1, sealed); !bytes.Equal(again, sealed) {
		t.Error("sealed twice")
	}
	opened := func(s *datakey.Sealer, b []byte) []byte {
		t.Helper()
		plain, err := s.OpenEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		var e portrait.Event
		if err := json.Unmarshal(plain, &e); err != nil {
			t.Fatal(err)
		}
		var bs struct{ Profile []byte }
		json.Unmarshal(e.Properties, &bs)
		return bs.Profile
	}
	if got := opened(s1, sealed); !bytes.Equal(got, doc) {
		t.Fatalf("opened: %s", got)
	}

	// Rotation to k2: resealed, then opens with k2 alone.
	r12, err := datakey.Join(r1, ring(t, "k2"))
	if err != nil {
		t.Fatal(err)
	}
	rs := storeseal.Resealer{S: &datakey.Sealer{Ring: r12}}
	re, ch, err := rs.Event(sealed)
	if err != nil || !ch || bytes.Contains(re, []byte("$sealed:k1:")) || !bytes.Contains(re, []byte(`"profile":"$sealed:k2:`)) {
		t.Fatalf("rotation: %s %v %v", re, ch, err)
	}
	if got := opened(&datakey.Sealer{Ring: r12}, re); !bytes.Equal(got, doc) {
		t.Fatalf("opened after rotation: %s", got)
	}
	// Written before any key: the rotation seals it.
	re, ch, err = rs.Event(body)
	if err != nil || !ch || bytes.Contains(re, b64(doc)) || !bytes.Contains(re, []byte(`"profile":"$sealed:k2:`)) {
		t.Fatalf("rotation of a clear one: %s %v %v", re, ch, err)
	}
}

// TestRetainedDecisionsSealedWhole: the carried-forward decisions (split
// sides name identifiers) are sealed whole like a profile document, and
// opened by OpenEvent.
func TestRetainedDecisionsSealedWhole(t *testing.T) {
	props := []byte(`{"decisions":{"splits":[{"id":"s1","via":{"type":"phone","value":"+8613800000001"},"a":[{"type":"user_id","value":"u1"}]}]}}`)
	body, _ := json.Marshal(&portrait.Event{MessageID: "~retained:d", Type: portrait.EventRetained, Source: portrait.SourceRetention, Properties: props})
	s := &datakey.Sealer{Ring: ring(t, "k1")}
	sealed, err := storeseal.SealRetained(s, body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("+8613800000001")) || !bytes.Contains(sealed, []byte(`"decisions":"$sealed:k1:`)) {
		t.Fatalf("not sealed: %s", sealed)
	}
	plain, err := s.OpenEvent(sealed)
	if err != nil || !bytes.Contains(plain, []byte("+8613800000001")) {
		t.Fatalf("opened: %s %v", plain, err)
	}
}

// TestRetainedAccountsSealedWhole: a pass's accounts record (companies,
// people's keys and e-mail domains, in an opaque encoding) is sealed whole
// and opened by OpenEvent; fails with only the profile and decisions
// members sealed.
func TestRetainedAccountsSealedWhole(t *testing.T) {
	rec := base64.StdEncoding.EncodeToString([]byte("user_id:u-acct-secret 旧公司"))
	body, _ := json.Marshal(&portrait.Event{MessageID: "~retained:a", Type: portrait.EventRetained, Source: portrait.SourceRetention, Properties: []byte(`{"accounts":"` + rec + `"}`)})
	s := &datakey.Sealer{Ring: ring(t, "k1")}
	sealed, err := storeseal.SealRetained(s, body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(rec)) || !bytes.Contains(sealed, []byte(`"accounts":"$sealed:k1:`)) {
		t.Fatalf("not sealed: %s", sealed)
	}
	plain, err := s.OpenEvent(sealed)
	if err != nil || !bytes.Contains(plain, []byte(rec)) {
		t.Fatalf("opened: %s %v", plain, err)
	}
}
