// Package profile derives customer profiles from the event log: it resolves
// each event's identifiers through the identity graph, merges profiles where
// rules allow, and resolves traits by event time with provenance.
//
// The result is defined as applying the log's events in canonical order
// (event time, then messageId). Events that arrive in that order are applied
// incrementally; a late event that could change an identity decision makes
// the processor replay the affected profiles' histories in canonical order,
// so that any arrival order of the same events gives the same profiles.
package profile

import (
	"context"
	"strconv"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Store is what the processor needs from storage.
type Store interface {
	ReadLog(ctx context.Context, after int64, limit int) ([]*portrait.Event, error)
	EventsBySeq(ctx context.Context, seqs []int64) ([]*portrait.Event, error)
	Checkpoint(ctx context.Context, name string) (int64, error)
	LoadRefused(ctx context.Context) ([]Ref, error)
	// LoadIdentities returns the whole identity graph when it has at most
	// max identifiers (complete=true), so lookups need not touch storage,
	// with the key of the event that attached each identifier where known.
	LoadIdentities(ctx context.Context, max int) (ids map[portrait.Identifier]string, attached map[portrait.Identifier]portrait.EventKey, complete bool, err error)
	// BeginState starts a transaction over the derived state. Its Commit
	// may finish in the background; WaitState waits for every commit so
	// far and reports one that failed (as does the next BeginState).
	BeginState(ctx context.Context) (StateTx, error)
	WaitState(ctx context.Context) error
	// EventByMessageID finds a logged event (nil when absent).
	EventByMessageID(ctx context.Context, messageID string) (*portrait.Event, error)
	// LoadRetracted returns the message ids of retracted events.
	LoadRetracted(ctx context.Context) ([]string, error)
	// LoadSplits returns the identity merges people undid (see Split).
	LoadSplits(ctx context.Context) ([]*Split, error)
	// ProfileIDs pages through profile ids in order.
	ProfileIDs(ctx context.Context, after string, limit int) ([]string, error)
}

// Term is a fencing token: the term of the applier writing (the applier
// lease's revision, larger for every new holder) within its fence (what
// the revisions are counted in: the lease bucket). The zero Term is an
// unfenced writer (one node, a rebuild).
type Term struct {
	Fence string
	N     uint64
}

// Fenced is a Store that refuses the state commits of an applier whose
// term has passed, so that a batch in flight when its applier lost the
// lease cannot land after another node took over (docs/scaling.md).
type Fenced interface {
	// ClaimTerm records that term has begun, before its applier reads the
	// state: it waits for a state transaction of an earlier term in
	// flight, and refuses (ECONFLICT) when a later term has begun.
	ClaimTerm(ctx context.Context, term Term) error
	// BeginStateTerm is BeginState for the applier of term: the
	// transaction checks the store's term for the fence and raises it in
	// the same transaction, and its commit is refused (ECONFLICT, nothing
	// of it written) when a later term has begun.
	BeginStateTerm(ctx context.Context, term Term) (StateTx, error)
}

// Ref ties an identifier to a profile.
type Ref struct {
	ID        portrait.Identifier
	ProfileID string
}

// StateTx is one transaction over the derived state. The processor is its
// only writer, which is what lets it cache reads across transactions.
//
// Writes may be recorded and applied only at Commit, which may itself
// finish in the background (see Store.BeginState). Identity and Profile
// may therefore answer from what is committed without this transaction's
// own writes: the processor caches every identity and profile it writes
// and asks only for others. ProfileEventSeqs does include this
// transaction's own changes.
//
// It is made of the identity graph's part (GraphTx) and the profile
// documents' part (DocTx), so that each can be written and tested alone.
type StateTx interface {
	GraphTx
	DocTx

	// Flush hands the writes so far to storage, which may start writing
	// them in the background while the caller goes on; later writes
	// follow them. After a Flush the transaction must not read.
	Flush() error

	Commit() error
	Rollback() error
}

// GraphTx is the identity graph's part of a StateTx: who owns each
// identifier, which profiles an identifier is kept apart from, and where
// the ids of merged profiles point. The processor writes it only through
// its graph (graph.go), which caches it.
type GraphTx interface {
	Identity(id portrait.Identifier) (profileID string, err error) // "" when unowned
	// PutIdentity gives id to a profile; attached is the key of the event
	// that attached it in canonical order (zero: unknown).
	PutIdentity(id portrait.Identifier, profileID string, attached portrait.EventKey) error
	DeleteIdentity(id portrait.Identifier) error
	PutRefused(r Ref) error
	// MoveRefused gives from's refusals to to, except those of
	// identifiers to owns.
	MoveRefused(from, to string) error
	DeleteRefused(profileID string) error
	// PutAlias makes oldID answer as newID (oldID == newID: as itself).
	PutAlias(oldID, newID string) error
	// DropAlias forgets where an id pointed: a profile of that id exists
	// (again), as after an undone merge.
	DropAlias(id string) error
}

// DocTx is the profile documents' part of a StateTx: the profiles, the
// events each received, and the journals, retractions, splits and
// checkpoint written beside them.
type DocTx interface {
	Profile(id string) (*portrait.Profile, error) // nil when absent
	ProfileEventSeqs(profileID string) ([]int64, error)

	// PutProfiles writes profiles (encoding them in parallel).
	PutProfiles(ps []*portrait.Profile) error
	// PutProfile writes one profile. Unlike the other methods it may be
	// called from several goroutines at once (with no other call between).
	PutProfile(p *portrait.Profile) error
	DeleteProfile(id string) error
	AddProfileEvent(profileID string, e *portrait.Event) error
	MoveProfileEvents(from, to string) error
	DeleteProfileEvents(profileID string) error
	AppendMerge(m *portrait.MergeEntry) error
	AddTraitIssue(i *portrait.TraitIssue) error
	PutRetracted(messageID string) error
	// PutSplit records (or updates) a kept-apart decision; DeleteSplit
	// forgets one, named by its split event.
	PutSplit(s *Split) error
	DeleteSplit(messageID string) error
	SetCheckpoint(name string, seq int64) error
}

// Enricher derives more than raw traits from the events a profile receives:
// computed traits, built-in metrics, tags. What it derives must not depend on
// the order events arrive in, as with traits: its per-profile state lives in
// Profile.State and combines on merge, and a rebuild replays it.
//
// Event and Finish are called from several goroutines at once, for
// different profiles (never two calls for one profile at a time): a batch
// enriches its profiles on all cores. Merge is called alone.
type Enricher interface {
	// Event is called for each event applied to p, with the event's
	// decoded properties (nil when it has none). A profile's events of one
	// batch are handed over together before Finish, not necessarily in
	// canonical order: what Event accumulates must combine in any order.
	Event(p *portrait.Profile, e *portrait.Event, properties map[string]any)
	// Merge folds gone's state into keep's; traits, identifiers and
	// counts are already merged.
	Merge(keep, gone *portrait.Profile)
	// Finish is called once for each changed profile before it is
	// written: the place to evaluate what depends on the whole profile
	// (tags, scores) as of now.
	Finish(p *portrait.Profile, now time.Time)
}

// Direct is the "partition" of the events appended to the log without the
// bus (system events, undo requests): under partitioned application the
// node holding the applier lease applies them.
const Direct = -1

// PartitionCheckpointName is partition p's position in the log under
// partitioned application (p = Direct: the events appended without the bus).
func PartitionCheckpointName(p int) string {
	if p == Direct {
		return CheckpointName + "/direct"
	}
	return CheckpointName + "/p" + strconv.Itoa(p)
}

// Partitioned is a Store whose log records the bus partition of each event,
// so that several processor nodes apply it at once, each the partitions it
// holds (docs/scaling.md, "Partitioned application"). Its state
// transactions are Lockers.
type Partitioned interface {
	// ReadPartition returns up to limit events of partition p (Direct:
	// those appended without the bus) after seq, in log order.
	ReadPartition(ctx context.Context, p int, after int64, limit int) ([]*portrait.Event, error)
	// PartitionCheckpoint is p's position; before p's first batch, that of
	// the one applier (CheckpointName), which applied everything before.
	PartitionCheckpoint(ctx context.Context, p int) (int64, error)
}

// DecisionsVersioned is a Partitioned store that numbers the states of its
// retractions and splits: the version moves in the transaction that writes
// either, so a partitioned processor keeps them between batches and reads
// them again only when it moved.
type DecisionsVersioned interface {
	DecisionsVersion(ctx context.Context) (int64, error)
}

// Locker is the state transaction of a Partitioned store: before it reads
// anything, a batch locks the identity rows its events resolve through
// and the profiles they name, so that two nodes never resolve or write one
// profile at once. After a lock the transaction's reads (Identity,
// Profile) lock what they read too. A batch that meets another in a
// deadlock, a serialisation failure or a unique violation fails with
// ECONFLICT, nothing written, and is applied again.
type Locker interface {
	// LockIdentities locks the rows of ids (in a fixed order, so two
	// batches cannot deadlock on them), claiming the absent ones so that a
	// second batch carrying one waits for this one's commit; it returns
	// what each row holds ("" owner: unowned).
	LockIdentities(ids []portrait.Identifier) (map[portrait.Identifier]LockedIdentity, error)
	// LockProfiles locks and reads profiles in id order; absent ones are
	// left out.
	LockProfiles(ids []string) ([]*portrait.Profile, error)
	// Refused reads the profiles id is kept apart from.
	Refused(id portrait.Identifier) ([]string, error)
}

// LockedIdentity is what an identity row held when it was locked.
type LockedIdentity struct {
	ProfileID string
	Attached  portrait.EventKey // zero: unknown
	Refused   []string
}

// SeqsOfMany is a state transaction that reads several profiles' event
// sequence numbers in one round trip (PostgreSQL): what ProfileEventSeqs
// returns for each. A replay reads its closure's histories with it, a
// round of the closure at a time.
type SeqsOfMany interface {
	ProfileEventSeqsOf(profileIDs []string) (map[string][]int64, error)
}

// ManyIdentities is a state transaction that reads several identifiers'
// owners and refusals in one round trip (PostgreSQL): for each, what
// GraphTx.Identity and Locker.Refused return. A replay under partitioned
// application reads its closure's identifiers with it, a round at a time.
type ManyIdentities interface {
	IdentitiesOf(ids []portrait.Identifier) (owners map[portrait.Identifier]string, refused map[portrait.Identifier][]string, err error)
}
