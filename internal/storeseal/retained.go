package storeseal

import (
	"bytes"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// A carried-forward event (portrait.EventRetained, written by event
// retention) holds a whole profile document as one opaque member of its
// properties ("profile": the profile/doc encoding, base64 in the JSON). The
// event walker cannot see the secret traits inside it, so with a ring
// configured the member is sealed whole, whatever the levels say, as the
// stores seal other blobs. It is sealed as the walker seals a value (the
// member's JSON, no associated data), so that every read of the log
// (OpenEvent) opens it without knowing what the event is, and a rotation
// (Resealer.Event) reseals it: the member is then noted as sealed.

var retainedType = []byte(`"` + portrait.EventRetained + `"`)

// SealRetained returns the stored form of an event body (already through
// Sealer.SealEvent) with, when it is a carried-forward event and a ring is
// configured, its profile document sealed. Other bodies come back as they
// are.
func SealRetained(s *datakey.Sealer, body []byte) ([]byte, error) {
	if !s.HasRing() || !bytes.Contains(body, retainedType) {
		return body, nil
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, portrait.Wrap(err, "cannot read a carried-forward event to seal")
	}
	var typ string
	if json.Unmarshal(ev["type"], &typ); typ != portrait.EventRetained {
		return body, nil
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(ev["properties"], &props); err != nil {
		return nil, portrait.Wrap(err, "cannot read a carried-forward event to seal")
	}
	changed := false
	// The decisions (of the one event of a pass that holds no profile)
	// name identifiers of split sides, and the accounts record names
	// companies and people: sealed whole too.
	for _, member := range []string{"profile", "decisions", "accounts"} {
		doc := props[member]
		if len(doc) == 0 || bytes.Equal(doc, []byte("null")) || bytes.HasPrefix(doc, []byte(`"`+datakey.Prefix)) {
			continue
		}
		props[member] = json.RawMessage(`"` + s.Ring.Seal(doc, nil) + `"`)
		changed = true
	}
	if !changed {
		return body, nil
	}
	p, err := json.Marshal(props)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot seal a carried-forward event")
	}
	ev["properties"] = p
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot seal a carried-forward event")
	}
	return out, nil
}

// RetainedInClear reports whether an event body is a carried-forward event
// with a document member in clear (written before a data key was
// configured). What it holds cannot be told from the bytes, so a level
// raised to secret, whatever the name, counts it in clear and seals it
// (ClearInEvent), as the documents kept whole.
func RetainedInClear(body []byte) (bool, error) {
	if !bytes.Contains(body, retainedType) {
		return false, nil
	}
	var ev struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return false, portrait.Wrap(err, "cannot read a carried-forward event")
	}
	if ev.Type != portrait.EventRetained {
		return false, nil
	}
	for _, member := range []string{"profile", "decisions", "accounts"} {
		doc := ev.Properties[member]
		if len(doc) > 0 && !bytes.Equal(doc, []byte("null")) && !bytes.HasPrefix(doc, []byte(`"`+datakey.Prefix)) {
			return true, nil
		}
	}
	return false, nil
}
