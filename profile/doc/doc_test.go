package doc

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/portrait-cdp/portrait"
)

// encodeProfileV1 is encodeProfile as it was before version 2, kept to make
// the documents that existing databases hold.
func encodeProfileV1(p *portrait.Profile) ([]byte, error) {
	d := profileDoc{Profile: p, FirstTime: p.FirstKey.Time, FirstMsg: p.FirstKey.MessageID, LastTime: p.LastKey.Time, LastMsg: p.LastKey.MessageID,
		IDTime: p.IdentityKey.Time, IDMsg: p.IdentityKey.MessageID}
	if m := p.MergeKey; !m.Time.IsZero() || m.MessageID != "" {
		d.MergeTime, d.MergeMsg = &m.Time, m.MessageID
	}
	b, err := json.Marshal(d)
	if err != nil || len(p.State) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(p.State))
	for k := range p.State {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]byte, 0, len(b)+64)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"_state":{`...)
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(out, kb...)
		out = append(out, ':')
		if v := p.State[k]; len(v) > 0 {
			out = append(out, v...)
		} else {
			out = append(out, "null"...)
		}
	}
	return append(out, '}', '}'), nil
}

// checkDoc encodes p in both versions and checks that the version 2
// document is JSON and reads back as the version 1 one does, and then the
// same of what was read back (which need not be p: a time at an offset of
// seconds reads back at another). It returns the profile read back, nil when
// both versions refuse p.
func checkDoc(t testing.TB, p *portrait.Profile) *portrait.Profile {
	t.Helper()
	got := compareDoc(t, p)
	if got != nil {
		compareDoc(t, got)
	}
	return got
}

func compareDoc(t testing.TB, p *portrait.Profile) *portrait.Profile {
	t.Helper()
	old, errOld := encodeProfileV1(p)
	doc, err := Encode(p)
	if (err == nil) != (errOld == nil) {
		t.Fatalf("version 1 error %v, version 2 error %v", errOld, err)
	}
	if err != nil {
		return nil
	}
	if !bytes.HasPrefix(doc, []byte(docVersion+",")) || !stdjson.Valid(doc) {
		t.Fatalf("not a version 2 JSON document: %s", doc)
	}
	stateUTF8 := true
	for _, v := range p.State {
		stateUTF8 = stateUTF8 && utf8.Valid(v)
	}
	if stateUTF8 && !utf8.Valid(doc) {
		t.Fatalf("not UTF-8: %q", doc)
	}
	var top map[string]stdjson.RawMessage
	if err := stdjson.Unmarshal(doc, &top); err != nil || string(top["event_count"]) != strconv.Itoa(p.EventCount) {
		t.Fatalf("event_count is not a top-level number (%v): %s", err, doc)
	}
	want, err := Decode(old)
	if err != nil {
		t.Fatalf("version 1: %v\n%s", err, old)
	}
	got, err := Decode(doc)
	if err != nil {
		t.Fatalf("version 2: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("version 2 reads back otherwise than version 1:\nv2 %s\n   %#v\nv1 %s\n   %#v", doc, got, old, want)
	}
	return got
}

var (
	docAt    = time.Date(2026, 1, 28, 15, 2, 0, 123456789, time.UTC)
	shanghai = time.FixedZone("", 8*3600)
)

// Every field of a profile, every kind of trait value, and times in and out
// of UTC come back from version 2 as they come back from version 1.
func TestProfileDocRoundTrip(t *testing.T) {
	full := func() *portrait.Profile {
		return &portrait.Profile{ID: "p_1",
			Traits: map[string]portrait.Trait{
				"name":    {Value: "王芳", Source: "web", Time: docAt, MessageID: "m1", Priority: 3},
				"score":   {Value: 187.5, Source: "computed", Time: docAt, MessageID: "m2"},
				"count":   {Value: float64(20), Source: "computed", Time: docAt},
				"int":     {Value: 7, Source: "import", Time: docAt, Once: true},
				"int64":   {Value: int64(-1) << 60, Source: "import", Time: docAt},
				"flag":    {Value: true, Source: "ios", Time: docAt},
				"off":     {Value: false},
				"none":    {Value: nil, Source: "web", Time: docAt, MessageID: "m3"},
				"list":    {Value: []any{"music", "books", 1.5, nil, true}, Source: "computed", Time: docAt},
				"empty":   {Value: []any{}, Source: "computed"},
				"nil":     {Value: []any(nil)},
				"maps":    {Value: []any{map[string]any{"at": "2026-01-02T05:42:00Z", "stage": "new"}, map[string]any{"stage": "loyal", "n": 2.0, "x": []any{map[string]any{}}}}},
				"map":     {Value: map[string]any{"b": 1.0, "a": "x"}},
				"strs":    {Value: []string{"a", "b"}},
				"uint8":   {Value: uint8(9)},
				"float32": {Value: float32(0.1)},
				"time":    {Value: docAt.In(shanghai)},
				"raw":     {Value: stdjson.RawMessage(`{"k":[1,2]}`)},
				"gender":  {Value: "female", Source: "imputed", Time: docAt, MessageID: "m1", Imputed: "mode"},
				"nested":  {Value: map[string]any{"deep": map[string]any{"deeper": []any{[]any{"x"}}}}},
			},
			Identifiers: []portrait.Identifier{{Type: "user_id", Value: "u1"}, {Type: "email", Value: "wang.fang@example.com"}},
			MergedFrom:  []string{"p_0", "p_2"},
			FirstSeen:   docAt.Add(-time.Hour), LastSeen: docAt, EventCount: 20,
			EventCounts: map[string]int{"track": 18, "identify": 2},
			TrackCounts: map[string]int{"Order Completed": 12, "Product Viewed": 6},
			Tags:        []portrait.ProfileTag{{Name: "vip", Since: docAt}, {Name: "rfm:champion", Since: docAt.Add(time.Nanosecond)}},
			State:       map[string]stdjson.RawMessage{"traits": stdjson.RawMessage(`{"v":2,"e":[1,2]}`), "b": stdjson.RawMessage(`[1,2]`), "empty": nil},
			FirstKey:    portrait.EventKey{Time: docAt.Add(-time.Hour), MessageID: "m0"},
			LastKey:     portrait.EventKey{Time: docAt, MessageID: "m9"},
			IdentityKey: portrait.EventKey{Time: docAt.Add(-time.Minute), MessageID: "m1"},
			MergeKey:    portrait.EventKey{Time: docAt.Add(-time.Second), MessageID: "m5"},
			UpdatedAt:   docAt.Add(time.Hour),
		}
	}
	cases := map[string]func(p *portrait.Profile){
		"full": func(p *portrait.Profile) {},
		"empty": func(p *portrait.Profile) {
			*p = portrait.Profile{}
		},
		"empty maps and slices": func(p *portrait.Profile) {
			p.Traits, p.EventCounts, p.TrackCounts, p.State = map[string]portrait.Trait{}, map[string]int{}, map[string]int{}, map[string]stdjson.RawMessage{}
			p.Identifiers, p.MergedFrom, p.Tags = []portrait.Identifier{}, []string{}, []portrait.ProfileTag{}
		},
		"nil maps and slices": func(p *portrait.Profile) {
			p.Traits, p.EventCounts, p.TrackCounts, p.State = nil, nil, nil, nil
			p.Identifiers, p.MergedFrom, p.Tags = nil, nil, nil
		},
		"zero times": func(p *portrait.Profile) {
			p.FirstSeen, p.LastSeen, p.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
			p.FirstKey.Time, p.LastKey.Time, p.IdentityKey.Time = time.Time{}, time.Time{}, time.Time{}
			p.MergeKey = portrait.EventKey{MessageID: "m5"}
			p.Tags[0].Since = time.Time{}
			p.Traits["name"] = portrait.Trait{Value: "x"}
		},
		"zero merge key": func(p *portrait.Profile) { p.MergeKey = portrait.EventKey{} },
		"merge key zero in a zone": func(p *portrait.Profile) {
			p.MergeKey = portrait.EventKey{Time: time.Time{}.In(shanghai)}
		},
		"zero times in a zone": func(p *portrait.Profile) {
			z := time.Time{}.In(shanghai)
			p.FirstSeen, p.FirstKey.Time, p.MergeKey.Time, p.Tags[0].Since = z, z, z, z
			p.Traits["name"] = portrait.Trait{Value: "x", Time: z}
		},
		"other zones": func(p *portrait.Profile) {
			ny := time.FixedZone("EST", -5*3600)
			p.FirstSeen, p.LastSeen, p.UpdatedAt = docAt.In(shanghai), docAt.In(ny), docAt.In(time.FixedZone("", 90*60))
			p.FirstKey.Time, p.LastKey.Time, p.IdentityKey.Time, p.MergeKey.Time = docAt.In(shanghai), docAt.In(ny), docAt.In(shanghai), docAt.In(ny)
			p.Tags[0].Since = docAt.In(shanghai)
			p.Traits["name"] = portrait.Trait{Value: "x", Time: docAt.In(shanghai), Source: "web"}
		},
		"zero offset, not UTC": func(p *portrait.Profile) {
			z := docAt.In(time.FixedZone("GMT", 0))
			p.FirstSeen, p.FirstKey.Time, p.Tags[0].Since = z, z, z
			p.LastSeen, p.LastKey.Time = docAt.In(time.Local), time.Now()
			p.Traits["name"] = portrait.Trait{Value: "x", Time: z}
		},
		"out of nanosecond range": func(p *portrait.Profile) {
			p.FirstSeen = time.Date(1000, 1, 1, 0, 0, 0, 5, time.UTC)
			p.LastSeen = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
			p.FirstKey.Time = time.Date(1677, 9, 21, 0, 12, 43, 145224191, time.UTC) // just below the range
			p.LastKey.Time = time.Date(1677, 9, 21, 0, 12, 44, 0, time.UTC)
			p.IdentityKey.Time = time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC) // the largest
			p.MergeKey.Time = time.Date(2262, 4, 11, 23, 47, 17, 0, time.UTC)
			p.Tags[0].Since = time.Unix(0, 0).UTC() // the epoch is written as text
			p.Tags[1].Since = time.Unix(0, 1).UTC()
			p.Traits["name"] = portrait.Trait{Value: "x", Time: time.Unix(0, -1).UTC()}
		},
		"unicode and invalid UTF-8": func(p *portrait.Profile) {
			p.ID = "p_\xff\x00\"\\\n\r\t\u2028<>&\x7f"
			bad := "a\xc3(\xed\xa0\x80\xf0\x28\x8c\xbc b\x01\x1f 李\U0001F600"
			p.Traits = map[string]portrait.Trait{bad: {Value: bad, Source: bad, Time: docAt, MessageID: bad, Imputed: bad},
				"list": {Value: []any{bad, map[string]any{bad: bad}}}, "名字": {Value: "王芳"},
				// two names that JSON writes alike: the last (in Go's order) wins, as it did
				"\xfe": {Value: map[string]any{"\xff": 1.0, "\xfe": 2.0, "\xef\xbf\xbd": 3.0}}, "\xff": {Value: "b"}, "\xef\xbf\xbd": {Value: "c"}}
			p.Identifiers = []portrait.Identifier{{Type: bad, Value: bad}}
			p.MergedFrom = []string{bad}
			p.EventCounts, p.TrackCounts = map[string]int{bad: 1}, map[string]int{bad: 2}
			p.Tags = []portrait.ProfileTag{{Name: bad, Since: docAt}}
			p.State = map[string]stdjson.RawMessage{bad: stdjson.RawMessage(`"x"`)}
			p.FirstKey.MessageID, p.LastKey.MessageID, p.IdentityKey.MessageID, p.MergeKey.MessageID = bad, bad, bad, bad
		},
		"numbers": func(p *portrait.Profile) {
			p.Traits = map[string]portrait.Trait{}
			for i, f := range testFloats {
				p.Traits[strconv.Itoa(i)] = portrait.Trait{Value: f}
			}
			p.Traits["minint"] = portrait.Trait{Value: math.MinInt64}
			p.Traits["maxint64"] = portrait.Trait{Value: int64(math.MaxInt64)}
			p.Traits["prio"] = portrait.Trait{Value: 1.0, Priority: -4}
			p.EventCount, p.EventCounts = -1, map[string]int{"track": math.MaxInt64, "page": math.MinInt64}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			p := full()
			change(p)
			got := checkDoc(t, p)
			if got == nil {
				t.Fatal("refused")
			}
		})
	}

	// Beyond agreeing with version 1, a few exact expectations.
	p := full()
	p.LastSeen = docAt.In(shanghai)
	got := checkDoc(t, p)
	if got.FirstSeen != docAt.Add(-time.Hour) || got.Traits["name"].Time != docAt || got.Tags[1].Since.Nanosecond() != 123456790 {
		t.Errorf("UTC times: %v %v %v", got.FirstSeen, got.Traits["name"].Time, got.Tags[1].Since)
	}
	if !got.LastSeen.Equal(docAt) || got.LastSeen.Format(time.RFC3339Nano) != "2026-01-28T23:02:00.123456789+08:00" {
		t.Errorf("a time in +08:00 came back as %v", got.LastSeen)
	}
	if got.Traits["int"].Value != 7.0 || got.Traits["int64"].Value != float64(int64(-1)<<60) || !reflect.DeepEqual(got.Traits["strs"].Value, []any{"a", "b"}) {
		t.Errorf("values: %#v %#v %#v", got.Traits["int"].Value, got.Traits["int64"].Value, got.Traits["strs"].Value)
	}
}

// A version 2 document is compact: an enriched buyer's traits and tags in
// short keys and integer times.
func TestProfileDocFormat(t *testing.T) {
	p := &portrait.Profile{ID: "p_1", EventCount: 20, FirstSeen: docAt, Identifiers: []portrait.Identifier{{Type: "user_id", Value: "u1"}},
		Traits: map[string]portrait.Trait{
			"revenue": {Value: 3750.0, Source: "computed", Time: docAt, MessageID: "b0039782"},
			"gender":  {Value: "female", Source: "imputed", Imputed: "mode", Priority: 2, Once: true},
			"name":    {Value: "X", Time: docAt.In(shanghai)},
			// The same source, time and message id as revenue, and as
			// gender: references to them.
			"revenue_90d": {Value: 1200.0, Source: "computed", Time: docAt, MessageID: "b0039782"},
			"tier":        {Value: "gold", Source: "imputed"},
		},
		Tags: []portrait.ProfileTag{{Name: "vip", Since: docAt}, {Name: "active", Since: docAt}, {Name: "new", Since: docAt.Add(time.Second)},
			{Name: "web", Since: docAt}, {Name: "old"}},
		FirstKey: portrait.EventKey{Time: docAt, MessageID: "b1"}, State: map[string]stdjson.RawMessage{"traits": stdjson.RawMessage(`{"v":2}`)}}
	doc, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_v":3,"id":"p_1","event_count":20,"first_seen":1769612520123456789,"identifiers":[{"type":"user_id","value":"u1"}],` +
		`"traits":{"gender":{"v":"female","s":"imputed","p":2,"o":true,"i":"mode"},` +
		`"name":{"v":"X","t_s":"2026-01-28T23:02:00.123456789+08:00"},` +
		`"revenue":{"v":3750,"s":"computed","t":1769612520123456789,"m":"b0039782"},"revenue_90d":{"v":1200,"r":2},"tier":{"v":"gold","r":0}},` +
		`"tg":[{"t":1769612520123456789,"n":["vip","active"]},{"t":1769612521123456789,"n":["new"]},{"t":1769612520123456789,"n":["web"]},{"n":["old"]}],` +
		`"_first_t":1769612520123456789,"_first_m":"b1","_state":{"traits":{"v":2}}}`
	if string(doc) != want {
		t.Errorf("document\n got %s\nwant %s", doc, want)
	}
	checkDoc(t, p)
	// Documents written before tags went in runs (one object a tag) read too.
	old := `{"_v":2,"id":"p_1","tags":[{"n":"vip","t":1769612520123456789},{"n":"new","t_s":"2026-01-28T23:02:00.123456789+08:00"},{"n":"old"}]}`
	q, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	wantTags := []portrait.ProfileTag{{Name: "vip", Since: docAt}, {Name: "new", Since: docAt.In(shanghai)}, {Name: "old"}}
	if len(q.Tags) != 3 || q.Tags[0] != wantTags[0] || q.Tags[2] != wantTags[2] || !q.Tags[1].Since.Equal(wantTags[1].Since) || q.Tags[1].Name != "new" {
		t.Errorf("tags of an earlier document: %+v, want %+v", q.Tags, wantTags)
	}
}

