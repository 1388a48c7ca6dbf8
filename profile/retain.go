package profile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
	profiledoc "github.com/portrait-cdp/portrait/profile/doc"
)

// Event retention (docs/erasure.md, "Retention"). Events older than the
// limit are deleted, but profiles are what the whole log made of them, and
// a rebuild must derive them again. So expiry is a log compaction: the
// expired events (event time before the limit) are a prefix of the log in
// canonical order, and the state that prefix alone makes is computed by a
// processor of its own over those events only (Compact). Each profile of
// that state is written to the log as one carried-forward event
// (EventRetained) at the time of its first expired event, and the expired
// events become tombstones. Replaying the log then meets, in canonical
// order, the prefix's state first (carry installs it as it was: document,
// identifiers with their attaching keys, refusals, merged-away ids) and
// the kept events after it, exactly as the full log did.

// ScratchStore is a private, empty store a compaction derives the expired
// prefix's state in. Close removes it.
type ScratchStore interface {
	Store
	portrait.EventLog
	AllProfiles(ctx context.Context, fn func(*portrait.Profile) error) error
	LastSeq(ctx context.Context) (int64, error)
	Close() error
}

// CompactStore is what event retention needs from the live store.
type CompactStore interface {
	// ExpiredEvents returns the events (tombstones left out) with an event
	// time before before and a sequence number up to upTo, in log order.
	ExpiredEvents(ctx context.Context, before time.Time, upTo int64) ([]*portrait.Event, error)
	// ExpireEvents appends the carried-forward events (giving them their
	// sequence numbers), lists each on the profile named in Owners,
	// records them as already applied (the live state holds them),
	// turns the expired events into tombstones and deletes what was
	// derived from them alone (their event lists, trait issues, journal
	// entries), and records the run.
	ExpireEvents(ctx context.Context, c *Compaction) error
	// LoadCompacted returns the message ids of carried-forward events the
	// live state already holds.
	LoadCompacted(ctx context.Context) ([]string, error)
}

// AccountCarrier is the account model (account.Model) as a retention pass
// needs it: it reads the log in its own order and keeps its own state, so
// the pass asks it for the accounts the expired events (in log order, with
// the previous pass's record) alone make, an opaque record (nil: none) the
// model installs before it reads the log again. rename is expiredNames':
// the model renames the expired messages it names, live and in the record.
type AccountCarrier interface {
	CarryForward(expired []*portrait.Event, rename map[string]string) ([]byte, error)
}

// AccountsID is the name RetainedID gives the accounts record of a pass.
const AccountsID = "$accounts"

// Compaction is one retention pass over the events.
type Compaction struct {
	Run     portrait.RetentionRun
	Expired []*portrait.Event // to become tombstones
	Carried []*portrait.Event // to append
	// Owners: a carried event's message id → the live profile it belongs to.
	Owners map[string]string
}

// Base is what a carried-forward event holds: one profile as the expired
// events made it, and its place in the identity graph; or, in the one
// event of a pass that holds no profile, the identity decisions in force.
type Base struct {
	Profile    []byte                `json:"profile,omitempty"` // profile/doc encoding
	Identities []BaseIdentity        `json:"identities,omitempty"`
	Refused    []portrait.Identifier `json:"refused,omitempty"`
	Decisions  *Decisions            `json:"decisions,omitempty"`
	// Accounts is the accounts record of a pass (AccountCarrier), in an
	// event of its own: the profile processor skips it.
	Accounts []byte `json:"accounts,omitempty"`
}

// Decisions are the identity decisions a compaction carries forward: the
// splits and retractions in force, whose events (or the events they
// decided about) may have expired. Decisions apply to the whole history
// (a split refuses its merge wherever a replay meets it, a retracted
// event is skipped wherever it turns up), so the expired prefix is derived
// under them and a replay installs them again.
type Decisions struct {
	Splits []BaseSplit `json:"splits,omitempty"`
	// Retracted are the retracted events that have not expired (an
	// expired one cannot turn up again).
	Retracted []string `json:"retracted,omitempty"`
}

// BaseSplit is a split carried forward. An expired split event's id is
// replaced by SplitID's, and an expired bridge by nothing: the sides the
// split captured keep it.
type BaseSplit struct {
	ID     string                `json:"id"`
	Bridge string                `json:"bridge,omitempty"`
	Via    portrait.Identifier   `json:"via"`
	By     string                `json:"by,omitempty"`
	A      []portrait.Identifier `json:"a,omitempty"`
	B      []portrait.Identifier `json:"b,omitempty"`
}

