// Package doc is the stored form of a profile document, which every store
// writes and reads as opaque bytes: the encoding belongs to the domain, so a
// second store (postgres/) keeps the same documents without importing the first.
package doc

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// A profile's stored form (the doc column of profiles) is JSON in one of
// three versions; Decode reads them all and Encode writes
// version 3.
//
// Version 1 is the domain type as go-json marshals it, plus the canonical
// keys (profileDoc): every trait and tag carries its field names in full and
// its times as RFC 3339 text.
//
// Version 2 starts with {"_v":2. A processor batch encodes thousands of
// profiles and SQLite writes every byte, so it is written by hand (here) and
// read by hand (doc_decode.go), in short keys with integer times. The
// enriched buyer of testdata takes 8.2 KB instead of 10.6 KB, 4.6 KB of
// which is the enrichers' state, kept as they wrote it:
//
//	{"_v":2,"id":"p_1","event_count":20,"first_seen":1767332520000000000,…,
//	 "identifiers":[{"type":"user_id","value":"u1"}],"event_counts":{"track":20},
//	 "traits":{"revenue":{"v":3750,"s":"computed","t":1769612520000000000,"m":"b0039782"},
//	           "gender":{"v":"female","s":"imputed","p":2,"o":true,"i":"mode"}},
//	 "tg":[{"t":1769612520000000000,"n":["vip","active"]}],"_first_t":1767332520000000000,"_first_m":"b0001782",…,
//	 "_state":{"traits":…}}
//
// A trait is v(alue), s(ource), t(ime), m(essage id), p(riority), o(nce),
// i(mputed); tags go in runs of equal since, {t(ime), n(ames)} (an earlier
// form, "tags", had {n, t} a tag, and still reads). A time is Unix nanoseconds
// when RFC 3339 writes it with "Z", which reads back as UTC, as version 1
// does. Else (another offset, a year outside 1678–2261, or the epoch itself,
// as 0 means absent) it is RFC 3339 text under the key with "_s" appended,
// read back by time.Time.UnmarshalJSON exactly as version 1 is. A zero time,
// an empty string, a zero priority, a false once, a nil value and an empty
// map are left out: they read back as version 1 gives them. An empty list is
// kept apart from a nil one (version 1 gives [] and nil). event_count keeps
// its name for SQL (json_extract).
//
// Version 3 ({"_v":3) is version 2 with lineage references: a trait's
// source, time and message id, when they are those of a trait before it,
// are written "r":n instead, n numbering the traits written without one,
// from 0, in the order written. A profile's computed traits mostly come from
// its last event or two, so most are "r":0 or so; the stream benchmark's
// documents went from 3.5 to 2.6 KB on average:
//
//	"traits":{"revenue":{"v":3750,"s":"computed","t":1769612520000000000,"m":"b0039782"},
//	          "revenue_90d":{"v":1200,"r":0}}
//
// Every version reads back as equal profiles (reflect.DeepEqual, time
// locations included): doc_test.go checks it against the version 1 code.

// docVersion opens every document written now.
const docVersion = `{"_v":3`

// profileDoc is the stored form of a profile in version 1: the domain type
// plus the canonical keys the processor orders by, which clients never see.
type profileDoc struct {
	*portrait.Profile
	FirstTime time.Time                  `json:"_first_time"`
	FirstMsg  string                     `json:"_first_msg"`
	LastTime  time.Time                  `json:"_last_time"`
	LastMsg   string                     `json:"_last_msg"`
	IDTime    time.Time                  `json:"_id_time"`
	IDMsg     string                     `json:"_id_msg"`
	MergeTime *time.Time                 `json:"_merge_time,omitempty"`
	MergeMsg  string                     `json:"_merge_msg,omitempty"`
	State     map[string]json.RawMessage `json:"_state,omitempty"`
}

