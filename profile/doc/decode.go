package doc

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/portrait-cdp/portrait"
)

// docDecoder reads a version 2 or 3 document (see doc.go). It is written by hand,
// as the encoder is: go-json read traits and tags into structs of the
// document's shape, to be copied into the domain's, and took longer to grow
// those than it takes to read version 1. A method that fails sets err and
// makes the loops stop; the rest return zero values until then.
type docDecoder struct {
	b   []byte
	i   int
	err error
	// Scratch space the pool keeps: traits and tags are gathered here, to
	// be copied out at their size instead of growing a map and a slice.
	traits []namedTrait
	tags   []portrait.ProfileTag
	// The last sources and message ids read, which repeat (a profile's
	// computed traits have one source and a few events' message ids): one
	// string serves them all.
	recent [4]string
	next   int
	// lin: the lineage of each trait read without a reference, in order
	// (see the format in doc.go).
	lin []lineage
}

type lineage struct {
	Source    string
	Time      time.Time
	MessageID string
}

type namedTrait struct {
	name string
	t    portrait.Trait
}

var docDecoders = sync.Pool{New: func() any { return new(docDecoder) }}

func (d *docDecoder) profile() *portrait.Profile {
	p := &portrait.Profile{}
	d.want('{')
	for first := true; d.more(&first, '}'); {
		switch key := d.key(); string(key) {
		case "_v":
			if v := d.int(); v != 2 && v != 3 && d.err == nil {
				d.fail("unknown version %d", v)
			}
		case "id":
			p.ID = d.str()
		case "event_count":
			p.EventCount = int(d.int())
		case "first_seen":
			d.nanos(&p.FirstSeen)
		case "first_seen_s":
			d.text(&p.FirstSeen)
		case "last_seen":
			d.nanos(&p.LastSeen)
		case "last_seen_s":
			d.text(&p.LastSeen)
		case "updated_at":
			d.nanos(&p.UpdatedAt)
		case "updated_at_s":
			d.text(&p.UpdatedAt)
		case "identifiers":
			p.Identifiers = []portrait.Identifier{}
			d.want('[')
			for first := true; d.more(&first, ']'); {
				var id portrait.Identifier
				d.want('{')
				for first := true; d.more(&first, '}'); {
					switch key := d.key(); string(key) {
					case "type":
						id.Type = d.str()
					case "value":
						id.Value = d.str()
					default:
						d.skip()
					}
				}
				p.Identifiers = append(p.Identifiers, id)
			}
		case "merged_from":
			p.MergedFrom = []string{}
			d.want('[')
			for first := true; d.more(&first, ']'); {
				p.MergedFrom = append(p.MergedFrom, d.str())
			}
		case "event_counts":
			p.EventCounts = d.counts()
		case "track_counts":
			p.TrackCounts = d.counts()
		case "traits":
			d.traits, d.lin = d.traits[:0], d.lin[:0]
			d.want('{')
			for first := true; d.more(&first, '}'); {
				name := string(d.key())
				d.traits = append(d.traits, namedTrait{name, d.trait()})
			}
			p.Traits = make(map[string]portrait.Trait, len(d.traits))
			for _, t := range d.traits {
				p.Traits[t.name] = t.t
			}
		case "tags":
			d.tags = d.tags[:0]
			d.want('[')
			for first := true; d.more(&first, ']'); {
				var t portrait.ProfileTag
				d.want('{')
				for first := true; d.more(&first, '}'); {
					switch key := d.key(); string(key) {
					case "n":
						t.Name = d.str()
					case "t":
						d.nanos(&t.Since)
					case "t_s":
						d.text(&t.Since)
					default:
						d.skip()
					}
				}
				d.tags = append(d.tags, t)
			}
			p.Tags = append(make([]portrait.ProfileTag, 0, len(d.tags)), d.tags...) // [] is not nil
		case "tg": // runs of tags with one since
			d.tags = d.tags[:0]
			d.want('[')
			for first := true; d.more(&first, ']'); {
				var since time.Time
				start := len(d.tags)
				d.want('{')
				for first := true; d.more(&first, '}'); {
					switch key := d.key(); string(key) {
					case "n":
						d.want('[')
						for first := true; d.more(&first, ']'); {
							d.tags = append(d.tags, portrait.ProfileTag{Name: d.str()})
						}
					case "t":
						d.nanos(&since)
					case "t_s":
						d.text(&since)
					default:
						d.skip()
					}
				}
				for i := start; i < len(d.tags); i++ {
					d.tags[i].Since = since
				}
			}
			p.Tags = append(make([]portrait.ProfileTag, 0, len(d.tags)), d.tags...) // [] is not nil
		case "_first_t":
			d.nanos(&p.FirstKey.Time)
		case "_first_t_s":
			d.text(&p.FirstKey.Time)
		case "_first_m":
			p.FirstKey.MessageID = d.shared()
		case "_last_t":
			d.nanos(&p.LastKey.Time)
		case "_last_t_s":
			d.text(&p.LastKey.Time)
		case "_last_m":
			p.LastKey.MessageID = d.shared()
		case "_id_t":
			d.nanos(&p.IdentityKey.Time)
		case "_id_t_s":
			d.text(&p.IdentityKey.Time)
		case "_id_m":
			p.IdentityKey.MessageID = d.shared()
		case "_merge_t":
			d.nanos(&p.MergeKey.Time)
		case "_merge_t_s":
			d.text(&p.MergeKey.Time)
		case "_merge_m":
			p.MergeKey.MessageID = d.shared()
		case "_state":
			p.State = map[string]stdjson.RawMessage{}
			d.want('{')
			for first := true; d.more(&first, '}'); {
				name := string(d.key())
				d.ws()
				start := d.i
				d.skip()
				p.State[name] = bytes.Clone(d.b[start:d.i])
			}
		default:
			d.skip() // unknown: ignored, as go-json did
		}
	}
	if d.ws(); d.i < len(d.b) && d.err == nil {
		d.fail("data after the document")
	}
	if p.Traits == nil {
		p.Traits = map[string]portrait.Trait{}
	}
	if p.EventCounts == nil {
		p.EventCounts = map[string]int{}
	}
	return p
}

