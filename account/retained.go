package account

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"

	"github.com/portrait-cdp/portrait"
)

// Event retention (docs/erasure.md, "Retention") turns expired events into
// tombstones. The model reads the log in sequence order, so a record of
// what the expired events made, appended after the kept events, would reach
// a re-read too late. So the pass writes the accounts the expired events
// alone make as the "accounts" member of a carried-forward event
// (portrait.EventRetained), and whatever derives the model from the log
// again (a start without a checkpoint, a rebuild, an undo) installs the
// latest such record first, then reads the log, where the expired events
// are tombstones and the record is nothing it applies.

// Carried finds the accounts record of the latest retention pass (nil
// body: there is none). The stores implement it.
type Carried interface {
	CarriedAccounts(ctx context.Context) ([]byte, error)
}

// CarriedOf returns the accounts record a carried-forward event holds (nil:
// it holds none, e.g. it carries a profile).
func CarriedOf(e *portrait.Event) []byte {
	if e.Type != portrait.EventRetained || !bytes.Contains(e.Properties, []byte(`"accounts"`)) {
		return nil
	}
	var bs struct {
		Accounts []byte `json:"accounts"`
	}
	json.Unmarshal(e.Properties, &bs)
	return bs.Accounts
}

// CarryForward derives the accounts the expired events (in log order)
// make, for a retention pass to carry forward: the record in force (the
// previous pass's) first, then their account events in order, under the
// merges undone so far (an undo refuses a merge over the whole history).
// It returns nil when they make nothing the model keeps.
//
// rename gives each expired message id its new name (see
// profile.Compact): nothing the pass keeps may name a message the log no
// longer holds, so the record and the live model alike name them so (a
// merge's event, an opportunity known by its event). The live model is
// renamed here, before the log's part of the pass, as the live profiles
// are.
func (m *Model) CarryForward(expired []*portrait.Event, rename map[string]string) ([]byte, error) {
	sh := NewModel(m.Now)
	m.mu.RLock()
	sh.refused = make(map[[2]string]bool, len(m.refused))
	for p := range m.refused {
		sh.refused[p] = true
	}
	sh.carried = m.carried
	m.mu.RUnlock()
	if sh.carried == nil {
		// No store to ask: the previous record is among the expired
		// events (it takes the time of the oldest event of its pass).
		var last []byte
		for _, e := range expired {
			if body := CarriedOf(e); body != nil {
				last = body
			}
		}
		sh.carried = func() ([]byte, error) { return last, nil }
	}
	if err := sh.installCarried(); err != nil {
		return nil, err
	}
	found := len(sh.accounts) > 0 || len(sh.persons) > 0 || len(sh.merges) > 0
	for _, e := range expired {
		if Relevant(e) {
			sh.apply(e)
			found = true
		}
	}
	m.mu.Lock()
	if m.renameIDs(rename) {
		m.version++
	}
	m.mu.Unlock()
	if !found {
		return nil, nil
	}
	sh.renameIDs(rename)
	s := sh.state()
	s.Refused = nil // the journal's unmerges decide on a replay
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, portrait.Wrap(err, "cannot encode the carried-forward accounts")
	}
	return buf.Bytes(), nil
}

// installCarried installs the latest retention pass's accounts in a model
// that holds nothing yet (after reset); m.mu is held, or the model is
// private.
func (m *Model) installCarried() error {
	if m.carried == nil {
		return nil
	}
	body, err := m.carried()
	if err != nil || body == nil {
		return err
	}
	s, err := decodeSnapshot(body)
	if err != nil {
		return portrait.Errorf(portrait.EINTERNAL, "the carried-forward accounts cannot be read: %v", err)
	}
	m.install(s)
	return nil
}

// startCarried installs the carried-forward accounts in a model that has
// read nothing yet (a load without a checkpoint).
func (m *Model) startCarried() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version++
	return m.installCarried()
}

// renameIDs renames the expired message ids the model names, reporting
// whether it named any; m.mu is held, or the model is private.
func (m *Model) renameIDs(rename map[string]string) bool {
	changed := false
	for _, mg := range m.merges {
		if n, ok := rename[mg.MessageID]; ok {
			mg.MessageID, changed = n, true
		}
	}
	for _, a := range m.accounts {
		for id, op := range a.Opps {
			n, ok := rename[id]
			if !ok {
				continue
			}
			// Merged accounts share the opportunity: renamed once.
			if op.ID == id {
				op.ID = n
			}
			delete(a.Opps, id)
			a.Opps[n] = op
			changed = true
		}
	}
	return changed
}
