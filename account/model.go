package account

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/clean"
)

// Issue is an account trait value refused (an invalid USCC, an industry
// code outside GB/T 4754): the value is left unset and the reason kept for
// the quality report, exactly like a person's trait issues.
type Issue struct {
	MessageID string
	Trait     string
	Source    string
	Account   string
	Value     string
	Reason    string
	At        time.Time
}

// Edit is a change made through the API or an import: kept in the log
// store (the journal of who changed what), replayed on start and by
// Rebuild after the events.
type Edit struct {
	ID          int64          `json:"id,omitempty"`
	Kind        string         `json:"kind"`
	Account     string         `json:"account,omitempty"`
	Keys        []Key          `json:"keys,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Status      string         `json:"status,omitempty"`
	Reasoning   string         `json:"reasoning,omitempty"`
	Trait       string         `json:"trait,omitempty"`
	Value       any            `json:"value,omitempty"`
	Person      string         `json:"person,omitempty"`
	Role        string         `json:"role,omitempty"`
	Level       string         `json:"level,omitempty"`
	Title       string         `json:"title,omitempty"`
	Opportunity string         `json:"opportunity,omitempty"`
	Parent      string         `json:"parent,omitempty"`
	Need        *Need          `json:"need,omitempty"`
	Other       string         `json:"other,omitempty"`
	Scorecard   *Scorecard     `json:"scorecard,omitempty"`
	By          string         `json:"by"`
	At          time.Time      `json:"at"`
}

// Edit kinds.
const (
	EditUpsert     = "upsert"      // create an account or set traits (Status: reported or presumed)
	EditVerify     = "verify"      // verify or correct a trait
	EditRole       = "role"        // set a person's role at an account (or opportunity)
	EditVerifyRole = "verify_role" // verify or correct a person's role
	EditParent     = "parent"      // set the parent account
	EditNeed       = "need"        // add a need to the pain chain
	EditDelete     = "delete"      // remove an account
	EditUnmerge    = "unmerge"     // undo a merge: Account and Other stay apart
	EditScorecard  = "scorecard"   // replace the ICP scorecard (templates, PUT /v1/accounts/icp)
)

// Merge is a journal entry: two accounts found to be one (a group call
// carried keys of both).
type Merge struct {
	Survivor  string    `json:"survivor"`
	Merged    string    `json:"merged"`
	Via       Key       `json:"via"`
	MessageID string    `json:"message_id,omitempty"`
	At        time.Time `json:"at"`
	Undone    bool      `json:"undone,omitempty"`
}

type person struct {
	role     *Role // from identify traits
	accounts map[string]bool
	domain   string
}

// input is one thing applied, in order: an event (kept in memory only
// when the model has no Replay to read it back from the log) or an edit,
// with after, the last event seq applied before it.
type input struct {
	ev    *portrait.Event
	edit  *Edit
	after int64
}

// Replay reads the events after seq `after` up to `upto` back from the log
// in order, calling fn for each.
type Replay func(after, upto int64, fn func(*portrait.Event)) error

// Model holds every account in memory (an account is a few hundred bytes;
// 100,000 fit in tens of megabytes) behind one lock.
type Model struct {
	Now portrait.Clock

	mu       sync.RWMutex
	accounts map[string]*Account
	keys     map[Key]string
	persons  map[string]*person
	byDomain map[string]map[string]bool // email domain → persons
	// deep are the people whose events did more than an identify does
	// (a group call, an activity, an opportunity, a ticket): an erasure
	// of one of them cannot be undone by removing the person alone
	// (Forget). footprints is false while the model holds state from a
	// checkpoint written before deep was kept: nobody is known shallow.
	deep       map[string]bool
	footprints bool
	merges     []*Merge
	refused    map[[2]string]bool
	inputs     []input
	issues     []Issue
	// seq is the last event seq applied. With replay set, events are not
	// kept in inputs: an undo reads them back from the log, so memory
	// holds only the edits.
	seq    int64
	replay Replay
	// carried returns the accounts a retention pass carried forward
	// (installCarried): a replay starts from them.
	carried func() ([]byte, error)
	editID  int64 // the last journalled edit applied
	version int   // bumped on every change (undo compares it)
	// rebuilds counts the times the state was replaced whole (a rebuild,
	// an undo, a restore): undo's catch-up cannot bridge those.
	rebuilds int
	scores   scoreCache
	// carry is the retention pass in progress (BeginCarry), under carryMu.
	carryMu sync.Mutex
	carry   *carryState
}

// NewModel returns an empty model.
func NewModel(now portrait.Clock) *Model {
	if now == nil {
		now = time.Now
	}
	m := &Model{Now: now}
	m.reset()
	return m
}

func (m *Model) reset() {
	m.rebuilds++
	m.accounts = map[string]*Account{}
	m.keys = map[Key]string{}
	m.persons = map[string]*person{}
	m.byDomain = map[string]map[string]bool{}
	m.deep = map[string]bool{}
	m.footprints = true
	m.merges = nil
	m.issues = nil
	m.version++
}

// Len is the number of accounts.
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.accounts)
}

// TakeIssues returns and forgets the refused values found since the last
// call.
func (m *Model) TakeIssues() []Issue {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.issues
	m.issues = nil
	return out
}

// Relevant reports whether an event can say anything about accounts:
// the follower keeps only these for replays.
func Relevant(e *portrait.Event) bool {
	switch e.Type {
	case portrait.EventGroup:
		return true
	case portrait.EventIdentify:
		// Each part on its own, not their concatenation (a copy of both
		// for every identify the follower reads): both are JSON values,
		// so no word can run across the joint.
		for _, t := range [][]byte{e.Traits, e.Context} {
			if bytes.Contains(t, []byte("buying_role")) || bytes.Contains(t, []byte("level")) || bytes.IndexByte(t, '@') >= 0 {
				return true
			}
		}
		return false
	case portrait.EventTrack:
		_, act := activityKind(e.Name)
		return act || isOpportunity(e.Name) || e.Name == "Ticket Opened" || e.Name == "Payment Overdue"
	}
	return false
}

// Apply applies a logged event.
func (m *Model) Apply(e *portrait.Event) {
	if !Relevant(e) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq = max(m.seq, e.Seq)
	if m.replay == nil {
		m.inputs = append(m.inputs, input{ev: e})
	}
	m.apply(e)
}

// SetReplay makes the model read events back from the log for an undo
// instead of keeping them in memory. Set it before applying anything.
func (m *Model) SetReplay(r Replay) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replay = r
}

// SetCarried gives the model the accounts a retention pass carried
// forward, which a replay of the log starts from (see CarryForward). Set
// it before applying anything.
func (m *Model) SetCarried(c func() ([]byte, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.carried = c
}

// ApplyEdit applies an edit; it must be valid (see Check).
func (m *Model) ApplyEdit(ed *Edit) error {
	m.mu.Lock()
	if err := m.check(ed); err != nil {
		m.mu.Unlock()
		return err
	}
	if ed.Kind == EditUnmerge && m.replay != nil {
		m.mu.Unlock()
		return m.undo(ed)
	}
	defer m.mu.Unlock()
	m.inputs = append(m.inputs, input{edit: ed, after: m.seq})
	m.editID = max(m.editID, ed.ID)
	if ed.Kind == EditUnmerge {
		return m.rebuild()
	}
	m.edit(ed)
	return nil
}

// undo applies an unmerge when the events come back from the log. Reading
// the log takes long (every account event since the start), and holding
// the model's lock meanwhile would stop the follower and every reader, so
// the replay builds a private model without the lock; under the lock, if
// the model's version has not moved, the private state replaces the
// model's. If it moved (the follower applied events, an edit came in), the
// private model catches up with what was applied meanwhile, again outside
// the lock, and the check is made again: each round reads only what the
// previous one let in. Another rebuild meanwhile (a second undo, a
// checkpoint restored) starts it over.
func (m *Model) undo(ed *Edit) error { return m.rebuildAside(ed) }

// RebuildAside replays every input from scratch as an undo does, without
// holding the model's lock while it reads the log (an erasure's forget,
// Service.Forget): the follower and the readers go on meanwhile. Without
// a Replay it is Rebuild. On a failure the model is left as it was.
func (m *Model) RebuildAside() error {
	m.mu.RLock()
	aside := m.replay != nil
	m.mu.RUnlock()
	if !aside {
		return m.Rebuild()
	}
	return m.rebuildAside(nil)
}

// rebuildAside is undo's replay, with the unmerge ed put in after the
// inputs (nil: none).
func (m *Model) rebuildAside(ed *Edit) error {
	for {
		m.mu.RLock()
		if ed != nil {
			if err := m.check(ed); err != nil {
				m.mu.RUnlock()
				return err
			}
		}
		ver, gen, n, card := m.version, m.rebuilds, len(m.inputs), m.Scorecard()
		sh := &Model{Now: m.Now, replay: m.replay, carried: m.carried, seq: m.seq, editID: m.editID}
		sh.inputs = append(make([]input, 0, n+1), m.inputs...)
		if ed != nil {
			sh.editID = max(m.editID, ed.ID)
			sh.inputs = append(sh.inputs, input{edit: ed, after: m.seq})
		}
		m.mu.RUnlock()
		sh.scores.card = card
		if err := sh.rebuild(); err != nil {
			return err
		}
		restart := false
		for !restart {
			m.mu.Lock()
			if m.rebuilds != gen {
				m.mu.Unlock()
				restart = true
				break
			}
			if m.version == ver {
				m.adopt(sh, card)
				m.mu.Unlock()
				return nil
			}
			// Caught up to here, then checked again.
			ver = m.version
			target := m.seq
			later := append([]input(nil), m.inputs[n:]...)
			n = len(m.inputs)
			m.mu.Unlock()
			for _, in := range later {
				if in.edit.Kind == EditUnmerge {
					restart = true
					break
				}
				if err := sh.catchUp(in.after); err != nil {
					return err
				}
				sh.inputs = append(sh.inputs, in)
				sh.editID = max(sh.editID, in.edit.ID)
				sh.edit(in.edit)
			}
			if !restart {
				if err := sh.catchUp(target); err != nil {
					return err
				}
			}
		}
	}
}

// catchUp applies the account events of the log up to seq on a private
// model (undo).
func (m *Model) catchUp(seq int64) error {
	if seq <= m.seq {
		return nil
	}
	if err := m.replay(m.seq, seq, m.applyRelevant); err != nil {
		return err
	}
	m.seq = seq
	return nil
}

// adopt takes the state of the private model undo rebuilt; m.mu is held.
// A scorecard set directly (SetScorecard) while it was built is kept
// unless the replayed edits changed it.
func (m *Model) adopt(sh *Model, card *Scorecard) {
	m.accounts, m.keys, m.persons, m.byDomain = sh.accounts, sh.keys, sh.persons, sh.byDomain
	m.deep, m.footprints = sh.deep, sh.footprints
	m.merges, m.refused, m.inputs, m.issues = sh.merges, sh.refused, sh.inputs, nil
	m.seq, m.editID = sh.seq, sh.editID
	m.version++
	m.rebuilds++
	if sh.scores.card != card {
		m.scores.mu.Lock()
		m.scores.card = sh.scores.card
		m.scores.mu.Unlock()
	}
}

// Check validates an edit against the current accounts.
func (m *Model) Check(ed *Edit) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.check(ed)
}

// Rebuild replays every input from scratch. When the replay fails (the
// log cannot be read) the model keeps the state it had: a half-replayed
// model would be served, and saved as the checkpoint.
func (m *Model) Rebuild() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	accounts, keys, persons, byDomain, deep, footprints := m.accounts, m.keys, m.persons, m.byDomain, m.deep, m.footprints
	merges, refused, issues, card := m.merges, m.refused, m.issues, m.Scorecard()
	err := m.rebuild()
	if err != nil {
		m.accounts, m.keys, m.persons, m.byDomain, m.deep, m.footprints = accounts, keys, persons, byDomain, deep, footprints
		m.merges, m.refused, m.issues = merges, refused, issues
		m.scores.mu.Lock()
		m.scores.card = card
		m.scores.mu.Unlock()
		m.version++
	}
	return err
}

func (m *Model) rebuild() error {
	m.reset()
	m.refused = map[[2]string]bool{}
	var undone []*Merge
	for _, in := range m.inputs {
		if in.edit != nil && in.edit.Kind == EditUnmerge {
			m.refused[pair(in.edit.Account, in.edit.Other)] = true
			undone = append(undone, &Merge{Survivor: in.edit.Account, Merged: in.edit.Other, At: in.edit.At, Undone: true})
		}
	}
	if err := m.installCarried(); err != nil {
		return err
	}
	if m.replay == nil {
		for _, in := range m.inputs {
			if in.ev != nil {
				m.apply(in.ev)
			} else if in.edit.Kind != EditUnmerge {
				m.edit(in.edit)
			}
		}
	} else {
		// The events come back from the log; each edit goes in after the
		// event it followed when first applied.
		at := int64(0)
		for _, in := range m.inputs {
			if in.after > at {
				if err := m.replay(at, in.after, m.applyRelevant); err != nil {
					return err
				}
				at = in.after
			}
			if in.edit.Kind != EditUnmerge {
				m.edit(in.edit)
			}
		}
		if m.seq > at {
			if err := m.replay(at, m.seq, m.applyRelevant); err != nil {
				return err
			}
		}
	}
	m.merges = append(m.merges, undone...)
	m.issues = nil // already reported when first applied
	return nil
}

func (m *Model) applyRelevant(e *portrait.Event) {
	if Relevant(e) {
		m.apply(e)
	}
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

func personKey(e *portrait.Event) string {
	if e.UserID != "" {
		return "user_id:" + e.UserID
	}
	if e.AnonymousID != "" {
		return "anonymous_id:" + e.AnonymousID
	}
	return ""
}

func decode(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		if x == math.Trunc(x) {
			return fmt.Sprintf("%.0f", x)
		}
		return fmt.Sprint(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (m *Model) apply(e *portrait.Event) {
	m.version++
	switch e.Type {
	case portrait.EventGroup:
		m.group(e)
	case portrait.EventIdentify:
		m.identify(e)
	case portrait.EventTrack:
		m.track(e)
	}
}

// accountKeys reads the keys a group call's traits carry, validating them;
// refused values become issues.
func (m *Model) accountKeys(e *portrait.Event, traits map[string]any) ([]Key, map[string]any) {
	keys := []Key{}
	clean := map[string]any{}
	for k, v := range traits {
		if a, ok := traitAliases[k]; ok {
			if _, dup := traits[a]; dup {
				continue // the canonical name wins
			}
			k = a
		}
		clean[k] = v
	}
	if v, ok := clean["uscc"]; ok && v != nil {
		if code, err := validUSCC(str(v)); err == nil {
			keys = append(keys, Key{KeyUSCC, code})
			clean["uscc"] = code
		} else {
			m.issue(e, "uscc", str(v), err)
			delete(clean, "uscc")
		}
	}
	if v, ok := clean["domain"]; ok && v != nil {
		if d, err := NormalizeDomain(str(v)); err == nil {
			keys = append(keys, Key{KeyDomain, d})
			clean["domain"] = d
		} else {
			m.issue(e, "domain", str(v), err)
			delete(clean, "domain")
		}
	}
	if v := str(clean["crm_id"]); v != "" {
		keys = append(keys, Key{KeyCRM, v})
	}
	if v, ok := clean["industry"]; ok && v != nil {
		if in, err := LookupIndustry(str(v)); err == nil {
			clean["industry"] = in.Code
			clean["industry_name"] = in.Name
		} else {
			m.issue(e, "industry", str(v), err)
			delete(clean, "industry")
		}
	}
	for _, n := range []string{"employees", "revenue", "contract_value", "payment_overdue_days", "service_cost"} {
		if v, ok := clean[n]; ok && v != nil {
			f := toFloat(v)
			if math.IsNaN(f) || f < 0 {
				m.issue(e, n, str(v), fmt.Errorf("%s must be a non-negative number", n))
				delete(clean, n)
			} else {
				clean[n] = f
			}
		}
	}
	return keys, clean
}

func validUSCC(s string) (string, error) {
	code, err := clean.USCC(s)
	if err != nil {
		// The reason names the rule, never the code: an issue's reason is
		// shown where the value itself may not be (issue 15).
		return "", errors.New(clean.Reason("", err))
	}
	return code, nil
}

func (m *Model) issue(e *portrait.Event, trait, value string, err error) {
	reason := err.Error()
	var pe *portrait.Error
	if errors.As(err, &pe) {
		reason = pe.Message
	}
	m.issues = append(m.issues, Issue{MessageID: e.MessageID, Trait: trait, Source: e.Source, Value: value, Reason: reason, At: e.Timestamp})
}

func (m *Model) group(e *portrait.Event) {
	traits := decode(e.Traits)
	before := len(m.issues)
	keys, tr := m.accountKeys(e, traits)
	keys = append(keys, Key{KeyGroup, e.GroupID})
	presumed, _ := tr["presumed"].(map[string]any)
	delete(tr, "presumed")
	parent := tr["parent"]
	delete(tr, "parent")
	a := m.resolve(keys, e.Timestamp, e.MessageID)
	for i := before; i < len(m.issues); i++ {
		m.issues[i].Account = a.ID
	}
	for k, v := range tr {
		st, why := StatusReported, ""
		if r, ok := presumed[k]; ok {
			st, why = StatusPresumed, str(r)
		}
		m.setTrait(a, k, v, st, why, e.Source, e.Timestamp)
	}
	if p := str(parent); p != "" {
		pa := m.resolve([]Key{{KeyGroup, p}}, e.Timestamp, "")
		m.setParent(a, pa.ID)
	}
	if pk := personKey(e); pk != "" {
		m.deep[pk] = true
		m.link(a, pk, "group", e.Timestamp)
	}
	m.matchDomains(a)
}

// resolve finds or creates the account the keys name, merging the accounts
// they name when there are several (unless a merge was undone).
func (m *Model) resolve(keys []Key, at time.Time, msg string) *Account {
	var found []*Account
	seen := map[string]bool{}
	for _, k := range keys {
		if id, ok := m.keys[k]; ok && !seen[id] {
			seen[id] = true
			found = append(found, m.accounts[id])
		}
	}
	var a *Account
	if len(found) == 0 {
		a = &Account{ID: IDFor(keys[0]), Traits: map[string]*Trait{}, Members: map[string]*Member{}, People: map[string]*Engagement{}, Opps: map[string]*Opportunity{}, Created: at}
		if old, ok := m.accounts[a.ID]; ok { // deleted keys: the id is back
			a = old
		}
		m.accounts[a.ID] = a
	} else {
		sort.Slice(found, func(i, j int) bool {
			if !found[i].Created.Equal(found[j].Created) {
				return found[i].Created.Before(found[j].Created)
			}
			return found[i].ID < found[j].ID
		})
		a = found[0]
		for _, o := range found[1:] {
			if m.refused[pair(a.ID, o.ID)] {
				continue
			}
			var via Key
			for _, k := range keys {
				if m.keys[k] == o.ID {
					via = k
				}
			}
			m.merge(a, o)
			m.merges = append(m.merges, &Merge{Survivor: a.ID, Merged: o.ID, Via: via, MessageID: msg, At: at})
		}
	}
	for _, k := range keys {
		if owner, ok := m.keys[k]; ok && owner != a.ID {
			continue // kept apart by an undone merge: the key stays with its owner
		}
		if _, ok := m.keys[k]; !ok {
			m.keys[k] = a.ID
			a.Keys = append(a.Keys, k)
		}
	}
	if at.After(a.Updated) {
		a.Updated = at
	}
	if at.Before(a.Created) {
		a.Created = at
	}
	a.version++
	return a
}

func (m *Model) merge(a, o *Account) {
	for _, k := range o.Keys {
		m.keys[k] = a.ID
		a.Keys = append(a.Keys, k)
	}
	for n, t := range o.Traits {
		if cur := a.Traits[n]; cur == nil || wins(t, cur) {
			a.Traits[n] = t
		}
	}
	for pk, mem := range o.Members {
		if _, ok := a.Members[pk]; !ok {
			a.Members[pk] = mem
		}
		if p := m.persons[pk]; p != nil {
			delete(p.accounts, o.ID)
			p.accounts[a.ID] = true
		}
	}
	for pk, eg := range o.People {
		if a.People[pk] == nil {
			a.People[pk] = &Engagement{}
		}
		a.People[pk].merge(eg)
	}
	a.Engagement.merge(&o.Engagement)
	a.Needs = append(a.Needs, o.Needs...)
	for id, op := range o.Opps {
		a.Opps[id] = op
	}
	a.Tickets += o.Tickets
	a.OverdueDays = max(a.OverdueDays, o.OverdueDays)
	if o.Parent != "" && a.Parent == "" && o.Parent != a.ID {
		a.Parent = o.Parent
	}
	for _, c := range m.accounts {
		if c.Parent == o.ID {
			c.Parent = a.ID
			if c == a {
				c.Parent = ""
			}
		}
	}
	a.MergedFrom = append(a.MergedFrom, o.ID)
	delete(m.accounts, o.ID)
}

// wins: a verified value beats everything but a newer verification; among
// the rest, the newer value wins.
func wins(c, cur *Trait) bool {
	if (c.Status == StatusVerified) != (cur.Status == StatusVerified) {
		return c.Status == StatusVerified
	}
	return !c.At.Before(cur.At)
}

func (m *Model) setTrait(a *Account, name string, v any, status, why, source string, at time.Time) {
	t := &Trait{Value: v, Group: TraitGroup(name), Status: status, Reasoning: why, Source: source, At: at}
	if cur := a.Traits[name]; cur != nil && !wins(t, cur) {
		return
	}
	a.Traits[name] = t
	switch name {
	case "payment_overdue_days":
		a.OverdueDays = int(toFloat(v))
	}
	a.version++
}

func (m *Model) setParent(a *Account, parent string) {
	// A parent that is the account or one of its descendants would make a
	// cycle: refused.
	for p, n := parent, 0; p != "" && n < 64; n++ {
		if p == a.ID {
			return
		}
		pa := m.accounts[p]
		if pa == nil {
			break
		}
		p = pa.Parent
	}
	a.Parent = parent
	a.version++
}

func (m *Model) personOf(pk string) *person {
	p := m.persons[pk]
	if p == nil {
		p = &person{accounts: map[string]bool{}}
		m.persons[pk] = p
	}
	return p
}

func (m *Model) link(a *Account, pk, via string, at time.Time) {
	if _, ok := a.Members[pk]; !ok {
		a.Members[pk] = &Member{Person: pk, Via: via, Since: at}
	} else if via == "group" {
		a.Members[pk].Via = via
	}
	m.personOf(pk).accounts[a.ID] = true
	a.version++
}

// matchDomains links the people whose email is at one of a's domains.
func (m *Model) matchDomains(a *Account) {
	for _, k := range a.Keys {
		if k.Type != KeyDomain {
			continue
		}
		for pk := range m.byDomain[k.Value] {
			m.link(a, pk, "domain", a.Created)
		}
	}
}

func (m *Model) identify(e *portrait.Event) {
	pk := personKey(e)
	if pk == "" {
		return
	}
	tr := decode(e.Traits)
	if ctx := decode(e.Context); ctx != nil {
		if ct, ok := ctx["traits"].(map[string]any); ok {
			for k, v := range ct {
				if _, has := tr[k]; !has {
					if tr == nil {
						tr = map[string]any{}
					}
					tr[k] = v
				}
			}
		}
	}
	role, okR := NormalizeRole(str(tr["buying_role"]))
	lv := str(tr["level"])
	if lv == "" {
		lv = str(tr["hierarchy_level"])
	}
	level, okL := NormalizeLevel(lv)
	em := str(tr["email"])
	if !okR && !okL && !strings.Contains(em, "@") {
		return // nothing about accounts: no person kept for it
	}
	p := m.personOf(pk)
	if okR || okL {
		r := &Role{Role: role, Level: level, Title: str(tr["title"]), Status: StatusReported, Source: e.Source, At: e.Timestamp}
		if strings.EqualFold(str(tr["buying_role_status"]), StatusPresumed) {
			r.Status, r.Reasoning = StatusPresumed, str(tr["buying_role_reasoning"])
		}
		if p.role == nil || !e.Timestamp.Before(p.role.At) {
			if p.role != nil && !okR {
				r.Role = p.role.Role
			}
			if p.role != nil && !okL {
				r.Level = p.role.Level
			}
			p.role = r
			for id := range p.accounts {
				if a := m.accounts[id]; a != nil {
					a.version++
				}
			}
		}
	}
	if strings.Contains(em, "@") {
		if d, err := NormalizeDomain(em); err == nil && d != p.domain {
			p.domain = d
			if m.byDomain[d] == nil {
				m.byDomain[d] = map[string]bool{}
			}
			m.byDomain[d][pk] = true
			if id, ok := m.keys[Key{KeyDomain, d}]; ok {
				m.link(m.accounts[id], pk, "domain", e.Timestamp)
			}
		}
	}
}

// activityKind maps track event names to activity kinds: "Visit",
// "Sales Visit", "Call Logged", "Meeting Held", "Proposal Sent"...
func activityKind(name string) (string, bool) {
	n := strings.ToLower(name)
	for _, k := range []string{ActVisit, ActCall, ActMeeting, ActProposal} {
		if n == k || strings.HasPrefix(n, k+" ") || strings.HasPrefix(n, "sales "+k) {
			return k, true
		}
	}
	switch name {
	case "拜访":
		return ActVisit, true
	case "电话":
		return ActCall, true
	case "会议":
		return ActMeeting, true
	case "方案", "提案":
		return ActProposal, true
	}
	return "", false
}

func isOpportunity(name string) bool { return strings.HasPrefix(name, "Opportunity ") }

// targets are the accounts a track event is about: the one its properties
// or context name, or else every account of the person.
func (m *Model) targets(e *portrait.Event, props map[string]any, pk string) []*Account {
	ref := str(props["account_id"])
	if ref == "" {
		ref = str(props["groupId"])
	}
	if ref == "" {
		if ctx := decode(e.Context); ctx != nil {
			ref = str(ctx["groupId"])
		}
	}
	if ref != "" {
		for _, t := range KeyTypes {
			if id, ok := m.keys[Key{t, ref}]; ok {
				return []*Account{m.accounts[id]}
			}
		}
		if _, ok := m.accounts[ref]; ok {
			return []*Account{m.accounts[ref]}
		}
		// Not known yet: the activity names it, so it exists.
		return []*Account{m.resolve([]Key{{KeyGroup, ref}}, e.Timestamp, "")}
	}
	var out []*Account
	if p := m.persons[pk]; p != nil {
		for id := range p.accounts {
			if a := m.accounts[id]; a != nil {
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (m *Model) track(e *portrait.Event) {
	pk := personKey(e)
	if pk != "" {
		m.deep[pk] = true
	}
	props := decode(e.Properties)
	accts := m.targets(e, props, pk)
	if kind, ok := activityKind(e.Name); ok {
		for _, a := range accts {
			a.Engagement.add(kind, e.Timestamp, 1)
			if pk != "" {
				if a.People[pk] == nil {
					a.People[pk] = &Engagement{}
				}
				a.People[pk].add(kind, e.Timestamp, 1)
				if _, member := a.Members[pk]; !member {
					m.link(a, pk, "activity", e.Timestamp)
				}
			}
			a.version++
		}
		return
	}
	switch {
	case isOpportunity(e.Name):
		stage := strings.ToLower(strings.TrimPrefix(e.Name, "Opportunity "))
		switch stage {
		case "won", "closed won":
			stage = "won"
		case "lost", "closed lost":
			stage = "lost"
		default:
			stage = "open"
		}
		id := str(props["opportunity_id"])
		if id == "" {
			id = e.MessageID
		}
		for _, a := range accts {
			op := a.Opps[id]
			if op == nil || !e.Timestamp.Before(op.At) {
				a.Opps[id] = &Opportunity{ID: id, Stage: stage, Amount: toFloat(props["amount"]), At: e.Timestamp}
				if math.IsNaN(a.Opps[id].Amount) {
					a.Opps[id].Amount = 0
				}
			}
			if r, ok := NormalizeRole(str(props["buying_role"])); ok && pk != "" {
				if a.Members[pk] == nil {
					m.link(a, pk, "opportunity", e.Timestamp)
				}
				mem := a.Members[pk]
				if mem.Opportunities == nil {
					mem.Opportunities = map[string]Role{}
				}
				mem.Opportunities[id] = Role{Role: r, Opportunity: id, Status: StatusReported, Source: e.Source, At: e.Timestamp}
			}
			a.version++
		}
	case e.Name == "Ticket Opened":
		for _, a := range accts {
			a.Tickets++
			a.version++
		}
	case e.Name == "Payment Overdue":
		for _, a := range accts {
			a.OverdueDays = max(a.OverdueDays, int(toFloat(props["days"])))
			a.version++
		}
	}
}

func (m *Model) check(ed *Edit) error {
	if strings.TrimSpace(ed.By) == "" {
		return portrait.Errorf(portrait.EINVALID, "by (who makes the change) is required")
	}
	need := func() (*Account, error) {
		a := m.accounts[ed.Account]
		if a == nil {
			return nil, portrait.Errorf(portrait.ENOTFOUND, "account %q not found", ed.Account)
		}
		return a, nil
	}
	switch ed.Kind {
	case EditUpsert:
		if ed.Account == "" && len(ed.Keys) == 0 {
			return portrait.Errorf(portrait.EINVALID, "an account needs a key (uscc, domain, crm or group)")
		}
		if ed.Account != "" {
			if _, err := need(); err != nil {
				return err
			}
		}
		for i, k := range ed.Keys {
			switch k.Type {
			case KeyUSCC:
				c, err := validUSCC(k.Value)
				if err != nil {
					return portrait.Errorf(portrait.EINVALID, "%v", err)
				}
				ed.Keys[i].Value = c
			case KeyDomain:
				d, err := NormalizeDomain(k.Value)
				if err != nil {
					return portrait.Errorf(portrait.EINVALID, "%v", err)
				}
				ed.Keys[i].Value = d
			case KeyCRM, KeyGroup:
				if strings.TrimSpace(k.Value) == "" {
					return portrait.Errorf(portrait.EINVALID, "%s key is empty", k.Type)
				}
			default:
				return portrait.Errorf(portrait.EINVALID, "key type %q is not one of uscc, domain, crm, group", k.Type)
			}
		}
		if ed.Status == "" {
			ed.Status = StatusReported
		}
		if ed.Status != StatusReported && ed.Status != StatusPresumed && ed.Status != StatusVerified {
			return portrait.Errorf(portrait.EINVALID, "status must be reported, presumed or verified")
		}
		if ed.Status == StatusPresumed && strings.TrimSpace(ed.Reasoning) == "" {
			return portrait.Errorf(portrait.EINVALID, "a presumed value needs its reasoning")
		}
		if v, ok := ed.Traits["industry"]; ok {
			if _, err := LookupIndustry(str(v)); err != nil {
				return err
			}
		}
		if v, ok := ed.Traits["uscc"]; ok {
			if _, err := validUSCC(str(v)); err != nil {
				return portrait.Errorf(portrait.EINVALID, "%v", err)
			}
		}
	case EditVerify:
		a, err := need()
		if err != nil {
			return err
		}
		if a.Traits[ed.Trait] == nil && ed.Value == nil {
			return portrait.Errorf(portrait.ENOTFOUND, "account %s has no trait %q to verify", a.ID, ed.Trait)
		}
	case EditRole, EditVerifyRole:
		a, err := need()
		if err != nil {
			return err
		}
		if ed.Person == "" {
			return portrait.Errorf(portrait.EINVALID, "person is required")
		}
		if ed.Role != "" {
			r, ok := NormalizeRole(ed.Role)
			if !ok {
				return portrait.Errorf(portrait.EINVALID, "role %q is not one of EB, UB, TB, Coach", ed.Role)
			}
			ed.Role = r
		}
		if ed.Level != "" {
			l, ok := NormalizeLevel(ed.Level)
			if !ok {
				return portrait.Errorf(portrait.EINVALID, "level %q is not one of 决策层, 高层, 中层, 基层 (decision, senior, middle, frontline)", ed.Level)
			}
			ed.Level = l
		}
		if ed.Kind == EditVerifyRole && a.Members[ed.Person] == nil {
			return portrait.Errorf(portrait.ENOTFOUND, "%s is not on account %s", ed.Person, a.ID)
		}
		if ed.Kind == EditRole && ed.Status == StatusPresumed && strings.TrimSpace(ed.Reasoning) == "" {
			return portrait.Errorf(portrait.EINVALID, "a presumed role needs its reasoning")
		}
	case EditParent:
		if _, err := need(); err != nil {
			return err
		}
		if ed.Parent != "" && m.accounts[ed.Parent] == nil {
			return portrait.Errorf(portrait.ENOTFOUND, "parent account %q not found", ed.Parent)
		}
		for p, n := ed.Parent, 0; p != "" && n < 64; n++ {
			if p == ed.Account {
				return portrait.Errorf(portrait.EINVALID, "%s cannot be its own ancestor", ed.Account)
			}
			p = m.accounts[p].Parent
		}
	case EditNeed:
		if _, err := need(); err != nil {
			return err
		}
		if ed.Need == nil || strings.TrimSpace(ed.Need.Text) == "" {
			return portrait.Errorf(portrait.EINVALID, "need.text is required")
		}
		l, ok := NormalizeLevel(ed.Need.Level)
		if !ok {
			return portrait.Errorf(portrait.EINVALID, "need.level must be one of 决策层, 高层, 中层, 基层")
		}
		ed.Need.Level = l
	case EditDelete:
		if _, err := need(); err != nil {
			return err
		}
	case EditScorecard:
		if ed.Scorecard == nil {
			return portrait.Errorf(portrait.EINVALID, "scorecard is required")
		}
		return ed.Scorecard.Validate()
	case EditUnmerge:
		found := false
		for _, mg := range m.merges {
			if mg.Survivor == ed.Account && mg.Merged == ed.Other {
				found = true
			}
		}
		if !found {
			return portrait.Errorf(portrait.ENOTFOUND, "no merge of %s into %s to undo", ed.Other, ed.Account)
		}
	default:
		return portrait.Errorf(portrait.EINVALID, "unknown edit %q", ed.Kind)
	}
	return nil
}

func (m *Model) edit(ed *Edit) {
	m.version++
	switch ed.Kind {
	case EditScorecard:
		m.scores.mu.Lock()
		m.scores.card = ed.Scorecard
		m.scores.mu.Unlock()
	case EditUpsert:
		var a *Account
		if ed.Account != "" {
			a = m.accounts[ed.Account]
			if a == nil {
				return
			}
			if len(ed.Keys) > 0 {
				a = m.resolve(append(append([]Key{}, a.Keys[:1]...), ed.Keys...), ed.At, "")
			}
		} else {
			a = m.resolve(ed.Keys, ed.At, "")
		}
		for k, v := range ed.Traits {
			if al, ok := traitAliases[k]; ok {
				k = al
			}
			switch k {
			case "industry":
				if in, err := LookupIndustry(str(v)); err == nil {
					v = in.Code
					m.setTrait(a, "industry_name", in.Name, ed.Status, ed.Reasoning, "api", ed.At)
				}
			case "employees", "revenue", "contract_value", "payment_overdue_days", "service_cost":
				v = toFloat(v)
			}
			m.setTrait(a, k, v, ed.Status, ed.Reasoning, "api", ed.At)
			if ed.Status == StatusVerified {
				t := a.Traits[k]
				at := ed.At
				t.VerifiedBy, t.VerifiedAt = ed.By, &at
			}
		}
		ed.Account = a.ID
		m.matchDomains(a)
	case EditVerify:
		a := m.accounts[ed.Account]
		if a == nil {
			return
		}
		at := ed.At
		cur := a.Traits[ed.Trait]
		t := &Trait{Group: TraitGroup(ed.Trait), Status: StatusVerified, Reasoning: ed.Reasoning, Source: "api", VerifiedBy: ed.By, VerifiedAt: &at, At: at}
		if cur != nil {
			t.Value, t.Source = cur.Value, cur.Source
			if t.Reasoning == "" {
				t.Reasoning = cur.Reasoning
			}
		}
		if ed.Value != nil && (cur == nil || fmt.Sprint(cur.Value) != fmt.Sprint(ed.Value)) {
			if cur != nil {
				t.Previous = cur.Value
			}
			t.Value = ed.Value
			if _, num := map[string]bool{"employees": true, "revenue": true, "contract_value": true}[ed.Trait]; num {
				t.Value = toFloat(ed.Value)
			}
		}
		a.Traits[ed.Trait] = t
		a.version++
	case EditRole:
		a := m.accounts[ed.Account]
		if a == nil {
			return
		}
		m.link(a, ed.Person, "api", ed.At)
		st := ed.Status
		if st == "" {
			st = StatusReported
		}
		r := Role{Role: ed.Role, Level: ed.Level, Title: ed.Title, Opportunity: ed.Opportunity, Status: st, Reasoning: ed.Reasoning, Source: "api", At: ed.At}
		if st == StatusVerified {
			at := ed.At
			r.VerifiedBy, r.VerifiedAt = ed.By, &at
		}
		mem := a.Members[ed.Person]
		if ed.Opportunity != "" {
			if mem.Opportunities == nil {
				mem.Opportunities = map[string]Role{}
			}
			mem.Opportunities[ed.Opportunity] = r
		} else {
			if cur := m.effectiveRole(mem); cur != nil {
				if r.Level == "" {
					r.Level = cur.Level
				}
				if r.Role == "" {
					r.Role = cur.Role
				}
				if r.Title == "" {
					r.Title = cur.Title
				}
			}
			mem.Role = &r
		}
	case EditVerifyRole:
		a := m.accounts[ed.Account]
		if a == nil || a.Members[ed.Person] == nil {
			return
		}
		mem := a.Members[ed.Person]
		at := ed.At
		r := Role{Status: StatusVerified, VerifiedBy: ed.By, VerifiedAt: &at, Source: "api", At: at, Reasoning: ed.Reasoning}
		if cur := m.effectiveRole(mem); cur != nil {
			r.Role, r.Level, r.Title = cur.Role, cur.Level, cur.Title
			if r.Reasoning == "" {
				r.Reasoning = cur.Reasoning
			}
		}
		if ed.Role != "" {
			r.Role = ed.Role
		}
		if ed.Level != "" {
			r.Level = ed.Level
		}
		if ed.Opportunity != "" {
			if mem.Opportunities == nil {
				mem.Opportunities = map[string]Role{}
			}
			r.Opportunity = ed.Opportunity
			mem.Opportunities[ed.Opportunity] = r
		} else {
			mem.Role = &r
		}
		a.version++
	case EditParent:
		if a := m.accounts[ed.Account]; a != nil {
			m.setParent(a, ed.Parent)
		}
	case EditNeed:
		a := m.accounts[ed.Account]
		if a == nil {
			return
		}
		n := *ed.Need
		if n.ID == "" {
			n.ID = fmt.Sprintf("need-%d", len(a.Needs)+1)
		}
		if n.Status == "" {
			n.Status = StatusReported
		}
		n.At = ed.At
		a.Needs = append(a.Needs, &n)
		a.version++
	case EditDelete:
		a := m.accounts[ed.Account]
		if a == nil {
			return
		}
		for _, k := range a.Keys {
			delete(m.keys, k)
		}
		for pk := range a.Members {
			if p := m.persons[pk]; p != nil {
				delete(p.accounts, a.ID)
			}
		}
		for _, c := range m.accounts {
			if c.Parent == a.ID {
				c.Parent = ""
			}
		}
		delete(m.accounts, a.ID)
	}
}

// effectiveRole is a member's role: the one set on the account, else the
// person's identify traits.
func (m *Model) effectiveRole(mem *Member) *Role {
	if mem.Role != nil {
		return mem.Role
	}
	if p := m.persons[mem.Person]; p != nil && p.role != nil {
		return p.role
	}
	return nil
}

// Merges lists the merge journal.
func (m *Model) Merges() []Merge {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Merge, 0, len(m.merges))
	for _, mg := range m.merges {
		out = append(out, *mg)
	}
	return out
}

// Forget removes erased people (person keys, "user_id:…") from the model
// when removing them alone gives exactly what a rebuild from the
// tombstoned log would: when each one's events were identify calls only
// (a buying role, a level, a title, an email domain), which leave the
// person, their domains and their memberships by domain and nothing else.
// It answers false, having changed nothing, when it cannot decide so (a
// person whose group calls, activities, opportunities or tickets shaped
// accounts; an edit naming the person; a checkpoint older than the
// footprints; accounts carried forward by retention, which a rebuild
// starts from): the caller then rebuilds (Rebuild). People the model
// does not know need nothing.
func (m *Model) Forget(pks []string) (bool, error) {
	if m.carried != nil {
		// A rebuild starts from what retention carried forward, which
		// may hold the person: only the rebuild gives what it gives.
		body, err := m.carried()
		if err != nil {
			return false, err
		}
		if len(body) > 0 {
			return false, nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.footprints {
		return false, nil
	}
	gone := map[string]bool{}
	for _, pk := range pks {
		if pk == "" {
			continue
		}
		if m.deep[pk] {
			return false, nil
		}
		gone[pk] = true
		if p := m.persons[pk]; p != nil {
			for id := range p.accounts {
				a := m.accounts[id]
				if a == nil {
					continue
				}
				if mem := a.Members[pk]; mem != nil && (mem.Via != "domain" || mem.Role != nil || len(mem.Opportunities) > 0) {
					return false, nil
				}
				if a.People[pk] != nil {
					return false, nil
				}
			}
		}
	}
	for _, in := range m.inputs {
		if in.edit != nil && gone[in.edit.Person] {
			return false, nil // a role set by hand: the rebuild applies it again
		}
	}
	for pk := range gone {
		p := m.persons[pk]
		if p == nil {
			continue
		}
		for id := range p.accounts {
			if a := m.accounts[id]; a != nil && a.Members[pk] != nil {
				delete(a.Members, pk)
				a.version++
			}
		}
		delete(m.persons, pk)
		// Every domain the person had (a changed email leaves the
		// earlier one's entry), and no empty entry: a rebuild makes one
		// only for a person it keeps.
		for d, set := range m.byDomain {
			if set[pk] {
				delete(set, pk)
				if len(set) == 0 {
					delete(m.byDomain, d)
				}
			}
		}
		m.version++
	}
	return true, nil
}

// holdsAny reports whether the model holds anything of one of pks, or may
// (a checkpoint older than the footprints: a person's ticket counted on an
// account leaves no other trace there).
func (m *Model) holdsAny(pks []string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.footprints && len(pks) > 0 {
		return true
	}
	for _, pk := range pks {
		if m.persons[pk] != nil || m.deep[pk] {
			return true
		}
	}
	return false
}

// Persons lists the person keys the model holds something of (members,
// roles, domains, the people whose events touched an account).
func (m *Model) Persons() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.persons)+len(m.deep))
	for pk := range m.persons {
		out = append(out, pk)
	}
	for pk := range m.deep {
		if m.persons[pk] == nil {
			out = append(out, pk)
		}
	}
	return out
}
