package profile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
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
	// ExpiredEvents returns up to limit events (tombstones left out) with
	// an event time before before and a sequence number after after and
	// up to upTo, in log order. A pass reads them page by page, so that
	// its memory does not grow with their number.
	ExpiredEvents(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]*portrait.Event, error)
	// ExpiredRefs is ExpiredEvents' sequence numbers and message ids
	// alone.
	ExpiredRefs(ctx context.Context, before time.Time, upTo, after int64, limit int) ([]ExpiredRef, error)
	// ExpireEvents appends the carried-forward events (giving them their
	// sequence numbers), lists each on the profile named in Owners,
	// records them as already applied (the live state holds them),
	// turns the expired events (those ExpiredEvents returns for Before
	// and UpTo) into tombstones and deletes what was derived from them
	// alone (their event lists, trait issues, journal entries), and
	// records the run.
	ExpireEvents(ctx context.Context, c *Compaction) error
	// LoadCompacted returns the message ids of carried-forward events the
	// live state already holds.
	LoadCompacted(ctx context.Context) ([]string, error)
}

// ExpiredRef names an expired event.
type ExpiredRef struct {
	Seq       int64
	MessageID string
}

// ExpiredPage is how many expired events a pass (and a store expiring
// them) holds at a time.
const ExpiredPage = 2000

// AccountCarrier is the account model (account.Model) as a retention pass
// needs it: it reads the log in its own order and keeps its own state, so
// the pass asks it for the accounts the expired events (in log order, with
// the previous pass's record) alone make, an opaque record (nil: none) the
// model installs before it reads the log again. The pass begins, feeds it
// each page of expired events in log order, asks which message ids it
// names (CarryNames) and finishes with the new names of those that
// expired: the model renames the expired messages it names, live and in
// the record.
type AccountCarrier interface {
	BeginCarry() error
	FeedCarry(page []*portrait.Event)
	CarryNames(fn func(id string))
	FinishCarry(rename map[string]string) ([]byte, error)
}

// AccountsID is the name RetainedID gives the accounts record of a pass.
const AccountsID = "$accounts"

// Compaction is one retention pass over the events.
type Compaction struct {
	Run portrait.RetentionRun
	// Before and UpTo select the events to become tombstones: those
	// CompactStore.ExpiredEvents returns for them.
	Before  time.Time
	UpTo    int64
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
	// LatestRetentionRun returns the latest run of kind (nil: none),
	// however many runs of other kinds came after it.
	LatestRetentionRun(ctx context.Context, kind string) (*portrait.RetentionRun, error)
	EventByMessageID(ctx context.Context, messageID string) (*portrait.Event, error)
}

