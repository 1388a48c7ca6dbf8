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
	// RankMessages ranks the message ids of the scratch log, which holds
	// the expired events and nothing else, in byte order (once all are
	// appended); MessageRanks then returns, for each of ids the log
	// holds, the number of its message ids that sort before it (ids it
	// does not hold are left out: they did not expire), a set-wise query
	// per page of ids.
	RankMessages(ctx context.Context) error
	MessageRanks(ctx context.Context, ids []string) (map[string]int64, error)
	// IdentitiesOfProfiles returns the identifiers each of pids owns,
	// with the key of the event that attached each.
	IdentitiesOfProfiles(ctx context.Context, pids []string) (map[string][]BaseIdentity, error)
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
	// ExpiredAmong returns those of ids that name an event ExpiredEvents
	// returns for before and upTo, a set-wise query per page of ids.
	ExpiredAmong(ctx context.Context, before time.Time, upTo int64, ids []string) (map[string]bool, error)
	// ExpireEvents appends the carried-forward events (giving them their
	// sequence numbers), lists each on its owner, records them as
	// already applied (the live state holds them), turns the expired
	// events (those ExpiredEvents returns for Before and UpTo) into
	// tombstones and deletes what was derived from them alone (their
	// event lists, trait issues, journal entries), and records the run.
	// The carried-forward events and the run commit together, before
	// any tombstone; the tombstones then commit in batches of
	// TombstoneBatch, the run recording that they are under way, so a
	// pass stopped between batches is finished (and not done twice) by
	// the next start or pass.
	ExpireEvents(ctx context.Context, c *Compaction) error
	// LoadCompacted returns the message ids of carried-forward events the
	// live state already holds.
	LoadCompacted(ctx context.Context) ([]string, error)
	// FinishExpiry finishes a pass whose ExpireEvents stopped between
	// its batches (a failed statement, a full disk), as the next start
	// would: a pass begins with it, for until then the log holds both
	// that pass's carried-forward events and some of its expired events.
	FinishExpiry(ctx context.Context) error
}

// ExpiredRef names an expired event.
type ExpiredRef struct {
	Seq       int64
	MessageID string
}

// ExpiredPage is how many expired events a pass (and a store expiring
// them) holds at a time.
const ExpiredPage = 2000

// TombstoneBatch is how many expired events a store turns into
// tombstones in one transaction: the write-ahead log of each is bounded,
// whatever a pass expires.
const TombstoneBatch = 10 * ExpiredPage

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
	Before time.Time
	UpTo   int64
	// Carried calls fn with the carried-forward events to append, a page
	// at a time, in the order they are to be appended; each call reads
	// them anew (from the pass's spill file, so that nothing holds them
	// all).
	Carried func(fn func(page []Carried) error) error
}

