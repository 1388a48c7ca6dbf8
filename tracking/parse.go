// Package tracking parses and validates events of the Segment tracking spec
// (identify, track, page, screen, group, alias, batch) as sent by Segment's
// and RudderStack's SDKs. It decides what is accepted and what is rejected,
// and why; it stores nothing.
package tracking

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// Limits of the Segment HTTP API, which SDKs already respect on their side.
const (
	MaxEventBytes   = 32 << 10
	MaxRequestBytes = 500 << 10
)

// Parser turns request bodies into events. The zero value is not usable;
// use New.
type Parser struct {
	// SkewTolerance: a difference between the client's sentAt and our
	// receivedAt below this is network latency, not a wrong clock, and the
	// client's own event time is kept exactly.
	SkewTolerance time.Duration
	// MaxFuture: an event time further than this after receivedAt (after
	// skew correction) is rejected: no real event happens in the future.
	MaxFuture time.Duration
	// Blocked reports identifier values that never identify anyone
	// ("null", "undefined", ...). An event whose only ids are blocked is
	// rejected rather than creating a profile for "undefined".
	Blocked func(value string) bool
}

// New returns a Parser with the default tolerances.
func New() *Parser {
	return &Parser{SkewTolerance: time.Second, MaxFuture: 24 * time.Hour}
}

// Result of parsing a request: the accepted events and the rejected ones,
// each with the index of the event in the request.
type Result struct {
	Events   []*portrait.Event
	Rejected []*portrait.Rejected
	// TooLarge counts events rejected for size alone.
	TooLarge int
}