// An empty list reads back as an empty list, not nil, whatever a pooled
// decoder read before.
func TestProfileDocEmptyLists(t *testing.T) {
	d := &docDecoder{b: []byte(`{"_v":2,"identifiers":[],"merged_from":[],"tags":[],"traits":{}}`)}
	p := d.profile()
	if d.err != nil || p.Identifiers == nil || p.MergedFrom == nil || p.Tags == nil || p.Traits == nil || p.EventCounts == nil || p.TrackCounts != nil {
		t.Errorf("%v %#v", d.err, p)
	}
}

// Documents that existing databases hold (version 1) read as they did.
func TestProfileDocVersion1(t *testing.T) {
	old := `{"id":"p_1","traits":{"n":{"value":3,"source":"web","time":"2026-01-28T23:02:00.5+08:00","message_id":"m1","priority":2,"once":true},` +
		`"x":{"value":[{"a":"b"}],"source":"","time":"0001-01-01T00:00:00Z","message_id":""}},"identifiers":[],"merged_from":null,` +
		`"first_seen":"2026-01-28T15:02:00.000000001Z","last_seen":"0001-01-01T00:00:00Z","event_count":2,"event_counts":null,` +
		`"tags":[{"name":"vip","since":"2026-01-28T15:02:00Z"}],"updated_at":"2026-01-28T15:02:00Z",` +
		`"_first_time":"2026-01-28T15:02:00Z","_first_msg":"m0","_last_time":"0001-01-01T00:00:00Z","_last_msg":"",` +
		`"_id_time":"0001-01-01T00:00:00Z","_id_msg":"","_merge_time":"0001-01-01T00:00:00Z","_merge_msg":"m7","_state":{"traits":{"v":2}}}`
	got, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 28, 15, 2, 0, 0, time.UTC)
	// +08:00 reads back as a fixed zone, or as time.Local where that is
	// its offset then: as time.Parse reads it.
	nAt, _ := time.Parse(time.RFC3339, "2026-01-28T23:02:00.5+08:00")
	if _, off := nAt.Zone(); off != 8*3600 || !nAt.Equal(at.Add(5e8)) {
		t.Fatalf("time.Parse gave %v", nAt)
	}
	want := &portrait.Profile{ID: "p_1",
		Traits: map[string]portrait.Trait{"n": {Value: 3.0, Source: "web", Time: nAt, MessageID: "m1", Priority: 2, Once: true},
			"x": {Value: []any{map[string]any{"a": "b"}}}},
		Identifiers: []portrait.Identifier{}, FirstSeen: at.Add(1), EventCount: 2, EventCounts: map[string]int{},
		Tags: []portrait.ProfileTag{{Name: "vip", Since: at}}, UpdatedAt: at,
		FirstKey: portrait.EventKey{Time: at, MessageID: "m0"}, MergeKey: portrait.EventKey{MessageID: "m7"},
		State: map[string]stdjson.RawMessage{"traits": stdjson.RawMessage(`{"v":2}`)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("version 1 document read as\n%#v\nwant\n%#v", got, want)
	}
	if got.Traits["x"].Time.Location() != time.UTC || got.FirstSeen.Location() != time.UTC {
		t.Error("a Z time is not UTC")
	}
	// The enriched buyer of testdata, as the processor wrote it, reads back
	// the same from version 2.
	raw, err := os.ReadFile("testdata/profile_v1_enriched.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Traits) != 34 || len(p.Tags) != 38 || len(p.State["traits"]) < 4000 {
		t.Fatalf("testdata: %d traits, %d tags, %d bytes of state", len(p.Traits), len(p.Tags), len(p.State["traits"]))
	}
	if again, _ := encodeProfileV1(p); !bytes.Equal(again, raw) {
		t.Error("testdata is not what version 1 writes")
	}
	checkDoc(t, p)

	if _, err := Decode([]byte(`{"_v":4,"id":"p"}`)); err == nil {
		t.Error("a document of an unknown version was read")
	}
	for _, doc := range []string{`{"_v":3,"traits":{"a":{"r":0}}}`, `{"_v":3,"traits":{"a":{"s":"x"},"b":{"r":1}}}`, `{"_v":3,"traits":{"a":{"s":"x"},"b":{"r":-1}}}`} {
		if _, err := Decode([]byte(doc)); err == nil {
			t.Errorf("%s: a reference to no trait's lineage was read", doc)
		}
	}
}