func Decode(b []byte) (*portrait.Profile, error) {
	if !bytes.HasPrefix(b, []byte(`{"_v":`)) {
		return decodeProfileV1(b)
	}
	d := docDecoders.Get().(*docDecoder)
	d.b, d.i, d.err = b, 0, nil
	p := d.profile()
	err := d.err
	d.b = nil
	clear(d.traits[:cap(d.traits)]) // the pool must not keep profiles' strings alive
	clear(d.tags[:cap(d.tags)])
	clear(d.recent[:])
	clear(d.lin[:cap(d.lin)])
	d.traits, d.tags, d.lin = d.traits[:0], d.tags[:0], d.lin[:0]
	if cap(d.traits) <= 1<<12 && cap(d.tags) <= 1<<12 && cap(d.lin) <= 1<<12 {
		docDecoders.Put(d)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func decodeProfileV1(b []byte) (*portrait.Profile, error) {
	d := profileDoc{Profile: new(portrait.Profile)}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	d.Profile.FirstKey = portrait.EventKey{Time: d.FirstTime, MessageID: d.FirstMsg}
	d.Profile.LastKey = portrait.EventKey{Time: d.LastTime, MessageID: d.LastMsg}
	d.Profile.IdentityKey = portrait.EventKey{Time: d.IDTime, MessageID: d.IDMsg}
	if d.MergeTime != nil {
		d.Profile.MergeKey = portrait.EventKey{Time: *d.MergeTime, MessageID: d.MergeMsg}
	}
	d.Profile.State = d.State
	if d.Profile.Traits == nil {
		d.Profile.Traits = map[string]portrait.Trait{}
	}
	if d.Profile.EventCounts == nil {
		d.Profile.EventCounts = map[string]int{}
	}
	return d.Profile, nil
}

// docEncoder appends a version 3 document to a buffer its methods take and
// return. It lives on Encode's stack, and so does the buffer's slice
// header: they are written hundreds of times a document, and while the
// collector marks, every pointer written to the heap costs a write barrier
// (a quarter of the time when the encoder was a pooled struct).
type docEncoder struct {
	// keys is where map keys are sorted (as go-json sorts them, so that a
	// profile has one stored form).
	keys []string
	s    *docScratch
	err  error
	// The digits of the last time written, for most of a profile's traits
	// and tags have the time of one event.
	lastNS     int64
	lastDigits [20]byte
	lastLen    int
	// The traits' lineages written so far, for references: where their
	// bytes are in the scratch and their number. written counts the traits
	// written without a reference (the decoder numbers them alike).
	lin     [16]span
	nlin    int
	written int
}

type span struct {
	start, end, n int
	src, msg      string
	at            time.Time
}

// startTraits forgets the lineages written: the traits are written
// (again) from here.
func (e *docEncoder) startTraits() { e.nlin, e.written, e.s.lin = 0, 0, e.s.lin[:0] }

// docScratch is what encoding a document needs beyond the stack: the buffer,
// which grows to the size of a large profile once, and the keys.
type docScratch struct {
	b    []byte
	keys []string
	// shapes are sorted sets of trait names seen before (see traits).
	shapes    [][]string
	nextShape int
	lin       []byte // the lineages referred to (see docEncoder)
}

// A profile's trait names are mostly one of a few sets (a visitor's, a
// buyer's, with or without survey answers): sorted once, a set is kept, a
// few per encoder, for profiles that have exactly those names. Only names
// are kept, and a set of more than maxShapeNames is not.
const (
	maxShapes     = 4
	maxShapeNames = 128
)

var docScratches = sync.Pool{New: func() any { return &docScratch{b: make([]byte, 0, 16<<10)} }}

func Encode(p *portrait.Profile) ([]byte, error) {
	s := docScratches.Get().(*docScratch)
	e := docEncoder{keys: s.keys[:0], s: s}
	b := e.profile(s.b[:0], p)
	var out []byte
	if e.err == nil {
		out = bytes.Clone(b)
	}
	clear(e.keys[:cap(e.keys)]) // the pool must not keep a profile's strings alive
	if cap(b) <= 1<<20 && cap(e.keys) <= 1<<12 {
		s.b, s.keys = b[:0], e.keys[:0]
		docScratches.Put(s)
	}
	return out, e.err
}

func (e *docEncoder) profile(b []byte, p *portrait.Profile) []byte {
	b = append(b, docVersion...)
	b = append(b, `,"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"event_count":`...)
	b = strconv.AppendInt(b, int64(p.EventCount), 10)
	b = e.time(b, `,"first_seen":`, `,"first_seen_s":`, p.FirstSeen)
	b = e.time(b, `,"last_seen":`, `,"last_seen_s":`, p.LastSeen)
	b = e.time(b, `,"updated_at":`, `,"updated_at_s":`, p.UpdatedAt)
	if p.Identifiers != nil {
		b = append(b, `,"identifiers":[`...)
		for i, id := range p.Identifiers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendString(b, id.Type)
			b = append(b, `,"value":`...)
			b = appendString(b, id.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if p.MergedFrom != nil {
		b = append(b, `,"merged_from":[`...)
		for i, id := range p.MergedFrom {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	b = e.counts(b, `,"event_counts":`, p.EventCounts)
	b = e.counts(b, `,"track_counts":`, p.TrackCounts)
	if len(p.Traits) > 0 {
		b = append(b, `,"traits":{`...)
		b = e.traits(b, p.Traits)
		b = append(b, '}')
	}
	if p.Tags != nil {
		// Tags in runs of equal since, each time written once: tags that
		// one event made hold share it, and a time is most of a tag.
		b = append(b, `,"tg":[`...)
		for i, t := range p.Tags {
			if i > 0 && t.Since == p.Tags[i-1].Since {
				b = append(b, ',')
				b = appendString(b, t.Name)
				continue
			}
			if i > 0 {
				b = append(b, `]},`...)
			}
			b = append(b, '{')
			if n := len(b); len(e.time(b, `"t":`, `"t_s":`, t.Since)) > n {
				b = append(e.time(b, `"t":`, `"t_s":`, t.Since), ',') // a zero time writes nothing
			}
			b = append(b, `"n":[`...)
			b = appendString(b, t.Name)
		}
		if len(p.Tags) > 0 {
			b = append(b, `]}`...)
		}
		b = append(b, ']')
	}
	b = e.key(b, `,"_first_t":`, `,"_first_t_s":`, `,"_first_m":`, p.FirstKey)
	b = e.key(b, `,"_last_t":`, `,"_last_t_s":`, `,"_last_m":`, p.LastKey)
	b = e.key(b, `,"_id_t":`, `,"_id_t_s":`, `,"_id_m":`, p.IdentityKey)
	if m := p.MergeKey; !m.Time.IsZero() || m.MessageID != "" { // version 1 wrote it only then
		b = e.key(b, `,"_merge_t":`, `,"_merge_t_s":`, `,"_merge_m":`, m)
	}
	if len(p.State) > 0 {
		// The enrichers' state is appended as it is: it is JSON they
		// encoded themselves (or that was read back from here), and
		// validating it would scan the largest part of the document once
		// more on every write.
		b = append(b, `,"_state":{`...)
		start := sortedKeys(e, p.State)
		for i := start; i < start+len(p.State); i++ {
			if i > start {
				b = append(b, ',')
			}
			k := e.keys[i]
			b = appendString(b, k)
			b = append(b, ':')
			if v := p.State[k]; len(v) > 0 {
				b = append(b, v...)
			} else {
				b = append(b, "null"...)
			}
		}
		e.keys = e.keys[:start]
		b = append(b, '}')
	}
	return append(b, '}')
}

// traits writes the traits in name order. A kept set of names (see
// docScratch) that m has all of, and no more, is that order: the writing
// goes along it and starts over sorted at the first name m lacks.
func (e *docEncoder) traits(b []byte, m map[string]portrait.Trait) []byte {
	start := len(b)
	for _, names := range e.s.shapes {
		if len(names) != len(m) {
			continue
		}
		b = b[:start]
		e.startTraits()
		for i, k := range names {
			t, ok := m[k]
			if !ok {
				break
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = e.trait(b, k, t)
			if i == len(names)-1 {
				return b
			}
		}
	}
	b = b[:start]
	e.startTraits()
	first := sortedKeys(e, m)
	names := e.keys[first : first+len(m)]
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = e.trait(b, k, m[k])
	}
	if len(names) <= maxShapeNames {
		kept := slices.Clone(names)
		if len(e.s.shapes) < maxShapes {
			e.s.shapes = append(e.s.shapes, kept)
		} else {
			e.s.shapes[e.s.nextShape] = kept
			e.s.nextShape = (e.s.nextShape + 1) % maxShapes
		}
	}
	e.keys = e.keys[:first]
	return b
}

// sortedKeys appends m's keys to e.keys, sorted, and returns where they
// start; the caller reads them by index (a nested map may move e.keys) and
// truncates e.keys back to start once written.
func sortedKeys[V any](e *docEncoder, m map[string]V) int {
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	return start
}

func (e *docEncoder) counts(b []byte, key string, m map[string]int) []byte {
	if len(m) == 0 {
		return b // version 1 read an empty map back as nil (track_counts) or as an empty one (event_counts)
	}
	b = append(b, key...)
	b = append(b, '{')
	start := sortedKeys(e, m)
	for i := start; i < start+len(m); i++ {
		if i > start {
			b = append(b, ',')
		}
		k := e.keys[i]
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(m[k]), 10)
	}
	e.keys = e.keys[:start]
	return append(b, '}')
}

func (e *docEncoder) key(b []byte, tkey, skey, mkey string, k portrait.EventKey) []byte {
	b = e.time(b, tkey, skey, k.Time)
	if k.MessageID != "" {
		b = append(b, mkey...)
		b = appendString(b, k.MessageID)
	}
	return b
}

func (e *docEncoder) trait(b []byte, name string, t portrait.Trait) []byte {
	b = append(b, ':', '{')
	n := len(b)
	if t.Value != nil {
		b = append(b, `,"v":`...)
		b = e.value(b, name, t.Value, 0)
	}
	b = e.lineage(b, t)
	if t.Priority != 0 {
		b = append(b, `,"p":`...)
		b = strconv.AppendInt(b, int64(t.Priority), 10)
	}
	if t.Once {
		b = append(b, `,"o":true`...)
	}
	if t.Imputed != "" {
		b = append(b, `,"i":`...)
		b = appendString(b, t.Imputed)
	}
	if len(b) > n {
		// Every field was written with a leading comma: drop the first.
		b = append(b[:n], b[n+1:]...)
	}
	return append(b, '}')
}

// lineage appends a trait's source, time and message id, or a reference
// to the same three written before (see the format above).
func (e *docEncoder) lineage(b []byte, t portrait.Trait) []byte {
	// The same three values write the same bytes: found so, they are not
	// written to be compared.
	for i := e.nlin - 1; i >= 0; i-- {
		if l := &e.lin[i]; l.msg == t.MessageID && l.at == t.Time && l.src == t.Source {
			b = append(b, `,"r":`...)
			return strconv.AppendInt(b, int64(l.n), 10)
		}
	}
	start := len(b)
	if t.Source != "" {
		b = append(b, `,"s":`...)
		b = appendString(b, t.Source)
	}
	b = e.time(b, `,"t":`, `,"t_s":`, t.Time)
	if t.MessageID != "" {
		b = append(b, `,"m":`...)
		b = appendString(b, t.MessageID)
	}
	seg := b[start:]
	if len(seg) > len(`,"r":99`) {
		// The latest first: a profile's traits are mostly of its last
		// event or two.
		for i := e.nlin - 1; i >= 0; i-- {
			if l := e.lin[i]; bytes.Equal(e.s.lin[l.start:l.end], seg) {
				b = append(b[:start], `,"r":`...)
				return strconv.AppendInt(b, int64(l.n), 10)
			}
		}
		if e.nlin < len(e.lin) {
			// A copy: the buffer moves under the trait's first comma.
			at := len(e.s.lin)
			e.s.lin = append(e.s.lin, seg...)
			e.lin[e.nlin] = span{at, len(e.s.lin), e.written, t.Source, t.MessageID, t.Time}
			e.nlin++
		}
	}
	e.written++
	return b
}

// value appends a trait's value. The kinds traits hold are written here;
// any other goes through go-json, as version 1 did, and reads back as it did.
func (e *docEncoder) value(b []byte, name string, v any, depth int) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e.fail(portrait.Errorf(portrait.EINVALID, "trait %q is %v, which JSON cannot hold", name, v))
			return b
		}
		return appendFloat(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case []any:
		if v == nil || depth >= maxValueDepth {
			return e.marshal(b, v)
		}
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.value(b, name, x, depth+1)
		}
		return append(b, ']')
	case map[string]any:
		if v == nil || depth >= maxValueDepth {
			return e.marshal(b, v)
		}
		b = append(b, '{')
		start := sortedKeys(e, v)
		for i := start; i < start+len(v); i++ {
			if i > start {
				b = append(b, ',')
			}
			k := e.keys[i]
			b = appendString(b, k)
			b = append(b, ':')
			b = e.value(b, name, v[k], depth+1)
		}
		e.keys = e.keys[:start]
		return append(b, '}')
	}
	return e.marshal(b, v)
}

// maxValueDepth bounds the nesting written here; deeper values (and a list
// that contains itself) are go-json's to write or refuse.
const maxValueDepth = 32

func (e *docEncoder) marshal(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		e.fail(err)
		return b
	}
	return append(b, j...)
}

func (e *docEncoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// time appends a time under key as nanoseconds, or under skey as RFC 3339
// text, or not at all (the zero time): see the format above.
func (e *docEncoder) time(b []byte, key, skey string, t time.Time) []byte {
	if utc(t) {
		if t.IsZero() {
			return b
		}
		// Nanoseconds fit in an int64 for these seconds; 0 would read
		// back as absent.
		if s := t.Unix(); s >= -9223372036 && s <= 9223372035 {
			if ns := s*1e9 + int64(t.Nanosecond()); ns != 0 {
				if ns != e.lastNS || e.lastLen == 0 {
					e.lastNS, e.lastLen = ns, len(strconv.AppendInt(e.lastDigits[:0], ns, 10))
				}
				b = append(b, key...)
				return append(b, e.lastDigits[:e.lastLen]...)
			}
		}
	}
	b = append(b, skey...)
	text, err := t.AppendText(append(b, '"'))
	if err != nil {
		e.fail(err) // a year outside 0–9999: version 1 refused it too
		return b
	}
	return append(text, '"')
}

// utc is whether RFC 3339 writes t with "Z", which reads back as UTC.
func utc(t time.Time) bool {
	if t.Location() == time.UTC {
		return true
	}
	_, off := t.Zone()
	return off == 0
}

// appendFloat appends f as encoding/json and go-json write a float64, byte
// for byte (doc_test.go checks it against go-json): an integer below 2⁵³ by
// its digits, else the shortest decimal that reads back as f, with an
// exponent below 1e-6 and from 1e21.
func appendFloat(b []byte, f float64) []byte {
	if i := int64(f); float64(i) == f && i != 0 && -1<<53 < i && i < 1<<53 {
		return strconv.AppendInt(b, i, 10)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7
		if n := len(b); b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json and go-json write it; unlike them it leaves <, >, & and
// U+2028/9 as they are, which JSON allows and which read back the same.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	done := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
			i++
			done = i
			continue
		}
		i += size
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}
