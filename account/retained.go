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

// A retention pass reads its expired events page by page, so that its
// memory does not grow with their number; the account model follows it
// with BeginCarry, FeedCarry for each page (in log order), CarryNames and
// FinishCarry. The passes are serialised by the profile processor's lock,
// so the model keeps one pass's private model at a time.

// carryState is the private model of a retention pass in progress.
type carryState struct {
	sh    *Model
	found bool
	// Without a store to ask (carried unset), the previous record is
	// among the expired events (it takes the time of the oldest event of
	// its pass) and must be installed before any of them is applied: the
	// account events are kept until FinishCarry then. Every store sets
	// carried (account.Service), so this is for models used alone.
	buffered bool
	last     []byte
	pending  []*portrait.Event
}

// BeginCarry starts deriving the accounts the expired events of a
// retention pass make, for the pass to carry forward: the record in force
// (the previous pass's) first, then the account events FeedCarry is given,
// in order, under the merges undone so far (an undo refuses a merge over
// the whole history).
func (m *Model) BeginCarry() error {
	sh := NewModel(m.Now)
	m.mu.RLock()
	sh.refused = make(map[[2]string]bool, len(m.refused))
	for p := range m.refused {
		sh.refused[p] = true
	}
	sh.carried = m.carried
	m.mu.RUnlock()
	c := &carryState{sh: sh, buffered: sh.carried == nil}
	if !c.buffered {
		if err := sh.installCarried(); err != nil {
			return err
		}
		c.found = len(sh.accounts) > 0 || len(sh.persons) > 0 || len(sh.merges) > 0
	}
	m.carryMu.Lock()
	m.carry = c
	m.carryMu.Unlock()
	return nil
}

// FeedCarry applies one page of a pass's expired events (in log order).
func (m *Model) FeedCarry(page []*portrait.Event) {
	m.carryMu.Lock()
	c := m.carry
	m.carryMu.Unlock()
	if c == nil {
		return
	}
	for _, e := range page {
		if c.buffered {
			if body := CarriedOf(e); body != nil {
				c.last = body
			}
			if Relevant(e) {
				c.pending = append(c.pending, e)
			}
			continue
		}
		if Relevant(e) {
			c.sh.apply(e)
			c.found = true
		}
	}
}

// CarryNames calls fn with every message id the live model and the pass's
// private model name (a merge's event, an opportunity known by its
// event): the pass renames those that expired (FinishCarry's rename).
func (m *Model) CarryNames(fn func(id string)) {
	names := func(x *Model) {
		for _, mg := range x.merges {
			fn(mg.MessageID)
		}
		for _, a := range x.accounts {
			for id := range a.Opps {
				fn(id)
			}
		}
	}
	m.mu.RLock()
	names(m)
	m.mu.RUnlock()
	m.carryMu.Lock()
	c := m.carry
	m.carryMu.Unlock()
	if c != nil {
		if err := c.replay(); err != nil {
			return // FinishCarry reports it
		}
		names(c.sh)
	}
}

// replay applies, without a store to ask, the record found among the
// expired events and then their account events.
func (c *carryState) replay() error {
	if !c.buffered {
		return nil
	}
	last := c.last
	c.sh.carried = func() ([]byte, error) { return last, nil }
	if err := c.sh.installCarried(); err != nil {
		return err
	}
	c.found = len(c.sh.accounts) > 0 || len(c.sh.persons) > 0 || len(c.sh.merges) > 0
	for _, e := range c.pending {
		c.sh.apply(e)
		c.found = true
	}
	c.buffered, c.pending, c.last = false, nil, nil
	return nil
}