// Carried is a carried-forward event to append and the live profile it
// belongs to ("" for the decisions and accounts events: none).
type Carried struct {
	Event *portrait.Event
	Owner string
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
// Nothing the pass holds grows with the expired events, and next to
// nothing with the expired period's profiles: the expired events are read
// page by page (ExpiredPage at a time) into the scratch store, whose
// processor keeps bounded caches; the scratch profiles are then carried
// forward a chunk at a time (CarryChunk: owners, live profiles, names of
// expired messages, each chunk's renames committed), into a spill file
// that the store reads back page by page (Compaction.Carried).
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
	if err := st.FinishExpiry(ctx); err != nil {
		return nil, err
	}
	var sc ScratchStore
	defer func() {
		if sc != nil {
			sc.Close()
		}
	}()
	var sp *Processor
	var oldest time.Time // of every expired event, carried-forward ones included
	fresh := 0
	began := false
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
			// Whether the live splits' events expired: asked once, for
			// all of them.
			live := func(ids []string) (map[string]bool, error) { return st.ExpiredAmong(ctx, before, upTo, ids) }
			if sp, err = p.prefixProcessor(ctx, sc, live); err != nil {
				return nil, err
			}
			if p.Accounts != nil {
				if err := p.Accounts.BeginCarry(); err != nil {
					return nil, err
				}
				began = true
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
		// Each page is applied right after it is appended, while the
		// scratch store's tail still holds it.
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
	sp = nil // its caches go before the profiles are carried
	finishAccounts := func() {
		if began {
			p.Accounts.FinishCarry(nil) // renames nothing
		}
	}
	// A pass whose expired events are all carried-forward events of an
	// earlier pass would only write them again.
	if fresh == 0 {
		run.Deleted = 0
		finishAccounts()
		return run, nil
	}
	if err := sc.RankMessages(ctx); err != nil {
		finishAccounts()
		return nil, err
	}
	// The scratch log holds the expired events and nothing else: it
	// answers which ids expired, and their names' ranks.
	expired := func(ids []string) (map[string]int64, error) { return sc.MessageRanks(ctx, ids) }
	spill, err := newSpill()
	if err != nil {
		finishAccounts()
		return nil, err
	}
	defer spill.remove()
	c := &Compaction{Before: before, UpTo: upTo, Carried: spill.read}
	if err := p.carryProfiles(ctx, sc, spill, run, before, expired); err != nil {
		finishAccounts()
		p.loaded = false
		return nil, err
	}
	decisions, err := scratchDecisions(ctx, sc, expired)
	if err != nil {
		finishAccounts()
		p.loaded = false
		return nil, err
	}
	tx, err := p.Store.BeginState(ctx)
	if err != nil {
		finishAccounts()
		return nil, err
	}
	if decisions != nil {
		e, err := p.carryDecisions(tx, decisions, oldest, before, run.At)
		if err == nil {
			err = spill.write(e, "")
		}
		if err != nil {
			tx.Rollback()
			finishAccounts()
			return nil, err
		}
		run.Decisions = true
	}
	if began {
		// The accounts' names are per account: asked of the scratch log
		// in one set-wise question.
		var names []string
		p.Accounts.CarryNames(func(id string) {
			if id != "" {
				names = append(names, id)
			}
		})
		rename, err := expiredNames(expired, before, names)
		if err != nil {
			tx.Rollback()
			finishAccounts()
			return nil, err
		}
		began = false
		e, err := carryAccounts(p.Accounts, rename, oldest, before, run.At)
		if err == nil && e != nil {
			err = spill.write(e, "")
			run.Accounts = true
		}
		if err != nil {
			tx.Rollback()
			return nil, err
		}
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
	if err := spill.done(); err != nil {
		p.loaded = false
		return nil, err
	}
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

// CarryChunk is how many scratch profiles a pass carries forward at a
// time: it holds them, their live owners and the names of the expired
// messages they name, and commits their renames, a chunk at a time.
const CarryChunk = 1000

// carryProfiles carries each profile of the scratch state forward into
// spill, a chunk at a time (see CarryChunk), and renames the expired
// messages the live state names (each chunk's renames committed), adding
// to run the live profiles with carried-forward events (Profiles) and the
// carried-forward profiles (Carried).
func (p *Processor) carryProfiles(ctx context.Context, sc ScratchStore, spill *spill, run *portrait.RetentionRun, before time.Time, expired func([]string) (map[string]int64, error)) error {
	refs, err := sc.LoadRefused(ctx)
	if err != nil {
		return err
	}
	refused := map[string][]portrait.Identifier{}
	for _, r := range refs {
		refused[r.ProfileID] = append(refused[r.ProfileID], r.ID)
	}
	// The live profiles with carried-forward events, counted once each (a
	// live profile may own profiles of several chunks).
	owners := map[string]struct{}{}
	var chunk []*prefixProfile
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk = chunk[:0] }()
		pids := make([]string, len(chunk))
		for i, pp := range chunk {
			pids[i] = pp.q.ID
		}
		idsOf, err := sc.IdentitiesOfProfiles(ctx, pids)
		if err != nil {
			return err
		}
		tx, err := p.Store.BeginState(ctx)
		if err != nil {
			return err
		}
		fail := func(err error) error { tx.Rollback(); return err }
		// The message ids the kept state may name: only those that
		// expired are renamed, and only these are asked for.
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
		kept := chunk[:0]
		for _, bs := range chunk {
			bi := idsOf[bs.q.ID]
			sort.Slice(bi, func(i, j int) bool {
				if bi[i].Type != bi[j].Type {
					return bi[i].Type < bi[j].Type
				}
				return bi[i].Value < bi[j].Value
			})
			bs.base.Identities, bs.base.Refused = bi, refused[bs.q.ID]
			owner := ""
			for _, x := range bi {
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
			for _, x := range bi {
				name(x.Msg)
			}
			kept = append(kept, bs)
		}
		list := make([]string, 0, len(names))
		for id := range names {
			list = append(list, id)
		}
		rename, err := expiredNames(expired, before, list)
		if err != nil {
			return fail(err)
		}
		renamed := make(map[string]string, len(rename))
		for o, n := range rename {
			renamed[n] = o
		}
		for _, bs := range kept {
			if err := trimBase(bs, bs.live, rename); err != nil {
				return fail(err)
			}
			bs.live = nil
			if err := renameBase(bs, rename); err != nil {
				return fail(err)
			}
			if err := p.renameAttached(tx, bs, renamed); err != nil {
				return fail(err)
			}
			if bs.base.Profile == nil {
				if bs.base.Profile, err = profiledoc.Encode(bs.q); err != nil {
					return fail(err)
				}
			}
			body, err := json.Marshal(bs.base)
			if err != nil {
				return fail(portrait.Wrap(err, "cannot encode a carried-forward profile"))
			}
			e := &portrait.Event{MessageID: RetainedID(bs.q.ID, before), Type: portrait.EventRetained, Source: portrait.SourceRetention,
				Properties: body, Timestamp: bs.q.FirstKey.Time, ReceivedAt: run.At}
			if err := spill.write(e, bs.owner); err != nil {
				return fail(err)
			}
			run.Carried++
		}
		if err := p.renameLive(tx, owned, rename); err != nil {
			return fail(err)
		}
		for o := range owned {
			owners[o] = struct{}{}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		return p.Store.WaitState(ctx)
	}
	err = sc.AllProfiles(ctx, func(q *portrait.Profile) error {
		chunk = append(chunk, &prefixProfile{q: q})
		if len(chunk) < CarryChunk {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	run.Profiles = len(owners)
	return err
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

// expiredNames gives each of ids that expired the name that replaces it
// wherever the state keeps it (trait provenance, the keys of a profile's
// first, last, identity and merge events, the event that attached an
// identifier), so that nothing names a message the log no longer holds.
// The names keep the order of the ids they replace: a key is (event time,
// message id), and the id breaks ties (which trait wins, which profile
// survives a merge), so a replay of the compacted log decides as the live
// state did. The limit in the name keeps passes apart.
//
// An expired id's name is its rank among all the expired ids (in byte
// order), which the scratch log, holding the expired events and nothing
// else, answers set-wise (ScratchStore.MessageRanks): a pass asks for the
// ids a chunk of profiles names, so nothing here grows with the expired
// events or the profiles.
func expiredNames(expired func([]string) (map[string]int64, error), before time.Time, ids []string) (map[string]string, error) {
	ranks, err := expired(ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ranks))
	prefix := "~expired:" + strconv.FormatInt(before.UnixMicro(), 10) + ":"
	for id, rank := range ranks {
		out[id] = fmt.Sprintf("%s%09d", prefix, rank)
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
// tail need only hold a page or so), with bounded caches.
//
// The scratch store starts with the live decisions (the retractions and
// the splits whose events have not expired: the expired ones are in
// events): a decision made after the limit about an expired event applies
// to the prefix as it applies to the whole history. Whether the splits'
// events expired is asked once for all of them.
func (p *Processor) prefixProcessor(ctx context.Context, sc ScratchStore, expired func([]string) (map[string]bool, error)) (*Processor, error) {
	if len(p.retracted) > 0 || len(p.splits) > 0 {
		ids := make([]string, 0, len(p.splits))
		for _, s := range p.splits {
			ids = append(ids, s.MessageID)
		}
		gone, err := expired(ids)
		if err != nil {
			return nil, err
		}
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
			if gone[s.MessageID] {
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
	// A page at a time, and bounded caches: the scratch processor's
	// default profile cache (250,000 profiles) was most of a pass's heap,
	// and its identity graph, held whole up to 2,000,000 identifiers, the
	// rest. Past them it reads the scratch store, as the live processor
	// does past its own.
	sp.BatchSize, sp.MaxBatchSize = ExpiredPage, ExpiredPage
	sp.MaxProfiles = min(p.MaxProfiles, ScratchProfiles)
	sp.MaxIdentities = min(p.MaxIdentities, ScratchIdentities)
	return sp, nil
}

// ScratchProfiles and ScratchIdentities bound the scratch processor's
// profile cache and identity graph (see prefixProcessor).
var (
	ScratchProfiles   = 8000
	ScratchIdentities = 250_000
)

// scratchDecisions are the decisions in force in the scratch store, as
// they are carried forward (see BaseSplit). Whether their events expired
// is asked once for all of them.
func scratchDecisions(ctx context.Context, sc ScratchStore, expired func([]string) (map[string]int64, error)) (*Decisions, error) {
	ss, err := sc.LoadSplits(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := sc.LoadRetracted(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, 2*len(ss)+len(rs))
	for _, s := range ss {
		ids = append(ids, s.MessageID, s.Bridge)
	}
	ids = append(ids, rs...)
	gone, err := expired(ids)
	if err != nil {
		return nil, err
	}
	isExpired := func(id string) bool {
		_, x := gone[id]
		return id != "" && x
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

// trimBase leaves out of a carried-forward profile the trait values an
// expired event set that the live profile no longer shows (a later event
// replaced them): a replay meets the replacing event after the carried
// profile, so the result is the same, and a value nobody sees is not kept
// past its retention. Values the enrichers derived are kept (they
// recompute them from their state). rename holds the expired ids the
// chunk names (and their new names: a live profile that owns profiles of
// an earlier chunk names them so already).
func trimBase(pp *prefixProfile, live *portrait.Profile, rename map[string]string) error {
	if live == nil {
		return nil
	}
	trimmed := false
	for name, t := range pp.q.Traits {
		n, expired := rename[t.MessageID]
		if t.MessageID == "" || !expired {
			continue
		}
		if cur, ok := live.Traits[name]; ok && cur.MessageID != t.MessageID && cur.MessageID != n {
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