// Values and times that JSON or RFC 3339 cannot hold are refused, as they
// were.
func TestProfileDocRefused(t *testing.T) {
	for name, p := range map[string]*portrait.Profile{
		"NaN":       {Traits: map[string]portrait.Trait{"x": {Value: math.NaN()}}},
		"Inf":       {Traits: map[string]portrait.Trait{"x": {Value: []any{math.Inf(-1)}}}},
		"year":      {FirstSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zone year": {Tags: []portrait.ProfileTag{{Since: time.Date(-1, 1, 1, 0, 0, 0, 0, shanghai)}}},
		"chan":      {Traits: map[string]portrait.Trait{"x": {Value: map[string]any{"c": make(chan int)}}}},
	} {
		if _, err := Encode(p); err == nil {
			t.Errorf("%s: no error", name)
		}
		if checkDoc(t, p) != nil {
			t.Errorf("%s: version 1 accepted it", name)
		}
	}
}

var testFloats = []float64{0, math.Copysign(0, -1), 1, -1, 3, 187.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 5e-324, 1e20, 1e21, 123456789e13,
	1 << 53, 1<<53 + 2, -(1 << 53), 1<<53 - 1, 1 << 62, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 2.5e-8, 1.7976931348623157e308,
	float64(float32(0.1)), 0.30000000000000004, 100, 1e6, 1e-5, 123.456e-10}

// appendFloat writes a float64 as go-json did, byte for byte.
func TestAppendFloat(t *testing.T) {
	for _, f := range testFloats {
		checkFloat(t, f)
		checkFloat(t, -f)
	}
	for i := uint64(0); i < 100000; i++ {
		checkFloat(t, math.Float64frombits(i*0x9e3779b97f4a7c15))
	}
}

func checkFloat(t *testing.T, f float64) {
	t.Helper()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return
	}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendFloat(nil, f); string(got) != string(want) {
		t.Fatalf("%b: %s, go-json %s", f, got, want)
	}
}