func (d *docDecoder) trait() portrait.Trait {
	var t portrait.Trait
	ref := false
	d.want('{')
	for first := true; d.more(&first, '}'); {
		switch key := d.key(); string(key) {
		case "r":
			n := d.int()
			if n < 0 || n >= int64(len(d.lin)) {
				if d.err == nil {
					d.fail("lineage %d of %d", n, len(d.lin))
				}
				continue
			}
			l := d.lin[n]
			t.Source, t.Time, t.MessageID = l.Source, l.Time, l.MessageID
			ref = true
		case "v":
			t.Value = d.value(0)
		case "s":
			t.Source = d.shared()
		case "t":
			d.nanos(&t.Time)
		case "t_s":
			d.text(&t.Time)
		case "m":
			t.MessageID = d.shared()
		case "p":
			t.Priority = int(d.int())
		case "o":
			t.Once = d.bool()
		case "i":
			t.Imputed = d.shared()
		default:
			d.skip()
		}
	}
	if !ref {
		d.lin = append(d.lin, lineage{t.Source, t.Time, t.MessageID})
	}
	return t
}

func (d *docDecoder) counts() map[string]int {
	m := map[string]int{}
	d.want('{')
	for first := true; d.more(&first, '}'); {
		name := string(d.key())
		m[name] = int(d.int())
	}
	return m
}

func (d *docDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = portrait.Errorf(portrait.EINTERNAL, "profile document: %s at byte %d", fmt.Sprintf(format, args...), d.i)
	}
	d.i = len(d.b)
}

func (d *docDecoder) ws() { d.i = skipSpace(d.b, d.i) }

// peek returns the next byte that is not white space, 0 at the end.
func (d *docDecoder) peek() byte {
	if d.ws(); d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *docDecoder) want(c byte) {
	if d.peek() != c {
		d.fail("want %q", c)
		return
	}
	d.i++
}

// more reads what comes before an element of a list or an object (after
// its opening bracket): whether there is one, or the closing bracket.
func (d *docDecoder) more(first *bool, closing byte) bool {
	switch c := d.peek(); {
	case d.err != nil:
		return false
	case c == closing:
		d.i++
		return false
	case *first:
		*first = false
		return true
	case c == ',':
		d.i++
		return true
	}
	d.fail("want , or %q", closing)
	return false
}