// wire is the JSON shape of one event. Identifier fields are raw because
// SDKs send numbers as well as strings; they are typed by hand so that a
// wrong type gives a precise reason instead of a decoder message.
type wire struct {
	Type              json.RawMessage `json:"type"`
	MessageID         json.RawMessage `json:"messageId"`
	UserID            json.RawMessage `json:"userId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	PreviousID        json.RawMessage `json:"previousId"`
	GroupID           json.RawMessage `json:"groupId"`
	Event             json.RawMessage `json:"event"`
	Name              json.RawMessage `json:"name"`
	Traits            json.RawMessage `json:"traits"`
	Properties        json.RawMessage `json:"properties"`
	Context           json.RawMessage `json:"context"`
	Channel           json.RawMessage `json:"channel"`
	Timestamp         json.RawMessage `json:"timestamp"`
	OriginalTimestamp json.RawMessage `json:"originalTimestamp"`
	SentAt            json.RawMessage `json:"sentAt"`
}

type batchWire struct {
	Batch    []json.RawMessage `json:"batch"`
	Context  json.RawMessage   `json:"context"`
	SentAt   json.RawMessage   `json:"sentAt"`
	WriteKey string            `json:"writeKey"`
}

// WriteKeyFromBody returns the writeKey field of a request body, which
// analytics.js and some server libraries send instead of Basic auth.
func WriteKeyFromBody(body []byte) string {
	var w struct {
		WriteKey string `json:"writeKey"`
	}
	if json.Unmarshal(body, &w) != nil {
		return ""
	}
	return w.WriteKey
}

// ParseBatch parses a /v1/batch body: {"batch": [...], "context": {...},
// "sentAt": "..."}. A malformed body is an error for the whole request;
// otherwise every element is accepted or rejected on its own.
func (p *Parser) ParseBatch(body []byte, source string, receivedAt time.Time) (*Result, error) {
	if !utf8.Valid(body) {
		return nil, portrait.Errorf(portrait.EINVALID, "request body is not valid UTF-8")
	}
	b, ok := batchWire{}, false
	if fastScan {
		b, ok = scanBatch(body)
	}
	if !ok {
		b = batchWire{}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "request body is not a JSON batch object: %s", jsonReason(err))
		}
	}
	if b.Batch == nil {
		return nil, portrait.Errorf(portrait.EINVALID, `request body has no "batch" array`)
	}
	var batchSentAt *time.Time
	if len(b.SentAt) > 0 && !isNull(b.SentAt) {
		t, err := parseTime(b.SentAt)
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "batch sentAt: %v", err)
		}
		batchSentAt = &t
	}
	if len(b.Context) > 0 && !isNull(b.Context) && !isObject(b.Context) {
		return nil, portrait.Errorf(portrait.EINVALID, "batch context must be an object")
	}
	// The batch context is copied into every event: it counts against the
	// per-event limit, or a small request could store a copy per event.
	if len(b.Context) > MaxEventBytes/2 {
		return nil, portrait.Errorf(portrait.ETOOLARGE, "batch context is %d bytes, over the %d-byte limit", len(b.Context), MaxEventBytes/2)
	}
	res := &Result{}
	for i, raw := range b.Batch {
		ev, err := p.parseOne(raw, "", source, receivedAt, batchSentAt, b.Context)
		if err != nil {
			res.reject(i, source, raw, receivedAt, err)
			continue
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

// ParseSingle parses the body of /v1/identify, /v1/track, ...: one event
// whose type is given by the endpoint.
func (p *Parser) ParseSingle(body []byte, typ, source string, receivedAt time.Time) (*Result, error) {
	res := &Result{}
	if !utf8.Valid(body) {
		res.reject(0, source, body, receivedAt, portrait.Errorf(portrait.EINVALID, "event is not valid UTF-8"))
		return res, nil
	}
	ev, err := p.parseOne(body, typ, source, receivedAt, nil, nil)
	if err != nil {
		res.reject(0, source, body, receivedAt, err)
		return res, nil
	}
	res.Events = append(res.Events, ev)
	return res, nil
}

func (r *Result) reject(i int, source string, raw []byte, at time.Time, err error) {
	if e, ok := err.(*portrait.Error); ok && e.Code == portrait.ETOOLARGE {
		r.TooLarge++
	}
	r.Rejected = append(r.Rejected, &portrait.Rejected{
		Source: source, Index: i, Reason: portrait.ErrorMessage(err),
		Raw: append([]byte(nil), raw...), ReceivedAt: at,
	})
}

func invalid(format string, args ...any) error {
	return portrait.Errorf(portrait.EINVALID, format, args...)
}

func (p *Parser) parseOne(raw []byte, typ, source string, receivedAt time.Time, batchSentAt *time.Time, batchContext json.RawMessage) (*portrait.Event, error) {
	if len(raw) > MaxEventBytes {
		return nil, portrait.Errorf(portrait.ETOOLARGE, "event is %d bytes, over the %d-byte limit per event", len(raw), MaxEventBytes)
	}
	if !utf8.Valid(raw) {
		return nil, invalid("event is not valid UTF-8")
	}
	if !isObject(raw) {
		return nil, invalid("event must be a JSON object")
	}
	w, ok := wire{}, false
	if fastScan {
		w, ok = scanWire(raw)
	}
	if !ok {
		w = wire{}
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, invalid("event is not valid JSON: %s", jsonReason(err))
		}
	}
	ev := &portrait.Event{Source: source, ReceivedAt: receivedAt}
	var err error

	// Type: the endpoint's, which the body may repeat but not contradict.
	bodyType, err := str(w.Type, "type")
	if err != nil {
		return nil, err
	}
	switch {
	case typ == "" && bodyType == "":
		return nil, invalid(`event has no "type"`)
	case typ == "":
		typ = bodyType
	case bodyType != "" && bodyType != typ:
		return nil, invalid("type does not match the %s endpoint: leave it out or send %q", typ, typ)
	}
	switch typ {
	case portrait.EventIdentify, portrait.EventTrack, portrait.EventPage, portrait.EventScreen, portrait.EventGroup, portrait.EventAlias:
	default:
		return nil, invalid("unknown event type: type must be one of identify, track, page, screen, group, alias")
	}
	ev.Type = typ

	if ev.UserID, err = id(w.UserID, "userId"); err != nil {
		return nil, err
	}
	if ev.AnonymousID, err = id(w.AnonymousID, "anonymousId"); err != nil {
		return nil, err
	}
	if p.Blocked != nil {
		// A blocked id is as good as none: it must not create a profile.
		if ev.UserID != "" && p.Blocked(ev.UserID) && (ev.AnonymousID == "" || p.Blocked(ev.AnonymousID)) {
			return nil, invalid("userId is a blocked value (a placeholder such as null or 0) and there is no usable anonymousId: send the real user id or an anonymousId")
		}
		if ev.UserID == "" && ev.AnonymousID != "" && p.Blocked(ev.AnonymousID) {
			return nil, invalid("anonymousId is a blocked value (a placeholder such as null or 0) and there is no userId: send a real anonymousId or a userId")
		}
	}
	if ev.UserID == "" && ev.AnonymousID == "" {
		return nil, invalid("event has neither userId nor anonymousId")
	}
	if ev.PreviousID, err = id(w.PreviousID, "previousId"); err != nil {
		return nil, err
	}
	if ev.GroupID, err = id(w.GroupID, "groupId"); err != nil {
		return nil, err
	}
	switch typ {
	case portrait.EventTrack:
		if ev.Name, err = str(w.Event, "event"); err != nil {
			return nil, err
		}
		if strings.TrimSpace(ev.Name) == "" {
			return nil, invalid(`track event has no "event" name`)
		}
	case portrait.EventPage, portrait.EventScreen:
		if ev.Name, err = str(w.Name, "name"); err != nil {
			return nil, err
		}
	case portrait.EventGroup:
		if ev.GroupID == "" {
			return nil, invalid(`group event has no "groupId"`)
		}
	case portrait.EventAlias:
		if ev.PreviousID == "" {
			return nil, invalid(`alias event has no "previousId"`)
		}
		if ev.UserID == "" {
			return nil, invalid(`alias event has no "userId"`)
		}
	}
	if len(ev.Name) > 512 {
		return nil, invalid("event name is longer than 512 bytes")
	}
	if ev.Channel, err = str(w.Channel, "channel"); err != nil {
		return nil, err
	}
	if len(ev.Channel) > 512 {
		return nil, invalid("channel is longer than 512 bytes")
	}
	if ev.Traits, err = object(w.Traits, "traits"); err != nil {
		return nil, err
	}
	if ev.Properties, err = object(w.Properties, "properties"); err != nil {
		return nil, err
	}
	if ev.Context, err = object(w.Context, "context"); err != nil {
		return nil, err
	}
	if ok {
		// Scanned values are the request's own bytes: the event keeps a
		// copy of its objects (one allocation), not the whole request.
		buf := make([]byte, 0, len(ev.Traits)+len(ev.Properties)+len(ev.Context))
		ev.Traits, ev.Properties, ev.Context = keep(&buf, ev.Traits), keep(&buf, ev.Properties), keep(&buf, ev.Context)
	}
	if len(batchContext) > 0 && !isNull(batchContext) {
		own := len(ev.Context)
		if ev.Context, err = mergeContext(batchContext, ev.Context); err != nil {
			return nil, err
		}
		if n := len(raw) - own + len(ev.Context); n > MaxEventBytes {
			return nil, portrait.Errorf(portrait.ETOOLARGE, "event with the batch context is %d bytes, over the %d-byte limit per event", n, MaxEventBytes)
		}
	}

	ev.MessageID, err = id(w.MessageID, "messageId")
	if err != nil {
		return nil, err
	}
	if ev.MessageID == "" {
		// Without a messageId a retry could not be recognised; a hash of
		// the source and the exact bytes makes the same retry the same id.
		h := sha256.New()
		h.Write([]byte(source))
		h.Write([]byte{0})
		h.Write(raw)
		ev.MessageID = "gen-" + hex.EncodeToString(h.Sum(nil)[:16])
	}
	if len(ev.MessageID) > 256 {
		return nil, invalid("messageId is longer than 256 bytes")
	}

	if err := p.eventTime(ev, &w, receivedAt, batchSentAt); err != nil {
		return nil, err
	}
	return ev, nil
}

// eventTime sets Timestamp, the time the event happened. The client's own
// time (timestamp, or originalTimestamp) is corrected for a client clock that
// is off, as Segment does: receivedAt − (sentAt − clientTime). A difference
// within SkewTolerance is latency, not skew, and leaves the client's time
// exact, so that the same event keeps the same time.
func (p *Parser) eventTime(ev *portrait.Event, w *wire, receivedAt time.Time, batchSentAt *time.Time) error {
	var client *time.Time
	if t, ok, err := optTime(w.OriginalTimestamp, "originalTimestamp"); err != nil {
		return err
	} else if ok {
		ev.OriginalTimestamp = &t
		client = &t
	}
	if t, ok, err := optTime(w.Timestamp, "timestamp"); err != nil {
		return err
	} else if ok {
		// An explicit timestamp (set by a server library or an import) is
		// the event's time; originalTimestamp is only the call time.
		client = &t
	}
	if t, ok, err := optTime(w.SentAt, "sentAt"); err != nil {
		return err
	} else if ok {
		ev.SentAt = &t
	} else if batchSentAt != nil {
		ev.SentAt = batchSentAt
	}
	switch {
	case client == nil:
		ev.Timestamp = receivedAt
	case ev.SentAt != nil:
		skew := receivedAt.Sub(*ev.SentAt)
		if skew > p.SkewTolerance || skew < -p.SkewTolerance {
			ev.Timestamp = client.Add(skew)
		} else {
			ev.Timestamp = *client
		}
	default:
		ev.Timestamp = *client
	}
	ev.Timestamp = ev.Timestamp.UTC()
	if p.MaxFuture > 0 && ev.Timestamp.After(receivedAt.Add(p.MaxFuture)) {
		return invalid("timestamp is in the future: more than %s after the time received (check the sender's clock or send sentAt)", p.MaxFuture)
	}
	if ev.Timestamp.Year() < 1900 {
		return invalid("timestamp is before 1900: send the event time as ISO 8601, e.g. 2024-05-01T10:00:00Z")
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func isObject(raw []byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func str(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	if s, ok := unquote(raw); ok {
		return s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("%s must be a string, not %s", field, jsonType(raw))
	}
	return s, nil
}

// id reads an identifier: a string, or an integer (some SDKs send numeric
// user ids), normalised to its decimal text.
func id(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	if raw[0] == '"' {
		s, err := str(raw, field)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if len(s) > 1024 {
			return "", invalid("%s is longer than 1024 bytes", field)
		}
		return s, nil
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return string(raw), nil
		}
		return "", invalid("%s must be a string or an integer, not a number with a fraction, an exponent or over 64 bits: send it as a string", field)
	}
	return "", invalid("%s must be a string, not %s", field, jsonType(raw))
}

func object(raw json.RawMessage, field string) (json.RawMessage, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	if !isObject(raw) {
		return nil, invalid("%s must be an object, not %s", field, jsonType(raw))
	}
	return raw, nil
}

func keep(buf *[]byte, b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	s := len(*buf)
	*buf = append(*buf, b...)
	return (*buf)[s:len(*buf):len(*buf)]
}

func optTime(raw json.RawMessage, field string) (time.Time, bool, error) {
	if len(raw) == 0 || isNull(raw) {
		return time.Time{}, false, nil
	}
	t, err := parseTime(raw)
	if err != nil {
		return time.Time{}, false, invalid("%s: %v", field, err)
	}
	return t, true, nil
}

// timeLayouts are the ISO 8601 forms SDKs send: JavaScript's toISOString,
// Python's isoformat (with or without zone), Java's Instant, date only.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func parseTime(raw json.RawMessage) (time.Time, error) {
	s, ok := unquote(raw)
	if !ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("must be an ISO 8601 string, not %s", jsonType(raw))
		}
	}
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not an ISO 8601 time: send e.g. 2024-05-01T10:00:00Z")
}

// mergeContext gives each event the batch's context keys it does not set
// itself (the event's own keys win).
func mergeContext(batch, own json.RawMessage) (json.RawMessage, error) {
	var b, o map[string]json.RawMessage
	if err := json.Unmarshal(batch, &b); err != nil {
		return nil, invalid("batch context must be an object")
	}
	if len(own) > 0 {
		if err := json.Unmarshal(own, &o); err != nil {
			return nil, invalid("context must be an object")
		}
	}
	if o == nil {
		o = make(map[string]json.RawMessage, len(b))
	}
	for k, v := range b {
		if _, ok := o[k]; !ok {
			o[k] = v
		}
	}
	out, err := json.Marshal(o)
	if err != nil {
		return nil, invalid("context cannot be merged with the batch context")
	}
	return out, nil
}

func jsonReason(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d: %v", e.Offset, e)
	case *json.UnmarshalTypeError:
		// Value can be "number 13800138000": keep only the kind, never the
		// literal, which may be a personal value.
		kind, _, _ := strings.Cut(e.Value, " ")
		return fmt.Sprintf("%s must be %s, not %s", e.Field, e.Type, kind)
	}
	return err.Error()
}
