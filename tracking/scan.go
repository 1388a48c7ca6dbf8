package tracking

import (
	"bytes"
	"encoding/json"
)

// The scanner below reads the common request in one pass without copying:
// a batch envelope and event objects whose keys are spelt exactly as the
// spec spells them, each key once. It finds where each value starts and
// ends (checking its JSON syntax on the way) and leaves the values in the
// request's own bytes. Anything else (a key that only matches ignoring
// case or is written with escapes, a repeated key, a batch that is not an
// array, invalid JSON) makes it answer !ok, and the caller decodes with
// go-json as before, which then gives the same result or the same error
// message as it always did (FuzzScanMatchesDecoder). Decoding each request
// twice over (the batch into raw elements, each element into raw fields,
// each field again) was the largest part of the tracking handler.

// fastScan turns the scanner off (tests compare it with the decoder).
var fastScan = true

// maxScanDepth: deeper nesting is left to the decoder.
const maxScanDepth = 200

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i] (no leading
// space), or -1 when it is not valid JSON.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > maxScanDepth {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = skipString(b, i); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			if i = skipValue(b, skipSpace(b, i+1), depth+1); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == '}' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == ']' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return -1
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipNumber follows JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -1
		}
	}
	return i
}

// skipString returns the end of the string starting at b[i] == '"'. The
// request was checked to be UTF-8 already; control characters and unknown
// escapes are not JSON.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// scanObject calls field for each member of the object that is b (space
// around it allowed) with its key's bytes (without quotes) and its value's
// bytes; false when b is not a valid object, or a key has an escape, or
// field says so.
func scanObject(b []byte, field func(key, value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		ks := i
		if i = skipString(b, i); i < 0 {
			return false
		}
		key := b[ks+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		vs := skipSpace(b, i+1)
		if i = skipValue(b, vs, 1); i < 0 {
			return false
		}
		if !field(key, b[vs:i]) {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
}

// foldsTo reports whether key is name in another case: the decoder
// matches field names ignoring case, the scanner only exact names.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// scanBatch reads a /v1/batch body's envelope.
func scanBatch(body []byte) (batchWire, bool) {
	var b batchWire
	var seen [4]bool
	ok := scanObject(body, func(key, v []byte) bool {
		k := -1
		switch string(key) {
		case "batch":
			k = 0
		case "context":
			k = 1
		case "sentAt":
			k = 2
		case "writeKey":
			k = 3
		default:
			return !foldsTo(key, "batch", "context", "sentAt", "writeKey")
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		switch k {
		case 0:
			if v[0] != '[' {
				return false
			}
			b.Batch = make([]json.RawMessage, 0, 128)
			i := skipSpace(v, 1)
			if v[i] == ']' {
				return true
			}
			for {
				e := skipValue(v, i, 2)
				b.Batch = append(b.Batch, v[i:e:e])
				i = skipSpace(v, e)
				if v[i] == ']' {
					return true
				}
				i = skipSpace(v, i+1) // ','
			}
		case 1:
			b.Context = v[:len(v):len(v)]
		case 2:
			b.SentAt = v[:len(v):len(v)]
		case 3:
			if v[0] != '"' && v[0] != 'n' {
				return false // not a string: the decoder's error
			}
		}
		return true
	})
	return b, ok
}

// wireFields are the event's keys as the spec spells them, in wire's order.
var wireFields = [...]string{"type", "messageId", "userId", "anonymousId", "previousId", "groupId", "event", "name",
	"traits", "properties", "context", "channel", "timestamp", "originalTimestamp", "sentAt"}

// scanWire reads one event object.
func scanWire(raw []byte) (wire, bool) {
	var w wire
	slots := [...]*json.RawMessage{&w.Type, &w.MessageID, &w.UserID, &w.AnonymousID, &w.PreviousID, &w.GroupID, &w.Event, &w.Name,
		&w.Traits, &w.Properties, &w.Context, &w.Channel, &w.Timestamp, &w.OriginalTimestamp, &w.SentAt}
	ok := scanObject(raw, func(key, v []byte) bool {
		for k, name := range wireFields {
			if string(key) == name {
				if *slots[k] != nil {
					return false // repeated
				}
				*slots[k] = v[:len(v):len(v)]
				return true
			}
		}
		return !foldsTo(key, wireFields[:]...)
	})
	return w, ok
}

// unquote decodes a JSON string without escapes straight from its bytes;
// ok is false when it has escapes (or is not a string) and needs the
// decoder.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}