// SplitID names a split carried forward whose own event expired: the
// decision outlives its event, but nothing names the expired message.
func SplitID(msg string) string {
	h := sha256.Sum256([]byte("split\n" + msg))
	return "~split:" + hex.EncodeToString(h[:16])
}

// BaseIdentity is an identifier with the key of the event that attached it.
type BaseIdentity struct {
	Type  string    `json:"type"`
	Value string    `json:"value"`
	At    time.Time `json:"at,omitzero"`
	Msg   string    `json:"msg,omitempty"`
}

// RetainedID is the message id of the event carrying profile pid forward
// from a compaction at before. The event takes the time of the profile's
// first event: a late event of the expired period then replays after it
// when it is younger (and lands on the profile, as it did live, where its
// identifiers were attached before it) and before it when it is older
// (and the carried profile joins the one it made). '~' sorts it after
// ordinary message ids of the same instant.
func RetainedID(pid string, before time.Time) string {
	h := sha256.Sum256([]byte(pid + "\n" + strconv.FormatInt(before.UnixMicro(), 10)))
	return "~retained:" + hex.EncodeToString(h[:16])
}

func decodeBase(e *portrait.Event) (*Base, *portrait.Profile, error) {
	var bs Base
	if err := json.Unmarshal(e.Properties, &bs); err != nil {
		return nil, nil, portrait.Errorf(portrait.EINTERNAL, "carried-forward event %s cannot be read: %v", e.MessageID, err)
	}
	q, err := profiledoc.Decode(bs.Profile)
	if err != nil {
		return nil, nil, portrait.Errorf(portrait.EINTERNAL, "carried-forward event %s holds a damaged profile: %v", e.MessageID, err)
	}
	return &bs, q, nil
}

// baseIDs are the identifiers a carried-forward event brings.
func baseIDs(e *portrait.Event) []portrait.Identifier {
	var bs struct {
		Identities []BaseIdentity `json:"identities"`
	}
	json.Unmarshal(e.Properties, &bs)
	ids := make([]portrait.Identifier, len(bs.Identities))
	for i, x := range bs.Identities {
		ids[i] = portrait.Identifier{Type: x.Type, Value: x.Value}
	}
	return ids
}

// retained places a carried-forward event: skipped when the live state
// already holds it (the compaction that wrote it), replayed in its place
// when profiles it touches exist (a rebuild meets it after the kept
// events of its profile, which it precedes), applied at once otherwise.
func (b *batch) retained(e *portrait.Event, ids []portrait.Identifier) error {
	if b.p.compacted[e.MessageID] {
		delete(b.p.compacted, e.MessageID)
		return nil
	}
	if holdsAccounts(e) {
		return nil
	}
	if d := decisionsOf(e); d != nil {
		return b.decide(e, d)
	}
	involved := map[string]bool{}
	if err := b.involve(ids, involved); err != nil {
		return err
	}
	if len(involved) > 0 {
		b.late = append(b.late, e)
		return nil
	}
	return b.carry(e)
}

// holdsAccounts reports whether a carried-forward event is a pass's
// accounts record, which only the account model reads.
func holdsAccounts(e *portrait.Event) bool {
	if !bytes.Contains(e.Properties, []byte(`"accounts"`)) {
		return false
	}
	var bs struct {
		Accounts json.RawMessage `json:"accounts"`
	}
	json.Unmarshal(e.Properties, &bs)
	return len(bs.Accounts) > 0 && string(bs.Accounts) != "null"
}

// CarriedLog is what finding the latest accounts record needs of a store.
type CarriedLog interface {
	portrait.RetentionLog
	EventByMessageID(ctx context.Context, messageID string) (*portrait.Event, error)
}

// CarriedAccounts returns the accounts record of the latest retention
// pass over the events (nil: none). Each pass that finds one among its
// expired events writes its successor, so the latest pass's is the one in
// force.
func CarriedAccounts(ctx context.Context, log CarriedLog) ([]byte, error) {
	runs, err := log.RetentionRuns(ctx, 1000)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Kind != "events" {
			continue
		}
		e, err := log.EventByMessageID(ctx, RetainedID(AccountsID, r.Before))
		if err != nil || e == nil {
			return nil, err
		}
		var bs struct {
			Accounts []byte `json:"accounts"`
		}
		if err := json.Unmarshal(e.Properties, &bs); err != nil {
			return nil, portrait.Errorf(portrait.EINTERNAL, "carried-forward accounts %s cannot be read: %v", e.MessageID, err)
		}
		return bs.Accounts, nil
	}
	return nil, nil
}

