package portrait

import (
	"context"
	"encoding/json"
	"time"
)

// Trait is one value on a profile with its provenance: where it came from,
// as of when, and through which message. Values resolve by event time, so a
// backfill of old data never overwrites newer data.
type Trait struct {
	Value     any       `json:"value"`
	Source    string    `json:"source"`
	Time      time.Time `json:"time"`
	MessageID string    `json:"message_id"`
	// Priority is the source's priority, the first tie-breaker when two
	// sources set a trait at the same instant.
	Priority int `json:"priority,omitempty"`
	// Once marks a "first value wins" trait ($set_once semantics).
	Once bool `json:"once,omitempty"`
	// Imputed names the fill rule that produced a value nobody sent; any
	// observed value replaces it.
	Imputed string `json:"imputed,omitempty"`
}

// TraitIssue is a trait value a standardizer refused: the trait is left
// unset and the problem kept for the data-quality report.
type TraitIssue struct {
	MessageID string    `json:"message_id"`
	Trait     string    `json:"trait"`
	Source    string    `json:"source"`
	ProfileID string    `json:"profile_id"`
	Value     string    `json:"value"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
}

// Identifier is a typed identity value: (email, zhang.san@example.com).
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Identifier types known to Portrait. Any other type sent in
// context.externalIds or declared as an identifier trait is accepted as is.
const (
	IDUserID      = "user_id"
	IDAnonymousID = "anonymous_id"
	IDEmail       = "email"
	IDPhone       = "phone"
)

// Profile is the derived portrait of one real customer.
type Profile struct {
	ID          string           `json:"id"`
	Traits      map[string]Trait `json:"traits"`
	Identifiers []Identifier     `json:"identifiers"`
	MergedFrom  []string         `json:"merged_from"`
	FirstSeen   time.Time        `json:"first_seen"`
	LastSeen    time.Time        `json:"last_seen"`
	EventCount  int              `json:"event_count"`
	EventCounts map[string]int   `json:"event_counts"` // by event type
	// Events counts track events by name ("Order Completed": 12).
	TrackCounts map[string]int `json:"track_counts,omitempty"`
	// Tags the profile carries, each with the time it was gained.
	Tags []ProfileTag `json:"tags"`
	// State is the private, persisted state of enrichers (accumulators of
	// computed traits), kept in the profile so that it merges and replays
	// with it. Clients never see it.
	State map[string]json.RawMessage `json:"-"`
	// FirstKey is the canonical key of the profile's earliest event; the
	// profile's id derives from it, so ids do not depend on arrival order.
	FirstKey EventKey `json:"-"`
	LastKey  EventKey `json:"-"`
	// IdentityKey is the key of the latest event that changed the profile's
	// identity (attached an identifier or merged): a late event after it
	// that brings no new identifier cannot change any identity decision.
	IdentityKey EventKey `json:"-"`
	// MergeKey is the key of the latest merge that made the profile (zero
	// when it never merged, or when written before merges were keyed: see
	// MergedFrom).
	MergeKey EventKey `json:"-"`
	// UpdatedAt is when the processor last wrote the profile (wall clock).
	UpdatedAt time.Time `json:"updated_at"`
}

// ProfileTag is a tag on a profile.
type ProfileTag struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// MergeKinds recorded in the merge journal.
const (
	MergeMerged    = "merged"    // two profiles became one
	MergeRefused   = "refused"   // a rule stopped a merge or an identifier
	MergeRebuilt   = "rebuilt"   // a late event re-ordered a profile's history
	MergeRetracted = "retracted" // an event was undone and the history replayed without it
	MergeSplit     = "split"     // a person undid an identity merge: the two sides stay apart
)

// KeptApartReason begins the reason of a refusal made because a person
// undid an earlier merge of the two sides: such a pair was decided, it is
// no probable duplicate.
const KeptApartReason = "kept apart by split "

// MergeEntry is one line of the merge journal: which profiles, which
// identifier, which event, when, and, for a refusal, why.
type MergeEntry struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	Into       string     `json:"into"`           // surviving profile
	From       string     `json:"from,omitempty"` // merged-away profile
	Identifier Identifier `json:"identifier"`
	MessageID  string     `json:"message_id"`
	EventSeq   int64      `json:"event_seq"`
	Reason     string     `json:"reason,omitempty"`
	At         time.Time  `json:"at"`
}

// Page is a cursor-paged query.
type Page struct {
	Cursor string
	Limit  int
	// Filter narrows a profile's event timeline (zero: every event).
	Filter EventFilter
}

// EventFilter keeps the events whose non-empty fields all match exactly.
type EventFilter struct {
	Type   string // identify, track, page...
	Event  string // the track event name (or page/screen name)
	Source string // the write key's source name
}

// Empty reports whether the filter keeps every event.
func (f EventFilter) Empty() bool { return f == EventFilter{} }

// Match reports whether e passes the filter.
func (f EventFilter) Match(e *Event) bool {
	return (f.Type == "" || e.Type == f.Type) && (f.Event == "" || e.Name == f.Event) && (f.Source == "" || e.Source == f.Source)
}

// ProfileReader answers the query API. Implementations follow redirects: a
// profile id that was merged away still finds the surviving profile.
type ProfileReader interface {
	Profile(ctx context.Context, id string) (*Profile, error)
	ProfileByIdentifier(ctx context.Context, id Identifier) (*Profile, error)
	// ProfileEvents returns a profile's events newest first and the cursor
	// of the next page ("" at the end).
	ProfileEvents(ctx context.Context, profileID string, p Page) ([]*Event, string, error)
	ProfileMerges(ctx context.Context, profileID string) ([]*MergeEntry, error)
	CountProfiles(ctx context.Context) (int, error)
}
