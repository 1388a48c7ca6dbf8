package portrait

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Event types of the Segment spec.
const (
	EventIdentify = "identify"
	EventTrack    = "track"
	EventPage     = "page"
	EventScreen   = "screen"
	EventGroup    = "group"
	EventAlias    = "alias"
	// EventRetract is internal, never accepted from clients: it undoes an
	// earlier event (properties.message_id), such as a record-linkage
	// merge, by replaying the affected profiles without it.
	EventRetract = "retract"
	// EventSplit is internal too: a person's decision that an identity
	// merge was wrong (properties: the merge's event and identifier). The
	// two sides are kept apart from then on, through every replay.
	EventSplit = "split"
)

// Event is one accepted tracking event, as kept in the event log. The log is
// the source of truth; everything else (profiles, tags, segments) is derived
// from it and can be rebuilt by replaying it.
//
// Traits, Properties and Context stay raw JSON objects: the ingest path only
// checks that they are objects, so that acknowledging an event costs no
// decoding of its payload; the processor decodes what it needs.
type Event struct {
	Seq         int64           `json:"seq,omitempty"` // position in the log, assigned on append
	MessageID   string          `json:"messageId"`
	Type        string          `json:"type"`
	Source      string          `json:"source"` // name of the write key that sent it
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	PreviousID  string          `json:"previousId,omitempty"` // alias
	GroupID     string          `json:"groupId,omitempty"`    // group
	Name        string          `json:"event,omitempty"`      // track: event name; page/screen: name
	Traits      json.RawMessage `json:"traits,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Context     json.RawMessage `json:"context,omitempty"`
	// Channel is the channel the sending SDK declares at the top level of
	// the event: RudderStack's web, mobile, server or sources. Segment's
	// libraries do not send it.
	Channel string `json:"channel,omitempty"`
	// Timestamp is the event time used everywhere: the client's time,
	// corrected for client clock skew (see tracking.Parse).
	Timestamp         time.Time  `json:"timestamp"`
	OriginalTimestamp *time.Time `json:"originalTimestamp,omitempty"`
	SentAt            *time.Time `json:"sentAt,omitempty"`
	ReceivedAt        time.Time  `json:"receivedAt"`
}

// System sources: events Portrait itself appends (analysis results written
// back, record-linkage decisions). They set traits and join profiles, but
// they are not the customer's activity: they count in no activity figure.
const (
	SourceAnalyticsPrefix = "analytics/"
	SourceLinkage         = "linkage"
)

// IsSystemSource reports whether a source name is reserved for Portrait.
func IsSystemSource(source string) bool {
	return source == SourceLinkage || source == SourceRetention || strings.HasPrefix(source, SourceAnalyticsPrefix)
}

// System reports whether e was appended by Portrait itself.
func (e *Event) System() bool { return IsSystemSource(e.Source) }

// EventKey orders events canonically: by event time, then message id. Derived
// state is defined as the result of applying events in this order, which is
// what makes it independent of arrival order.
type EventKey struct {
	Time      time.Time
	MessageID string
}

// Key returns the canonical ordering key of e.
func (e *Event) Key() EventKey { return EventKey{Time: e.Timestamp, MessageID: e.MessageID} }

// Less reports whether k sorts before o.
func (k EventKey) Less(o EventKey) bool {
	if !k.Time.Equal(o.Time) {
		return k.Time.Before(o.Time)
	}
	return k.MessageID < o.MessageID
}

// IsZero reports whether k is the zero key.
func (k EventKey) IsZero() bool { return k.Time.IsZero() && k.MessageID == "" }

// Rejected is an event that failed validation. It is kept whole in the
// quarantine with its reason, so nothing sent is ever lost silently.
type Rejected struct {
	ID         int64     `json:"id,omitempty"`
	Source     string    `json:"source"`
	Index      int       `json:"index"` // position in its request
	Reason     string    `json:"reason"`
	Raw        []byte    `json:"-"`
	ReceivedAt time.Time `json:"received_at"`
	// Key, when set, makes quarantining idempotent: a record whose key is
	// already quarantined is not kept twice (a re-imported file's bad rows).
	Key string `json:"-"`
}

// AppendResult says what happened to each appended event, by input index.
type AppendResult struct {
	Accepted   int
	Duplicates int
	LastSeq    int64
	// Suppressed counts events dropped before the log because they carry
	// an erased person's identifier (erasure.Suppressor); each such event's
	// Seq is set to SeqSuppressed, so that a caller counting per event (an
	// import) tells them from duplicates, whose Seq stays 0.
	Suppressed int
}

// SeqSuppressed marks an event the suppression list dropped before the log.
const SeqSuppressed = -1

// EventLog is the durable, messageId-idempotent log of accepted events.
// Append returns only once the events are committed to stable storage.
type EventLog interface {
	Append(ctx context.Context, events []*Event, rejected []*Rejected) (AppendResult, error)
	// ReadLog returns up to limit events with Seq > after, in Seq order.
	ReadLog(ctx context.Context, after int64, limit int) ([]*Event, error)
	LastSeq(ctx context.Context) (int64, error)
}

// QuarantineFilter selects quarantined records.
type QuarantineFilter struct {
	Source string
	After  int64 // id cursor
	Limit  int
}

// QuarantineStore lists what was rejected.
type QuarantineStore interface {
	ListQuarantine(ctx context.Context, f QuarantineFilter) ([]*Rejected, error)
}