// decisionsOf returns the decisions a carried-forward event holds (nil:
// it holds a profile).
func decisionsOf(e *portrait.Event) *Decisions {
	var bs struct {
		Decisions *Decisions `json:"decisions"`
	}
	json.Unmarshal(e.Properties, &bs)
	return bs.Decisions
}

// decide installs carried-forward decisions and replays the profiles they
// concern under them (a rebuild meets them after the kept events, which
// merged or applied what they forbid). The live state that wrote them
// holds them already.
func (b *batch) decide(e *portrait.Event, d *Decisions) error {
	involved := map[string]bool{}
	for _, id := range d.Retracted {
		if b.p.retracted[id] {
			continue
		}
		b.p.retracted[id] = true
		if err := b.tx.PutRetracted(id); err != nil {
			return err
		}
		x, err := b.p.Store.EventByMessageID(b.ctx, id)
		if err != nil {
			return err
		}
		if x != nil {
			if err := b.involve(b.p.prepare(x).ids, involved); err != nil {
				return err
			}
		}
	}
	for _, bs := range d.Splits {
		s := &Split{MessageID: bs.ID, Bridge: bs.Bridge, Via: bs.Via, By: bs.By, A: bs.A, B: bs.B}
		b.p.addSplitCache(s)
		if err := b.tx.PutSplit(s); err != nil {
			return err
		}
		if err := b.involve(append(append([]portrait.Identifier{s.Via}, s.A...), s.B...), involved); err != nil {
			return err
		}
	}
	if len(involved) == 0 {
		return nil
	}
	b.replay = "replay under the decisions carried forward by " + e.MessageID
	return b.rebuild(nil, nil, involved)
}

