package datakey_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/internal/datakey"
)

// TestBlobs: a whole document is sealed whenever a ring is configured,
// bound to its label, and read back byte for byte; a client's bytes that
// look sealed are escaped with or without a ring; a blob from before
// sealing reads as it is.
func TestBlobs(t *testing.T) {
	withRing := &datakey.Sealer{Ring: ring(t, "k1")}
	for _, doc := range []string{``, `{"id_card":"110101199003071234"}`, `not json at all`, `$sealed:k1:AAAA`, `$plain:x`, "\x00\xff"} {
		for _, s := range []*datakey.Sealer{withRing, {}, nil} {
			stored := s.SealBlob([]byte(doc), datakey.BlobQuarantine)
			if s.HasRing() != datakey.IsSealedBlob(stored) {
				t.Errorf("%q: sealed %v with ring %v", doc, datakey.IsSealedBlob(stored), s.HasRing())
			}
			if s.HasRing() && strings.Contains(string(stored), "1101") {
				t.Errorf("%q: stored %q", doc, stored)
			}
			got, err := s.OpenBlob(stored, datakey.BlobQuarantine)
			if err != nil || string(got) != doc {
				t.Errorf("%q: read back %q %v", doc, got, err)
			}
		}
	}
	stored := withRing.SealBlob([]byte(`{"a":1}`), datakey.BlobQuarantine)
	if _, err := withRing.OpenBlob(stored, datakey.BlobDeadLetter); err == nil {
		t.Error("a quarantined body opened as a dead letter")
	}
	if _, err := (&datakey.Sealer{}).OpenBlob(stored, datakey.BlobQuarantine); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("opened without the ring: %v", err)
	}
	// A document stored before sealing existed reads as it is.
	if got, err := withRing.OpenBlob([]byte(`{"old":true}`), datakey.BlobImport); err != nil || string(got) != `{"old":true}` {
		t.Errorf("old blob %q %v", got, err)
	}
}

// TestEnricherState: every state is sealed with a ring, stays valid JSON
// in the profile document, and reads back byte for byte; a state that is a
// string looking sealed is escaped.
func TestEnricherState(t *testing.T) {
	withRing := &datakey.Sealer{Ring: ring(t, "k1")}
	for _, raw := range []string{`{"v":2,"last":"110101199003071234"}`, `[1,2]`, `"$sealed:k1:AAAA"`, `"$plain:x"`, `"plain"`} {
		for _, s := range []*datakey.Sealer{withRing, {}} {
			stored := s.SealState("traits", json.RawMessage(raw))
			if !json.Valid(stored) {
				t.Errorf("%s: stored state %s is not JSON", raw, stored)
			}
			if s.HasRing() && bytes.Contains(stored, []byte("1101")) {
				t.Errorf("%s: stored %s", raw, stored)
			}
			got, err := s.OpenState("traits", stored)
			if err != nil || string(got) != raw {
				t.Errorf("%s: read back %s %v", raw, got, err)
			}
			if s.HasRing() {
				if _, err := s.OpenState("journey", stored); err == nil {
					t.Errorf("%s: the traits state opened as the journey's", raw)
				}
			}
		}
	}
}

// TestClearNames: the names and external-id types holding a value in
// clear, sealed ones and nulls left out, at any depth of traits,
// properties and context.
func TestClearNames(t *testing.T) {
	s := &datakey.Sealer{Ring: ring(t, "k1"), Levels: secretNames{"id_card": true}}
	body := []byte(`{"type":"track","userId":"u","traits":{"id_card":"1101","bonus":5,"gone":null},"properties":{"items":[{"passport":"E1"}]},"context":{"externalIds":[{"type":"id_card","id":"1102"},{"type":"wechat","id":"w"}]}}`)
	stored, err := s.SealEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	traits, ids, err := datakey.ClearNames(stored)
	if err != nil {
		t.Fatal(err)
	}
	if traits["id_card"] || !traits["bonus"] || traits["gone"] || !traits["passport"] || ids["id_card"] || !ids["wechat"] {
		t.Errorf("clear names %v, ids %v in %s", traits, ids, stored)
	}
	if traits, ids, _ = datakey.ClearNames(body); !traits["id_card"] || !ids["id_card"] {
		t.Errorf("in clear before sealing: %v %v", traits, ids)
	}
}

type secretNames map[string]bool

func (s secretNames) SecretTrait(n string) bool      { return s[n] }
func (s secretNames) SecretIdentifier(n string) bool { return s[n] }
