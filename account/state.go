package account

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/portrait-cdp/portrait"
)

// The follower's checkpoint: the model's state encoded with the seq of the
// last event and the id of the last edit it holds, so a restart resumes
// from there instead of re-reading the whole log. gob, not JSON: gob reads
// no json tags, so it keeps the fields the API hides (an account's
// opportunities, the decayed engagement sums) and the exact float values,
// and a restored model equals the one saved.

func init() {
	// Trait and edit values are decoded JSON: these are the composite
	// types an interface value can hold.
	gob.Register(map[string]any{})
	gob.Register([]any{})
}

type snapPerson struct {
	Key      string
	Role     *Role
	Accounts []string
	Domain   string
}

type snapEdit struct {
	Edit  *Edit
	After int64
}

type snapshot struct {
	Seq      int64
	EditID   int64
	Accounts []*Account
	Keys     []Key
	KeyOwner []string
	Persons  []snapPerson
	ByDomain map[string][]string
	Merges   []*Merge
	Refused  [][2]string
	Edits    []snapEdit
	Card     *Scorecard
	// Deep and Footprints: see Model.deep. A checkpoint written before
	// they were kept decodes with Footprints false.
	Deep       []string
	Footprints bool
}

// Snapshot encodes the model's state. It needs a Replay (SetReplay): a
// model that keeps its events in memory has nothing small to save.
func (m *Model) Snapshot() (seq int64, body []byte, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.replay == nil {
		return 0, nil, portrait.Errorf(portrait.EINTERNAL, "account snapshot without a log to replay from")
	}
	s := m.state()
	s.Seq, s.EditID, s.Card = m.seq, m.editID, m.Scorecard()
	for _, in := range m.inputs {
		s.Edits = append(s.Edits, snapEdit{Edit: in.edit, After: in.after})
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return 0, nil, portrait.Wrap(err, "cannot encode the accounts")
	}
	return s.Seq, buf.Bytes(), nil
}

// state is the model's accounts, people and merges as a snapshot holds
// them (without the seq, edits and scorecard).
func (m *Model) state() *snapshot {
	s := &snapshot{Merges: m.merges, ByDomain: map[string][]string{}}
	for _, a := range m.accounts {
		s.Accounts = append(s.Accounts, a)
	}
	for k, id := range m.keys {
		s.Keys = append(s.Keys, k)
		s.KeyOwner = append(s.KeyOwner, id)
	}
	for pk, p := range m.persons {
		sp := snapPerson{Key: pk, Role: p.role, Domain: p.domain}
		for id := range p.accounts {
			sp.Accounts = append(sp.Accounts, id)
		}
		s.Persons = append(s.Persons, sp)
	}
	for d, ps := range m.byDomain {
		for pk := range ps {
			s.ByDomain[d] = append(s.ByDomain[d], pk)
		}
	}
	for p := range m.refused {
		s.Refused = append(s.Refused, p)
	}
	for pk := range m.deep {
		s.Deep = append(s.Deep, pk)
	}
	s.Footprints = m.footprints
	return s
}

// Restore replaces the model's state with a snapshot's. The replay must
// be set (SetReplay) first.
func (m *Model) Restore(body []byte) error {
	s, err := decodeSnapshot(body)
	if err != nil {
		return portrait.Wrap(err, "the accounts checkpoint is damaged")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.replay == nil {
		return portrait.Errorf(portrait.EINTERNAL, "account restore without a log to replay from")
	}
	m.reset()
	m.seq, m.editID = s.Seq, s.EditID
	m.install(s)
	m.refused = map[[2]string]bool{}
	for _, p := range s.Refused {
		m.refused[p] = true
	}
	m.inputs = m.inputs[:0]
	for _, e := range s.Edits {
		m.inputs = append(m.inputs, input{edit: e.Edit, after: e.After})
	}
	if s.Card != nil {
		m.scores.mu.Lock()
		m.scores.card = s.Card
		m.scores.mu.Unlock()
	}
	return nil
}

func decodeSnapshot(body []byte) (*snapshot, error) {
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(&s); err != nil {
		return nil, err
	}
	if len(s.Keys) != len(s.KeyOwner) {
		return nil, fmt.Errorf("%d keys, %d owners", len(s.Keys), len(s.KeyOwner))
	}
	return &s, nil
}

// install puts a snapshot's accounts, people and merges in the model,
// which holds none yet (after reset); m.mu is held.
func (m *Model) install(s *snapshot) {
	m.merges = s.Merges
	for _, a := range s.Accounts {
		// gob leaves empty maps nil; the model writes into them.
		if a.Opps == nil {
			a.Opps = map[string]*Opportunity{}
		}
		if a.People == nil {
			a.People = map[string]*Engagement{}
		}
		if a.Members == nil {
			a.Members = map[string]*Member{}
		}
		if a.Traits == nil {
			a.Traits = map[string]*Trait{}
		}
		a.version = 1 // its derived values are recomputed on first use
		m.accounts[a.ID] = a
	}
	for i, k := range s.Keys {
		m.keys[k] = s.KeyOwner[i]
	}
	for _, sp := range s.Persons {
		p := &person{role: sp.Role, domain: sp.Domain, accounts: map[string]bool{}}
		for _, id := range sp.Accounts {
			p.accounts[id] = true
		}
		m.persons[sp.Key] = p
	}
	for d, pks := range s.ByDomain {
		set := map[string]bool{}
		for _, pk := range pks {
			set[pk] = true
		}
		m.byDomain[d] = set
	}
	for _, pk := range s.Deep {
		m.deep[pk] = true
	}
	m.footprints = m.footprints && s.Footprints
}

// EditID is the id of the last journalled edit applied.
func (m *Model) EditID() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.editID
}

// Digest hashes the accounts as clients see them (each account's view,
// its people, the key index, the merge journal), so that a state restored
// from the checkpoint and a full replay can be compared exactly.
func (m *Model) Digest() (string, error) {
	ids := m.RankOnly()
	sort.Strings(ids)
	h := sha256.New()
	enc := json.NewEncoder(h)
	if err := enc.Encode(m.Merges()); err != nil {
		return "", err
	}
	for _, id := range ids {
		v, _ := m.Get(id)
		p, _ := m.People(id)
		var owners []string
		if v != nil {
			for _, k := range v.Keys {
				o, _ := m.Lookup(k.Type, k.Value)
				owners = append(owners, o)
			}
		}
		if err := enc.Encode([]any{v, p, owners}); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