// carry installs the profile a carried-forward event holds, as the expired
// events had made it. Its identifiers that another profile owns by now (an
// event of the expired period that arrived after the compaction, replayed
// before it) join that profile to it, as a merge.
func (b *batch) carry(e *portrait.Event) error {
	if holdsAccounts(e) {
		return nil
	}
	if d := decisionsOf(e); d != nil {
		return b.decide(e, d)
	}
	bs, q, err := decodeBase(e)
	if err != nil {
		return err
	}
	var owners []string
	var fresh []BaseIdentity
	for _, x := range bs.Identities {
		o, err := b.identity(portrait.Identifier{Type: x.Type, Value: x.Value})
		if err != nil {
			return err
		}
		if o == "" {
			fresh = append(fresh, x)
		} else if !contains(owners, o) {
			owners = append(owners, o)
		}
	}
	pr := q
	pr.Identifiers = nil
	if pr.Traits == nil {
		pr.Traits = map[string]portrait.Trait{}
	}
	if pr.EventCounts == nil {
		pr.EventCounts = map[string]int{}
	}
	b.touch(pr)
	b.markStale(pr.ID)
	if err := b.p.graph.unalias(b.tx, pr.ID); err != nil {
		return err
	}
	for _, x := range fresh {
		id := portrait.Identifier{Type: x.Type, Value: x.Value}
		pr.Identifiers = append(pr.Identifiers, id)
		if err := b.p.graph.attach(b.tx, id, pr.ID, portrait.EventKey{Time: x.At, MessageID: x.Msg}); err != nil {
			return err
		}
	}
	sort.Slice(pr.Identifiers, func(i, j int) bool { return b.p.Rules.Less(pr.Identifiers[i], pr.Identifiers[j]) })
	for _, id := range bs.Refused {
		if err := b.p.graph.refuse(b.tx, id, pr.ID); err != nil {
			return err
		}
	}
	for _, m := range pr.MergedFrom {
		if err := b.p.graph.alias(b.tx, m, pr.ID); err != nil {
			return err
		}
	}
	if err := b.tx.AddProfileEvent(pr.ID, e); err != nil {
		return err
	}
	for _, o := range owners {
		op, err := b.profile(o)
		if err != nil {
			return err
		}
		via := portrait.Identifier{}
		for _, x := range bs.Identities {
			id := portrait.Identifier{Type: x.Type, Value: x.Value}
			if w, _ := b.identity(id); w == o {
				via = id
				break
			}
		}
		if pr, err = b.merge(op, pr, via, e); err != nil {
			return err
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (p *Processor) loadCompacted(ctx context.Context) error {
	p.compacted = map[string]bool{}
	cs, ok := p.Store.(interface {
		LoadCompacted(ctx context.Context) ([]string, error)
	})
	if !ok {
		return nil
	}
	ids, err := cs.LoadCompacted(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		p.compacted[id] = true
	}
	return nil
}

// Compact expires the events with an event time before before: it derives
// the state they alone make in scratch (a private store from newScratch),
// carries each of its profiles forward in the log, and hands the rest to
// st (see CompactStore). It holds the processor's lock throughout, as an
// erasure does, and considers only events already applied: one applied
// later expires at the next pass.
func (p *Processor) Compact(ctx context.Context, st CompactStore, before time.Time, newScratch func(ctx context.Context) (ScratchStore, error)) (*portrait.RetentionRun, error) {
	run := &portrait.RetentionRun{Kind: "events", Before: before.UTC(), At: p.Now().UTC()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false
		return nil, err
	}
	p.committed.Store(p.applied.Load())
	expired, err := st.ExpiredEvents(ctx, before, p.applied.Load())
	if err != nil {
		return nil, err
	}
	// A pass whose expired events are all carried-forward events of an
	// earlier pass would only write them again.
	fresh := 0
	for _, e := range expired {
		if e.Type != portrait.EventRetained {
			fresh++
		}
	}
	if fresh == 0 {
		return run, nil
	}
	for _, e := range expired {
		if e.Type == portrait.EventRetained {
			continue
		}
		run.Deleted++
		if run.Oldest.IsZero() || e.Timestamp.Before(run.Oldest) {
			run.Oldest = e.Timestamp.UTC()
		}
		if e.Timestamp.After(run.Newest) {
			run.Newest = e.Timestamp.UTC()
		}
	}
	isExpired := expiredIDs(expired)
	rename := expiredNames(expired, before)
	bases, decisions, err := p.prefixState(ctx, expired, isExpired, newScratch)
	if err != nil {
		return nil, err
	}
	c := &Compaction{Expired: expired, Owners: map[string]string{}}
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		return nil, err
	}
	owned := map[string]bool{}
	for i := range bases {
		bs := &bases[i]
		q := bs.q
		owner := ""
		for _, x := range bs.base.Identities {
			if owner, err = p.graph.ownerOf(tx, portrait.Identifier{Type: x.Type, Value: x.Value}); err != nil || owner != "" {
				break
			}
		}
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		if owner == "" {
			continue // erased since: nothing of it is carried
		}
		owned[owner] = true
		live, err := tx.Profile(owner)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		if err := trimBase(bs, live, isExpired); err != nil {
			tx.Rollback()
			return nil, err
		}
		if err := renameBase(bs, rename); err != nil {
			tx.Rollback()
			return nil, err
		}
		if err := p.renameAttached(tx, bs, rename); err != nil {
			tx.Rollback()
			return nil, err
		}
		body, err := json.Marshal(bs.base)
		if err != nil {
			tx.Rollback()
			return nil, portrait.Wrap(err, "cannot encode a carried-forward profile")
		}
		e := &portrait.Event{MessageID: RetainedID(q.ID, before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
			Properties: body, Timestamp: q.FirstKey.Time, ReceivedAt: run.At}
		c.Carried = append(c.Carried, e)
		c.Owners[e.MessageID] = owner
	}
	if decisions != nil {
		e, err := p.carryDecisions(tx, decisions, expired, before, run.At)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		c.Carried = append(c.Carried, e)
	}
	if p.Accounts != nil {
		e, err := carryAccounts(p.Accounts, expired, rename, before, run.At)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		if e != nil {
			c.Carried = append(c.Carried, e)
		}
	}
	if err := p.renameLive(tx, owned, rename); err != nil {
		tx.Rollback()
		return nil, err
	}
	// What the live state names differently now (splits, provenance) is
	// written before the log's part: a replay of the compacted log names
	// them so.
	if err := tx.Commit(); err != nil {
		p.loaded = false
		return nil, err
	}
	if err := p.Store.WaitState(ctx); err != nil {
		p.loaded = false
		return nil, err
	}
	run.Profiles, run.Carried = len(owned), len(c.Carried)
	c.Run = *run
	err = st.ExpireEvents(ctx, c)
	// The caches may now disagree with storage (compacted ids, event lists).
	p.loaded = false
	if err != nil {
		return nil, err
	}
	*run = c.Run
	return run, nil
}

// carryDecisions makes the event carrying decisions forward, and renames
// in the live state the splits whose event (or bridge) expires, as a
// replay of the compacted log names them. The event takes the time of the
// oldest expired event, so that the next pass expires it with the rest
// (and derives its decisions again).
func (p *Processor) carryDecisions(tx StateTx, d *Decisions, expired []*portrait.Event, before, at time.Time) (*portrait.Event, error) {
	for _, bs := range d.Splits {
		old := p.splits[bs.ID]
		for _, s := range p.splits {
			if SplitID(s.MessageID) == bs.ID {
				old = s
			}
		}
		if old == nil || (old.MessageID == bs.ID && old.Bridge == bs.Bridge) {
			continue
		}
		if err := tx.DeleteSplit(old.MessageID); err != nil {
			return nil, err
		}
		if err := tx.PutSplit(&Split{MessageID: bs.ID, Bridge: bs.Bridge, Via: bs.Via, By: bs.By, A: bs.A, B: bs.B}); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(Base{Decisions: d})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot encode carried-forward decisions")
	}
	return &portrait.Event{MessageID: RetainedID("$decisions", before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
		Properties: body, Timestamp: oldestOf(expired), ReceivedAt: at}, nil
}

func oldestOf(expired []*portrait.Event) time.Time {
	oldest := expired[0].Timestamp
	for _, e := range expired {
		if e.Timestamp.Before(oldest) {
			oldest = e.Timestamp
		}
	}
	return oldest
}

// carryAccounts makes the event carrying the accounts forward (nil: the
// expired events make none and carry no earlier record). Like the
// decisions it takes the time of the oldest expired event, so that the
// next pass expires it and derives its successor from it.
func carryAccounts(ac AccountCarrier, expired []*portrait.Event, rename map[string]string, before, at time.Time) (*portrait.Event, error) {
	rec, err := ac.CarryForward(expired, rename)
	if err != nil || rec == nil {
		return nil, err
	}
	body, err := json.Marshal(Base{Accounts: rec})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot encode carried-forward accounts")
	}
	return &portrait.Event{MessageID: RetainedID(AccountsID, before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
		Properties: body, Timestamp: oldestOf(expired), ReceivedAt: at}, nil
}

// expiredNames gives each expired event's message id the name that
// replaces it wherever the state keeps it (trait provenance, the keys of a
// profile's first, last, identity and merge events, the event that
// attached an identifier), so that nothing names a message the log no
// longer holds. The names keep the order of the ids they replace: a key
// is (event time, message id), and the id breaks ties (which trait wins,
// which profile survives a merge), so a replay of the compacted log
// decides as the live state did. The limit in the name keeps passes apart.
func expiredNames(expired []*portrait.Event, before time.Time) map[string]string {
	ids := make([]string, 0, len(expired))
	for _, e := range expired {
		ids = append(ids, e.MessageID)
	}
	sort.Strings(ids)
	ids = slices.Compact(ids)
	out := make(map[string]string, len(ids))
	prefix := "~expired:" + strconv.FormatInt(before.UnixMicro(), 10) + ":"
	for i, id := range ids {
		out[id] = fmt.Sprintf("%s%09d", prefix, i)
	}
	return out
}

// renameProfile renames the expired message ids q names (see
// expiredNames), reporting whether it named any.
func renameProfile(q *portrait.Profile, rename map[string]string) bool {
	changed := false
	for name, t := range q.Traits {
		if n, ok := rename[t.MessageID]; ok {
			t.MessageID = n
			q.Traits[name] = t
			changed = true
		}
	}
	for _, k := range []*portrait.EventKey{&q.FirstKey, &q.LastKey, &q.IdentityKey, &q.MergeKey} {
		if n, ok := rename[k.MessageID]; ok {
			k.MessageID = n
			changed = true
		}
	}
	return changed
}

// renameBase renames the expired message ids a carried-forward profile
// names.
func renameBase(pp *prefixProfile, rename map[string]string) error {
	for i, x := range pp.base.Identities {
		if n, ok := rename[x.Msg]; ok {
			pp.base.Identities[i].Msg = n
		}
	}
	if !renameProfile(pp.q, rename) {
		return nil
	}
	doc, err := profiledoc.Encode(pp.q)
	if err != nil {
		return err
	}
	pp.base.Profile = doc
	return nil
}

// renameAttached renames, in the live graph, the expired events that
// attached the identifiers of a carried-forward profile (bs, already
// renamed): the live graph attached them by the same events, unless one
// was attached again since by a kept event.
func (p *Processor) renameAttached(tx StateTx, bs *prefixProfile, rename map[string]string) error {
	old := make(map[string]string, len(rename))
	for o, n := range rename {
		old[n] = o
	}
	for _, x := range bs.base.Identities {
		was, ok := old[x.Msg]
		if !ok {
			continue
		}
		id := portrait.Identifier{Type: x.Type, Value: x.Value}
		owner, err := p.graph.ownerOf(tx, id)
		if err != nil {
			return err
		}
		if owner == "" {
			continue
		}
		if k, known := p.graph.attachedAt(id); known && k.MessageID != was {
			continue
		}
		if err := p.graph.attach(tx, id, owner, portrait.EventKey{Time: x.At, MessageID: x.Msg}); err != nil {
			return err
		}
	}
	return nil
}

// renameLive renames the expired message ids the live profiles that own
// carried-forward events name, as their carried-forward profiles name
// them.
func (p *Processor) renameLive(tx StateTx, owners map[string]bool, rename map[string]string) error {
	ids := make([]string, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		live, err := tx.Profile(id)
		if err != nil {
			return err
		}
		if live == nil || !renameProfile(live, rename) {
			continue
		}
		if err := tx.PutProfile(live); err != nil {
			return err
		}
	}
	return nil
}

type prefixProfile struct {
	q    *portrait.Profile
	base Base
}

// prefixState derives, in a scratch store, the profiles that events alone
// make, with the same rules and enrichers as p.
//
// The scratch store starts with the live decisions (the retractions and
// the splits whose events have not expired: the expired ones are in
// events): a decision made after the limit about an expired event applies
// to the prefix as it applies to the whole history. The decisions in
// force at the end are returned to be carried forward (nil: none).
func (p *Processor) prefixState(ctx context.Context, events []*portrait.Event, isExpired func(string) bool, newScratch func(ctx context.Context) (ScratchStore, error)) ([]prefixProfile, *Decisions, error) {
	sc, err := newScratch(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer sc.Close()
	if len(p.retracted) > 0 || len(p.splits) > 0 {
		tx, err := sc.BeginState(ctx)
		if err != nil {
			return nil, nil, err
		}
		for id := range p.retracted {
			if err := tx.PutRetracted(id); err != nil {
				tx.Rollback()
				return nil, nil, err
			}
		}
		for _, s := range p.splits {
			if isExpired(s.MessageID) {
				continue
			}
			if err := tx.PutSplit(s); err != nil {
				tx.Rollback()
				return nil, nil, err
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, nil, err
		}
		if err := sc.WaitState(ctx); err != nil {
			return nil, nil, err
		}
	}
	copies := make([]*portrait.Event, len(events))
	for i, e := range events {
		c := *e
		c.Seq = 0
		copies[i] = &c
	}
	for len(copies) > 0 {
		n := min(len(copies), 10_000)
		if _, err := sc.Append(ctx, copies[:n], nil); err != nil {
			return nil, nil, err
		}
		copies = copies[n:]
	}
	last, err := sc.LastSeq(ctx)
	if err != nil {
		return nil, nil, err
	}
	sp := NewProcessor(sc, p.Rules)
	sp.Now, sp.Log = p.Now, p.Log
	sp.Standardize, sp.Enrichers, sp.OnceTraits, sp.SourcePriority = p.Standardize, p.Enrichers, p.OnceTraits, p.SourcePriority
	sp.MaxProfiles, sp.MaxIdentities = p.MaxProfiles, p.MaxIdentities
	if err := sp.CatchUp(ctx, last); err != nil {
		return nil, nil, err
	}
	decisions, err := scratchDecisions(ctx, sc, isExpired)
	if err != nil {
		return nil, nil, err
	}
	ids, attached, _, err := sc.LoadIdentities(ctx, 1<<62)
	if err != nil {
		return nil, nil, err
	}
	refs, err := sc.LoadRefused(ctx)
	if err != nil {
		return nil, nil, err
	}
	refused := map[string][]portrait.Identifier{}
	for _, r := range refs {
		refused[r.ProfileID] = append(refused[r.ProfileID], r.ID)
	}
	byOwner := map[string][]BaseIdentity{}
	for id, pid := range ids {
		k := attached[id]
		byOwner[pid] = append(byOwner[pid], BaseIdentity{Type: id.Type, Value: id.Value, At: k.Time, Msg: k.MessageID})
	}
	var out []prefixProfile
	err = sc.AllProfiles(ctx, func(q *portrait.Profile) error {
		doc, err := profiledoc.Encode(q)
		if err != nil {
			return err
		}
		bi := byOwner[q.ID]
		sort.Slice(bi, func(i, j int) bool {
			if bi[i].Type != bi[j].Type {
				return bi[i].Type < bi[j].Type
			}
			return bi[i].Value < bi[j].Value
		})
		out = append(out, prefixProfile{q: q, base: Base{Profile: doc, Identities: bi, Refused: refused[q.ID]}})
		return nil
	})
	return out, decisions, err
}

// scratchDecisions are the decisions in force in the scratch store, as
// they are carried forward (see BaseSplit).
func scratchDecisions(ctx context.Context, sc ScratchStore, isExpired func(string) bool) (*Decisions, error) {
	ss, err := sc.LoadSplits(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := sc.LoadRetracted(ctx)
	if err != nil {
		return nil, err
	}
	d := &Decisions{}
	for _, s := range ss {
		bs := BaseSplit{ID: s.MessageID, Bridge: s.Bridge, Via: s.Via, By: s.By, A: s.A, B: s.B}
		if isExpired(bs.ID) {
			bs.ID = SplitID(bs.ID)
		}
		if isExpired(bs.Bridge) {
			bs.Bridge = ""
		}
		if bs.Bridge == "" && len(bs.A) == 0 && len(bs.B) == 0 {
			continue // a merge that never happened and never will
		}
		d.Splits = append(d.Splits, bs)
	}
	for _, id := range rs {
		if !isExpired(id) {
			d.Retracted = append(d.Retracted, id)
		}
	}
	if len(d.Splits) == 0 && len(d.Retracted) == 0 {
		return nil, nil
	}
	sort.Slice(d.Splits, func(i, j int) bool { return d.Splits[i].ID < d.Splits[j].ID })
	sort.Strings(d.Retracted)
	return d, nil
}

// ScratchDir makes the directory of a scratch store under dir (the data
// directory, so that the expired events it briefly holds stay where the
// store's own files are, with their permissions).
func ScratchDir(dir string) (string, error) {
	return os.MkdirTemp(dir, "retention-")
}

func expiredIDs(expired []*portrait.Event) func(string) bool {
	var m map[string]bool
	return func(id string) bool {
		if m == nil {
			m = make(map[string]bool, len(expired))
			for _, e := range expired {
				m[e.MessageID] = true
			}
		}
		return m[id]
	}
}

// trimBase leaves out of a carried-forward profile the trait values an
// expired event set that the live profile no longer shows (a later event
// replaced them): a replay meets the replacing event after the carried
// profile, so the result is the same, and a value nobody sees is not kept
// past its retention. Values the enrichers derived are kept (they
// recompute them from their state).
func trimBase(pp *prefixProfile, live *portrait.Profile, expired func(string) bool) error {
	if live == nil {
		return nil
	}
	trimmed := false
	for name, t := range pp.q.Traits {
		if t.MessageID == "" || !expired(t.MessageID) {
			continue
		}
		if cur, ok := live.Traits[name]; ok && cur.MessageID != t.MessageID {
			delete(pp.q.Traits, name)
			trimmed = true
		}
	}
	if !trimmed {
		return nil
	}
	doc, err := profiledoc.Encode(pp.q)
	if err != nil {
		return err
	}
	pp.base.Profile = doc
	return nil
}

// ExpiredID is an expired event's message id in the log once it is a
// tombstone. Unlike an erased event's it includes the sequence number: a
// message id can expire more than once (a carried-forward event's, when a
// later pass replaces it under the same id; an old event sent again).
func ExpiredID(e *portrait.Event) string {
	h := sha256.Sum256([]byte(strconv.FormatInt(e.Seq, 10) + "\n" + e.MessageID))
	return "expired:" + hex.EncodeToString(h[:16])
}