// key reads an object's key and the colon after it. The bytes are the
// document's when it has nothing to unescape: convert them before going on.
func (d *docDecoder) key() []byte {
	k := d.strBytes()
	d.want(':')
	return k
}

func (d *docDecoder) str() string { return string(d.strBytes()) }

// shared reads a string that is likely one of the last read.
func (d *docDecoder) shared() string {
	b := d.strBytes()
	for _, s := range d.recent {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	d.recent[d.next] = s
	d.next = (d.next + 1) % len(d.recent)
	return s
}

// strBytes reads a string. Valid UTF-8 without escapes, the only string
// the encoder writes but for \ufffd and control characters, is a slice of
// the document.
func (d *docDecoder) strBytes() []byte {
	d.want('"')
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1]
		case c == '\\' || c < 0x20:
			return d.unquote(start)
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return d.unquote(start)
			}
			d.i += size
		}
	}
	d.fail("unterminated string")
	return nil
}

// unquote reads the rest of a string that needs a copy, as encoding/json
// does: invalid UTF-8 and a lone surrogate become U+FFFD.
func (d *docDecoder) unquote(start int) []byte {
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return out
		case c < 0x20:
			d.fail("control character in string")
			return nil
		case c == '\\':
			if d.i+1 >= len(d.b) {
				d.fail("unterminated string")
				return nil
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := d.hex4()
				if utf16.IsSurrogate(r) {
					high := r
					r = utf8.RuneError
					if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						if pair := utf16.DecodeRune(high, d.hex4()); pair != utf8.RuneError {
							r = pair
						} else {
							d.i = save // the next escape stands on its own
						}
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				d.fail("invalid escape")
				return nil
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, d.b[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
	d.fail("unterminated string")
	return nil
}

func (d *docDecoder) hex4() rune {
	if d.i+4 > len(d.b) {
		d.fail("short \\u escape")
		return 0
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			d.fail("invalid \\u escape")
			return 0
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r
}

// number reads a number by JSON's grammar and returns its text and whether
// it is an integer (no fraction, no exponent).
func (d *docDecoder) number() ([]byte, bool) {
	d.ws()
	start := d.i
	end := skipNumber(d.b, start)
	if end < 0 {
		d.fail("want a value")
		return nil, false
	}
	d.i = end
	s := d.b[start:end]
	return s, bytes.IndexAny(s, ".eE") < 0
}

// int reads an integer that fits an int64.
func (d *docDecoder) int() int64 {
	d.ws()
	b, i := d.b, d.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n uint64
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		if n > (math.MaxUint64-9)/10 {
			d.fail("integer out of range")
			return 0
		}
		n = n*10 + uint64(b[i]-'0')
	}
	if i == start || i < len(b) && (b[i] == '.' || b[i]|0x20 == 'e') || b[start] == '0' && i > start+1 {
		d.fail("want an integer")
		return 0
	}
	d.i = i
	switch {
	case neg && n <= 1<<63:
		return int64(-n)
	case !neg && n < 1<<63:
		return int64(n)
	}
	d.fail("integer out of range")
	return 0
}

// nanos reads a time as Unix nanoseconds; 0 is never written.
func (d *docDecoder) nanos(t *time.Time) {
	if ns := d.int(); ns != 0 {
		*t = time.Unix(0, ns).UTC()
	}
}

// text reads a time as RFC 3339 text, exactly as version 1 was read: by
// time.Time.UnmarshalJSON, on the string as it is.
func (d *docDecoder) text(t *time.Time) {
	d.ws()
	start := d.i
	d.strBytes()
	if d.err != nil {
		return
	}
	if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
		d.fail("%v", err)
	}
}

// value reads any value as go-json reads it into an interface{}: numbers
// as float64, objects as map[string]any, lists as []any.
func (d *docDecoder) value(depth int) any {
	if depth > maxDecodeDepth {
		d.fail("nested too deep")
		return nil
	}
	switch d.peek() {
	case '"':
		return d.str()
	case '{':
		d.i++
		m := map[string]any{}
		for first := true; d.more(&first, '}'); {
			k := string(d.key())
			m[k] = d.value(depth + 1)
		}
		return m
	case '[':
		d.i++
		l := []any{}
		for first := true; d.more(&first, ']'); {
			l = append(l, d.value(depth+1))
		}
		return l
	case 't':
		d.literal("true")
		return true
	case 'f':
		d.literal("false")
		return false
	case 'n':
		d.literal("null")
		return nil
	}
	s, integer := d.number()
	if d.err != nil {
		return nil
	}
	// Up to 15 digits an integer is exact as a float64; "-0" is not 0.
	if integer && len(s) <= 15 && !(len(s) == 2 && s[0] == '-' && s[1] == '0') {
		neg := s[0] == '-'
		if neg {
			s = s[1:]
		}
		var n int64
		for _, c := range s {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return float64(n)
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		d.fail("number %s out of range", s)
		return nil
	}
	return f
}

// maxDecodeDepth bounds the recursion of value and skip.
const maxDecodeDepth = 10000

func (d *docDecoder) bool() bool {
	switch d.peek() {
	case 't':
		d.literal("true")
		return true
	case 'f':
		d.literal("false")
		return false
	}
	d.fail("want true or false")
	return false
}

func (d *docDecoder) literal(s string) {
	if !bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		d.fail("want %s", s)
		return
	}
	d.i += len(s)
}

// skip reads any value, checking its grammar, and ignores it.
func (d *docDecoder) skip() {
	d.ws()
	if end := skipValue(d.b, d.i); end >= 0 {
		d.i = end
		return
	}
	d.fail("invalid JSON")
}

// skipValue returns the end of the JSON value at i, -1 if it is not one. It
// is one loop over local variables with a stack of open brackets, not a
// descent through docDecoder's methods: the enrichers' state, which it
// reads, is most of a document.
func skipValue(b []byte, i int) int {
	var stack [16]byte
	open := stack[:0] // the closing bracket of each open list or object
	for {
		// a value
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			closing := c + 2 // '}' or ']'
			if i = skipSpace(b, i+1); i < len(b) && b[i] == closing {
				i++
				break // empty: a value like any other
			}
			if len(open) >= maxDecodeDepth {
				return -1
			}
			open = append(open, closing)
			if c == '{' {
				i = skipKey(b, i)
			}
			if i < 0 {
				return -1
			}
			continue
		case '"':
			i = skipString(b, i)
		case 't':
			i = skipLiteral(b, i, "true")
		case 'f':
			i = skipLiteral(b, i, "false")
		case 'n':
			i = skipLiteral(b, i, "null")
		default:
			i = skipNumber(b, i)
		}
		if i < 0 {
			return -1
		}
		// after a value: closing brackets, then a comma or the end
		for {
			if len(open) == 0 {
				return i
			}
			if i = skipSpace(b, i); i >= len(b) {
				return -1
			}
			top := open[len(open)-1]
			if b[i] == top {
				i++
				open = open[:len(open)-1]
				continue
			}
			if b[i] != ',' {
				return -1
			}
			if i++; top == '}' {
				if i = skipKey(b, i); i < 0 {
					return -1
				}
			}
			break
		}
	}
}

// skipSpace skips white space. It is small enough to inline, for there is
// rarely any.
func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpaces(b, i)
}

// skipSpaces is skipSpace's loop, kept out of line so that skipSpace
// inlines.
//
//go:noinline
func skipSpaces(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipKey skips an object's key and the colon after it.
func skipKey(b []byte, i int) int {
	if i = skipString(b, skipSpace(b, i)); i < 0 {
		return -1
	}
	if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h|0x20 && h|0x20 <= 'f') {
						return -1
					}
				}
				i += 5
			default:
				return -1
			}
		}
	}
	return -1
}

// skipNumber skips a number by JSON's grammar.
func skipNumber(b []byte, i int) int {
	// Most numbers of the state are integers: digits, and no 0 before
	// another, and neither a fraction nor an exponent after.
	j := i
	for j < len(b) && b[j]-'0' <= 9 {
		j++
	}
	if j > i && (b[i] != '0' || j == i+1) && (j == len(b) || b[j] != '.' && b[j]|0x20 != 'e') {
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}