// CarriedAccounts returns the accounts record of the latest retention
// pass over the events (nil: none). Each pass installs the record in
// force before it applies its expired events and writes their successor
// (account.Model.BeginCarry), so the latest pass's record supersedes every
// earlier one: only the latest events run is needed. (Looking it up among
// the latest 1,000 runs of any kind lost it behind the hourly quarantine
// purges' runs.)
func CarriedAccounts(ctx context.Context, log CarriedLog) ([]byte, error) {
	r, err := log.LatestRetentionRun(ctx, "events")
	if err != nil || r == nil {
		return nil, err
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
//
// The expired events are read page by page (ExpiredPage at a time): each
// page goes to the scratch store and to the account model, and the names
// of expired messages are computed for the ids the kept state names only
// (expiredNames), so that a pass holds per profile, not per expired event.
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
	upTo := p.applied.Load()
	// An id expired if it names an event ExpiredEvents returns. Asked
	// for the decisions only (few).
	isExpired := func(id string) (bool, error) {
		if id == "" {
			return false, nil
		}
		e, err := p.Store.EventByMessageID(ctx, id)
		if err != nil || e == nil {
			return false, err
		}
		return e.Type != portrait.EventErased && e.Seq <= upTo && e.Timestamp.Before(before), nil
	}
	var sc ScratchStore
	var sp *Processor
	defer func() {
		if sc != nil {
			sc.Close()
		}
	}()
	var oldest time.Time // of every expired event, carried-forward ones included
	fresh := 0
	for after := int64(0); ; {
		page, err := st.ExpiredEvents(ctx, before, upTo, after, ExpiredPage)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
		if sc == nil {
			if sc, err = newScratch(ctx); err != nil {
				return nil, err
			}
			if sp, err = p.prefixProcessor(ctx, sc, isExpired); err != nil {
				return nil, err
			}
			if p.Accounts != nil {
				if err := p.Accounts.BeginCarry(); err != nil {
					return nil, err
				}
			}
		}
		copies := make([]*portrait.Event, len(page))
		for i, e := range page {
			if oldest.IsZero() || e.Timestamp.Before(oldest) {
				oldest = e.Timestamp
			}
			c := *e
			c.Seq = 0
			copies[i] = &c
			if e.Type == portrait.EventRetained {
				continue
			}
			fresh++
			run.Deleted++
			if run.Oldest.IsZero() || e.Timestamp.Before(run.Oldest) {
				run.Oldest = e.Timestamp.UTC()
			}
			if e.Timestamp.After(run.Newest) {
				run.Newest = e.Timestamp.UTC()
			}
		}
		if p.Accounts != nil {
			p.Accounts.FeedCarry(page)
		}
		if _, err := sc.Append(ctx, copies, nil); err != nil {
			return nil, err
		}
		last, err := sc.LastSeq(ctx)
		if err != nil {
			return nil, err
		}
		if err := sp.CatchUp(ctx, last); err != nil {
			return nil, err
		}
	}
	// A pass whose expired events are all carried-forward events of an
	// earlier pass would only write them again.
	if fresh == 0 {
		run.Deleted = 0
		if p.Accounts != nil && sc != nil {
			p.Accounts.FinishCarry(nil) // renames nothing
		}
		return run, nil
	}
	bases, decisions, err := prefixState(ctx, sc, isExpired)
	if err != nil {
		return nil, err
	}
	c := &Compaction{Before: before, UpTo: upTo, Owners: map[string]string{}}
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*portrait.RetentionRun, error) {
		tx.Rollback()
		if p.Accounts != nil {
			p.Accounts.FinishCarry(nil)
		}
		return nil, err
	}
	// The message ids the kept state may name: only those that expired
	// are renamed, and only these are looked up among the expired ones.
	names := map[string]bool{}
	name := func(id string) {
		if id != "" {
			names[id] = true
		}
	}
	nameProfile := func(q *portrait.Profile) {
		for _, t := range q.Traits {
			name(t.MessageID)
		}
		for _, k := range []portrait.EventKey{q.FirstKey, q.LastKey, q.IdentityKey, q.MergeKey} {
			name(k.MessageID)
		}
	}
	owned := map[string]bool{}
	kept := bases[:0]
	for i := range bases {
		bs := &bases[i]
		owner := ""
		for _, x := range bs.base.Identities {
			if owner, err = p.graph.ownerOf(tx, portrait.Identifier{Type: x.Type, Value: x.Value}); err != nil || owner != "" {
				break
			}
		}
		if err != nil {
			return fail(err)
		}
		if owner == "" {
			continue // erased since: nothing of it is carried
		}
		owned[owner] = true
		if bs.live, err = tx.Profile(owner); err != nil {
			return fail(err)
		}
		bs.owner = owner
		nameProfile(bs.q)
		if bs.live != nil {
			nameProfile(bs.live)
		}
		for _, x := range bs.base.Identities {
			name(x.Msg)
		}
		kept = append(kept, *bs)
	}
	bases = kept
	if p.Accounts != nil {
		p.Accounts.CarryNames(name)
	}
	rename, err := expiredNames(ctx, st, before, upTo, names)
	names = nil
	if err != nil {
		return fail(err)
	}
	expiredName := func(id string) bool { _, ok := rename[id]; return ok }
	renamed := make(map[string]string, len(rename))
	for o, n := range rename {
		renamed[n] = o
	}
	for i := range bases {
		bs := &bases[i]
		if err := trimBase(bs, bs.live, expiredName); err != nil {
			return fail(err)
		}
		bs.live = nil
		if err := renameBase(bs, rename); err != nil {
			return fail(err)
		}
		if err := p.renameAttached(tx, bs, renamed); err != nil {
			return fail(err)
		}
		body, err := json.Marshal(bs.base)
		if err != nil {
			return fail(portrait.Wrap(err, "cannot encode a carried-forward profile"))
		}
		e := &portrait.Event{MessageID: RetainedID(bs.q.ID, before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
			Properties: body, Timestamp: bs.q.FirstKey.Time, ReceivedAt: run.At}
		c.Carried = append(c.Carried, e)
		c.Owners[e.MessageID] = bs.owner
		bases[i] = prefixProfile{} // encoded: let it go
	}
	run.Carried = len(c.Carried)
	if decisions != nil {
		e, err := p.carryDecisions(tx, decisions, oldest, before, run.At)
		if err != nil {
			return fail(err)
		}
		c.Carried = append(c.Carried, e)
		run.Decisions = true
	}
	if p.Accounts != nil {
		e, err := carryAccounts(p.Accounts, rename, oldest, before, run.At)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		if e != nil {
			c.Carried = append(c.Carried, e)
			run.Accounts = true
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
	run.Profiles = len(owned)
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
func (p *Processor) carryDecisions(tx StateTx, d *Decisions, oldest, before, at time.Time) (*portrait.Event, error) {
	// The live splits by the name a carried split of theirs takes once
	// its event expired (once, not per carried split).
	bySplitID := make(map[string]*Split, len(p.splits))
	for _, s := range p.splits {
		bySplitID[SplitID(s.MessageID)] = s
	}
	for _, bs := range d.Splits {
		old := p.splits[bs.ID]
		if s, ok := bySplitID[bs.ID]; ok {
			old = s
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
		Properties: body, Timestamp: oldest, ReceivedAt: at}, nil
}

// carryAccounts makes the event carrying the accounts forward (nil: the
// expired events make none and carry no earlier record). Like the
// decisions it takes the time of the oldest expired event, so that the
// next pass expires it and derives its successor from it.
func carryAccounts(ac AccountCarrier, rename map[string]string, oldest, before, at time.Time) (*portrait.Event, error) {
	rec, err := ac.FinishCarry(rename)
	if err != nil || rec == nil {
		return nil, err
	}
	body, err := json.Marshal(Base{Accounts: rec})
	if err != nil {
		return nil, portrait.Wrap(err, "cannot encode carried-forward accounts")
	}
	return &portrait.Event{MessageID: RetainedID(AccountsID, before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
		Properties: body, Timestamp: oldest, ReceivedAt: at}, nil
}

// expiredNames gives each expired event's message id the name that
// replaces it wherever the state keeps it (trait provenance, the keys of a
// profile's first, last, identity and merge events, the event that
// attached an identifier), so that nothing names a message the log no
// longer holds. The names keep the order of the ids they replace: a key
// is (event time, message id), and the id breaks ties (which trait wins,
// which profile survives a merge), so a replay of the compacted log
// decides as the live state did. The limit in the name keeps passes apart.
//
// An expired id's name is its rank among all the expired ids. Only the
// ids of names (those the kept state names) need one, so the map holds
// those that expired, and the ranks are counted in one read of the
// expired ids, page by page: an expired id x counts for every name after
// it. The expired ids are distinct (the log's message ids are).
func expiredNames(ctx context.Context, st CompactStore, before time.Time, upTo int64, names map[string]bool) (map[string]string, error) {
	cand := make([]string, 0, len(names))
	for id := range names {
		cand = append(cand, id)
	}
	sort.Strings(cand)
	// below[j]: expired ids after cand[j-1] and before cand[j] (or equal
	// to cand[j-1]); the rank of cand[i] is the sum of below[0..i].
	below := make([]int64, len(cand)+1)
	found := make([]bool, len(cand))
	for after := int64(0); ; {
		refs, err := st.ExpiredRefs(ctx, before, upTo, after, 4*ExpiredPage)
		if err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			break
		}
		after = refs[len(refs)-1].Seq
		for _, r := range refs {
			j := sort.SearchStrings(cand, r.MessageID)
			if j < len(cand) && cand[j] == r.MessageID {
				found[j] = true
				j++
			}
			below[j]++
		}
	}
	out := map[string]string{}
	prefix := "~expired:" + strconv.FormatInt(before.UnixMicro(), 10) + ":"
	var rank int64
	for i, id := range cand {
		rank += below[i]
		if found[i] {
			out[id] = fmt.Sprintf("%s%09d", prefix, rank)
		}
	}
	return out, nil
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
// was attached again since by a kept event. renamed maps each new name
// back to the expired id it replaces (built once per pass).
func (p *Processor) renameAttached(tx StateTx, bs *prefixProfile, renamed map[string]string) error {
	for _, x := range bs.base.Identities {
		was, ok := renamed[x.Msg]
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
	// owner and live: the live profile it belongs to (during the pass).
	owner string
	live  *portrait.Profile
}

// prefixProcessor makes the processor that derives, in the scratch store
// sc, the profiles the expired events alone make, with the same rules and
// enrichers as p. The pass appends the expired events to sc page by page
// and has it catch up after each (so that the scratch store's in-memory
// tail need only hold a page or so); prefixState then reads what it made.
//
// The scratch store starts with the live decisions (the retractions and
// the splits whose events have not expired: the expired ones are in
// events): a decision made after the limit about an expired event applies
// to the prefix as it applies to the whole history.
func (p *Processor) prefixProcessor(ctx context.Context, sc ScratchStore, isExpired func(string) (bool, error)) (*Processor, error) {
	if len(p.retracted) > 0 || len(p.splits) > 0 {
		tx, err := sc.BeginState(ctx)
		if err != nil {
			return nil, err
		}
		for id := range p.retracted {
			if err := tx.PutRetracted(id); err != nil {
				tx.Rollback()
				return nil, err
			}
		}
		for _, s := range p.splits {
			x, err := isExpired(s.MessageID)
			if err != nil {
				tx.Rollback()
				return nil, err
			}
			if x {
				continue
			}
			if err := tx.PutSplit(s); err != nil {
				tx.Rollback()
				return nil, err
			}
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		if err := sc.WaitState(ctx); err != nil {
			return nil, err
		}
	}
	sp := NewProcessor(sc, p.Rules)
	sp.Now, sp.Log = p.Now, p.Log
	sp.Standardize, sp.Enrichers, sp.OnceTraits, sp.SourcePriority = p.Standardize, p.Enrichers, p.OnceTraits, p.SourcePriority
	sp.MaxProfiles, sp.MaxIdentities = p.MaxProfiles, p.MaxIdentities
	return sp, nil
}

// prefixState reads the profiles the scratch store holds once its
// processor has applied every expired event, as carried-forward profiles,
// and the decisions in force at the end, to be carried forward (nil:
// none).
func prefixState(ctx context.Context, sc ScratchStore, isExpired func(string) (bool, error)) ([]prefixProfile, *Decisions, error) {
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
func scratchDecisions(ctx context.Context, sc ScratchStore, isExpired func(string) (bool, error)) (*Decisions, error) {
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
		x, err := isExpired(bs.ID)
		if err != nil {
			return nil, err
		}
		if x {
			bs.ID = SplitID(bs.ID)
		}
		if x, err = isExpired(bs.Bridge); err != nil {
			return nil, err
		} else if x {
			bs.Bridge = ""
		}
		if bs.Bridge == "" && len(bs.A) == 0 && len(bs.B) == 0 {
			continue // a merge that never happened and never will
		}
		d.Splits = append(d.Splits, bs)
	}
	for _, id := range rs {
		x, err := isExpired(id)
		if err != nil {
			return nil, err
		}
		if !x {
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