// appendString writes JSON that reads back as go-json's does.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "abc", `"\`, "\x00\x01\x1f\x7f", "\n\r\t\b\f", "<>&\u2028\u2029", "王芳", "\U0001F600", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbf\xbd"} {
		checkString(t, s)
	}
}

func checkString(t *testing.T, s string) {
	t.Helper()
	b := appendString(nil, s)
	if !stdjson.Valid(b) || !utf8.Valid(b) {
		t.Fatalf("%q: not a JSON string: %s", s, b)
	}
	want, _ := json.Marshal(s)
	var got, w string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if got != w {
		t.Fatalf("%q reads back as %q, go-json's as %q", s, got, w)
	}
}

// Generated profiles read back from version 2 as from version 1.
func FuzzProfileDoc(f *testing.F) {
	f.Add("p_1", "name", "王芳", "web", 187.5, int64(20), int64(1769612520), int64(123456789), int32(0), uint16(0x4000), []byte(`{"v":2,"e":[1]}`))
	f.Add("p\xff", "a\xc3(", "\x00\"\\", "", math.Copysign(0, -1), int64(-1)<<60, int64(0), int64(0), int32(8*3600), uint16(0xffff), []byte(`null`))
	f.Add("", "", "", "", 1e-7, int64(0), int64(-62135596800), int64(0), int32(-30), uint16(0x5555), []byte(`x`))
	for _, s := range jsonSnippets {
		f.Add("p", "n", "s", "web", 0.5, int64(3), int64(1769612520), int64(0), int32(0), uint16(0x1400), []byte(s))
	}
	f.Fuzz(func(t *testing.T, id, name, s, source string, fl float64, n, sec, nsec int64, off int32, flags uint16, state []byte) {
		bit := func(i uint) bool { return flags&(1<<i) != 0 }
		var loc *time.Location
		switch {
		case bit(0):
			loc = time.FixedZone(s, int(off))
		case bit(1):
			loc = time.Local
		default:
			loc = time.UTC
		}
		at := time.Unix(sec, nsec).In(loc)
		if bit(2) {
			at = time.Time{}
		}
		p := &portrait.Profile{ID: id, EventCount: int(n), FirstSeen: at, LastSeen: at.Add(time.Duration(n)), UpdatedAt: at.UTC(),
			Traits: map[string]portrait.Trait{
				name:   {Value: s, Source: source, Time: at, MessageID: s, Priority: int(off), Once: bit(3), Imputed: source},
				"f":    {Value: fl, Time: at.Add(time.Duration(nsec))},
				"n":    {Value: n, Source: source},
				"b":    {Value: bit(4)},
				"list": {Value: []any{s, fl, nil, bit(5), map[string]any{name: s, s: fl, "l": []any{}}}, Time: at.UTC()},
			},
			EventCounts: map[string]int{name: int(n)},
			FirstKey:    portrait.EventKey{Time: at, MessageID: id}, LastKey: portrait.EventKey{Time: at.UTC(), MessageID: s},
			IdentityKey: portrait.EventKey{Time: at.Add(-time.Duration(nsec))},
		}
		p.Traits[s] = portrait.Trait{Value: map[string]any{name: []any{n}}}
		if bit(14) {
			// Lineages that repeat go as references.
			p.Traits["same"] = portrait.Trait{Value: fl, Source: source, Time: at, MessageID: s}
			p.Traits["same_nil"] = portrait.Trait{Source: source, Time: at, MessageID: s, Priority: 1}
			p.Traits["same_utc"] = portrait.Trait{Value: n, Time: at.UTC()}
		}
		if bit(6) {
			p.Identifiers = []portrait.Identifier{{Type: name, Value: s}}
		} else if bit(7) {
			p.Identifiers = []portrait.Identifier{}
		}
		if bit(8) {
			p.MergedFrom = []string{id, s}
		} else if bit(9) {
			p.MergedFrom = []string{}
		}
		if bit(10) {
			p.Tags = []portrait.ProfileTag{{Name: name, Since: at}, {Name: s, Since: at.UTC()}}
		} else if bit(11) {
			p.Tags = []portrait.ProfileTag{}
		}
		if bit(12) {
			p.MergeKey = portrait.EventKey{Time: at, MessageID: source}
		}
		if bit(13) {
			p.TrackCounts = map[string]int{s: int(sec)}
		}
		if stdjson.Valid(state) {
			p.State = map[string]stdjson.RawMessage{name: state, s: nil}
		}
		checkDoc(t, p)
		checkFloat(t, fl)
		checkString(t, s)
		checkDecoder(t, state, n)
	})
}