// FinishCarry ends the pass BeginCarry started and returns the record to
// carry forward (nil when the expired events make nothing the model keeps
// and there is no earlier record).
//
// rename gives expired message ids their new names (see profile.Compact):
// nothing the pass keeps may name a message the log no longer holds, so
// the record and the live model alike name them so. The live model is
// renamed here, before the log's part of the pass, as the live profiles
// are.
func (m *Model) FinishCarry(rename map[string]string) ([]byte, error) {
	m.carryMu.Lock()
	c := m.carry
	m.carry = nil
	m.carryMu.Unlock()
	if c == nil {
		return nil, portrait.Errorf(portrait.EINTERNAL, "no retention pass of the accounts was begun")
	}
	if err := c.replay(); err != nil {
		return nil, err
	}
	sh := c.sh
	m.mu.Lock()
	if m.renameIDs(rename) {
		m.version++
	}
	m.mu.Unlock()
	if !c.found {
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

// CarryForward is BeginCarry, FeedCarry and FinishCarry over expired
// events held in memory at once (a pass reads them page by page).
func (m *Model) CarryForward(expired []*portrait.Event, rename map[string]string) ([]byte, error) {
	if err := m.BeginCarry(); err != nil {
		return nil, err
	}
	m.FeedCarry(expired)
	return m.FinishCarry(rename)
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

// ForgetCarried rewrites a carried-forward accounts record without the
// people ids name (profile.Erasure.Carried): an erasure makes their events
// tombstones, but the record the expired ones made stays in the log, and
// every rebuild (the erasure's own included) installs it before reading
// the log. The events behind the record are gone, so the person is taken
// out of the record itself: their entry, their domains, their memberships
// (with the roles on opportunities), their engagement per person, the
// needs they voiced and their footprint. What they added to the account
// as a whole (its engagement total, a ticket count, the traits of a group
// call) stays: it names no one. changed is false when the record holds
// none of them.
func ForgetCarried(record []byte, ids []portrait.Identifier) ([]byte, bool, error) {
	pks := PersonKeys(ids)
	if len(record) == 0 || len(pks) == 0 {
		return record, false, nil
	}
	// gob writes strings as they are: a record without a person's key
	// does not hold them, and is not decoded (most erasures).
	held := false
	for _, pk := range pks {
		held = held || bytes.Contains(record, []byte(pk))
	}
	if !held {
		return record, false, nil
	}
	s, err := decodeSnapshot(record)
	if err != nil {
		return nil, false, portrait.Errorf(portrait.EINTERNAL, "the carried-forward accounts cannot be read: %v", err)
	}
	gone := make(map[string]bool, len(pks))
	for _, pk := range pks {
		gone[pk] = true
	}
	changed := false
	persons := s.Persons[:0]
	for _, sp := range s.Persons {
		if gone[sp.Key] {
			changed = true
			continue
		}
		persons = append(persons, sp)
	}
	s.Persons = persons
	for d, list := range s.ByDomain {
		kept := list[:0]
		for _, pk := range list {
			if gone[pk] {
				changed = true
				continue
			}
			kept = append(kept, pk)
		}
		if len(kept) == 0 {
			delete(s.ByDomain, d)
		} else {
			s.ByDomain[d] = kept
		}
	}
	deep := s.Deep[:0]
	for _, pk := range s.Deep {
		if gone[pk] {
			changed = true
			continue
		}
		deep = append(deep, pk)
	}
	s.Deep = deep
	for _, a := range s.Accounts {
		for pk := range gone {
			if a.Members[pk] != nil {
				delete(a.Members, pk)
				changed = true
			}
			if a.People[pk] != nil {
				delete(a.People, pk)
				changed = true
			}
		}
		needs := a.Needs[:0]
		for _, n := range a.Needs {
			if n.Person != "" && gone[n.Person] {
				changed = true
				continue
			}
			needs = append(needs, n)
		}
		a.Needs = needs
	}
	if !changed {
		return record, false, nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, false, portrait.Wrap(err, "cannot encode the carried-forward accounts")
	}
	return buf.Bytes(), true, nil
}

// ForgetCarried is the package's ForgetCarried (erasure.Service hands it
// to the store when the accounts are among its Derived models).
func (s *Service) ForgetCarried(record []byte, ids []portrait.Identifier) ([]byte, bool, error) {
	return ForgetCarried(record, ids)
}