// jsonSnippets are values for the reader to agree with go-json on.
var jsonSnippets = []string{`"\ud83d\ude00\u00e9\/\b\f"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"\ud800\ud800\udc00"`, "\"\xff\xc3(\"",
	"\"\x01\"", `[1e400]`, `-0`, `-0.0e-0`, `1E2`, `0.1`, `123456789012345`, `1234567890123456789`, `-9007199254740993`, `01`, `1.`, `.5`, `-`,
	`{"a":1,"a":2}`, `[[[]],{},{"":null}]`, ` [ 1 , true , false , null , "x" ] `, `{"a" 1}`, `[1,]`, `{,}`, `tru`, `nul`, `"\x"`, `"\u12"`, `[`, `"`}

// The reader reads JSON values as go-json does and refuses what is not JSON.
func TestProfileDocReader(t *testing.T) {
	for _, s := range jsonSnippets {
		checkDecoder(t, []byte(s), 7)
	}
}

// checkDecoder holds the version 2 reader to go-json and encoding/json on
// any input: it reads a JSON value as go-json does, checks JSON's grammar as
// encoding/json does, and refuses a truncated document without panicking.
func checkDecoder(t *testing.T, in []byte, n int64) {
	t.Helper()
	valid := stdjson.Valid(in)
	if end := skipValue(in, 0); (end >= 0 && len(bytes.TrimRight(in[end:], " \t\r\n")) == 0) != valid {
		t.Fatalf("skipValue %d, json.Valid %v: %q", end, valid, in)
	}
	doc := append(append([]byte(`{"_v":2,"traits":{"x":{"v":`), in...), "}}}"...)
	p, err := Decode(doc)
	var want any
	if json.Unmarshal(in, &want) != nil {
		if err == nil && valid {
			t.Fatalf("read %q, which go-json refuses", in)
		}
		return
	}
	if err != nil {
		t.Fatalf("cannot read %q, which go-json reads: %v", in, err)
	}
	if got := p.Traits["x"].Value; !reflect.DeepEqual(got, want) {
		t.Fatalf("read %q as %#v, go-json as %#v", in, got, want)
	}
	if enc, err := Encode(p); err == nil && n > 0 {
		if k := int(n % int64(len(enc))); k > 0 {
			if _, err := Decode(enc[:k]); err == nil {
				t.Fatalf("read the truncated %q", enc[:k])
			}
		}
	}
}

// Kept sets of trait names (docScratch.shapes) give the same document as
// sorting afresh, whichever sets were kept before: sets of one size that
// differ in a name, more sets than are kept, and a set that is a kept
// one's subset.
func TestProfileDocTraitNameSets(t *testing.T) {
	sets := [][]string{{"a", "b", "c"}, {"a", "b", "d"}, {"b", "c", "d"}, {"x"}, {"a", "b"}, {"c", "d", "e", "f"}, {"a", "c", "d"}}
	fresh := func(p *portrait.Profile) []byte {
		e := docEncoder{s: &docScratch{}}
		return bytes.Clone(e.profile(nil, p))
	}
	for round := range 50 {
		names := sets[(round*5)%len(sets)]
		p := &portrait.Profile{ID: fmt.Sprint("p", round), Traits: map[string]portrait.Trait{}}
		for i, n := range names {
			p.Traits[n] = portrait.Trait{Value: float64(round + i), Source: "web", Time: docAt, MessageID: n}
		}
		got, err := Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := fresh(p); !bytes.Equal(got, want) {
			t.Fatalf("round %d, names %v:\n got %s\nwant %s", round, names, got, want)
		}
		checkDoc(t, p)
	}
}
