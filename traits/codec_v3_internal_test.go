package traits

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"pgregory.net/rapid"
)

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
}

// codecDefs are definitions of every aggregate, all-time and over two
// windows, on a property that may be a string, a number, a bool or absent.
func codecDefs(t tb) *Enricher {
	t.Helper()
	en, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var defs []Definition
	for _, a := range []string{AggCount, AggSum, AggAvg, AggMin, AggMax, AggFirst, AggLast, AggMostFrequent, AggUnique, AggDistinctCount} {
		for _, w := range []string{"", "1d", "7d"} {
			for _, prop := range []string{"revenue", "v"} {
				defs = append(defs, Definition{Name: fmt.Sprintf("%s_%s_%s", a, prop, w), Aggregate: a, Event: "Order Completed", Property: prop, Window: w})
			}
		}
	}
	if err := en.SetDefinitions(defs); err != nil {
		t.Fatal(err)
	}
	return en
}

// stateOf is p's state decoded and aligned to en's definitions, ready to
// be encoded again.
func stateOf(t tb, en *Enricher, p *portrait.Profile) *pstate {
	t.Helper()
	st := decodeState(p.State[StateKey], en.cfg.Lifecycle)
	st.align(en.defs.Load())
	return st
}

// checkV3 encodes st in versions 2 and 3 and fails unless both decode to
// the same state, and version 3 reads back to the same bytes.
func checkV3(t tb, en *Enricher, st *pstate) (v2, v3 []byte) {
	t.Helper()
	v2, err := st.encodeCompact(2)
	if err != nil {
		t.Fatal(err)
	}
	v3, err = st.encodeCompact(3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v2, v2Prefix) && string(v2) != `{"v":2}` {
		t.Fatalf("not version 2: %s", v2)
	}
	if !bytes.HasPrefix(v3, v3Prefix) && string(v3) != `{"v":3}` {
		t.Fatalf("not version 3: %s", v3)
	}
	if len(v2) > len(v2Prefix) {
		d2, err := decodeV2(v2)
		if err != nil {
			t.Fatalf("version 2: %v\n%s", err, v2)
		}
		d3, err := decodeV2(v3)
		if err != nil {
			t.Fatalf("version 3: %v\n%s", err, v3)
		}
		if !reflect.DeepEqual(d2, d3) {
			t.Fatalf("versions 2 and 3 decode apart\n%s\n%s\n%#v\n%#v", v2, v3, d2, d3)
		}
		d3.align(en.defs.Load())
		again, err := d3.encodeCompact(3)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, v3) {
			t.Fatalf("version 3 not written the same after a round trip\n%s\n%s", v3, again)
		}
	}
	return v2, v3
}

type codecEvent struct {
	user string
	at   int64 // minutes
	msg  string
	v    any
	rev  float64
}

func feed(en *Enricher, profiles map[string]*portrait.Profile, evs []codecEvent) {
	for _, x := range evs {
		p := profiles[x.user]
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(x.at) * time.Minute)
		if p == nil {
			p = &portrait.Profile{ID: x.user, FirstSeen: at}
			profiles[x.user] = p
		}
		p.LastSeen = at
		props := map[string]any{"revenue": x.rev, "category": "c"}
		if x.v != nil {
			props["v"] = x.v
		}
		en.Event(p, &portrait.Event{Type: portrait.EventTrack, Name: "Order Completed", MessageID: x.msg, Timestamp: at, Source: "web"}, props)
	}
}

// Whatever the events (values of any type, several or none in a bucket,
// events at one instant) and merges, versions 2 and 3 of a state decode
// to the same state.
func TestStateV3DecodesAsV2(t *testing.T) {
	values := []any{"a", "b", "music", "é\"x\n", "", 1.5, 2.0, true, nil}
	forms := map[string]bool{}
	rapid.Check(t, func(rt *rapid.T) {
		en := codecDefs(rt)
		profiles := map[string]*portrait.Profile{}
		var evs []codecEvent
		for i := range rapid.IntRange(1, 60).Draw(rt, "n") {
			// Coarse times put several events at one instant.
			coarse := rapid.SampledFrom([]int64{1, 600}).Draw(rt, "coarse")
			evs = append(evs, codecEvent{
				user: rapid.SampledFrom([]string{"u1", "u2"}).Draw(rt, "user"),
				at:   rapid.Int64Range(0, 5*24*60).Draw(rt, "at") / coarse * coarse,
				msg:  fmt.Sprintf("m%d", i),
				v:    rapid.SampledFrom(values).Draw(rt, "v"),
				rev:  float64(rapid.IntRange(0, 500).Draw(rt, "rev")) / 4,
			})
		}
		feed(en, profiles, evs)
		now := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
		if rapid.Bool().Draw(rt, "merge") && profiles["u1"] != nil && profiles["u2"] != nil {
			en.Finish(profiles["u2"], now)
			en.Merge(profiles["u1"], profiles["u2"])
			delete(profiles, "u2")
		}
		for _, p := range profiles {
			en.Finish(p, now)
			_, v3 := checkV3(rt, en, stateOf(rt, en, p))
			for _, f := range []string{`"bt":`, `"bv":`, `"qk":`, `"qn":`, `"qe":`, `"bq":`} {
				forms[f] = forms[f] || bytes.Contains(v3, []byte(f))
			}
		}
	})
	if len(forms) != 6 || slicesContains(mapValues(forms), false) {
		t.Fatalf("not every form written: %v", forms)
	}
}

func mapValues(m map[string]bool) []bool {
	var out []bool
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// The shapes events seldom make: bucket sets of several values, counts
// above 1, empty bucket sets beside full ones, sets at their cap, no
// strings at all.
func TestStateV3Shapes(t *testing.T) {
	en := codecDefs(t)
	profiles := map[string]*portrait.Profile{}
	var evs []codecEvent
	day := int64(24 * 60)
	for i := range maxValues + 50 { // one bucket over its cap
		evs = append(evs, codecEvent{user: "cap", at: 8 * day, msg: fmt.Sprintf("c%d", i), v: fmt.Sprintf("v%04d", i), rev: 1})
	}
	for i := range 40 { // several values a bucket, each more than once
		evs = append(evs, codecEvent{user: "multi", at: 7*day + int64(i/3*97), msg: fmt.Sprintf("m%d", i), v: []string{"a", "b", "c"}[i%3], rev: float64(i)})
	}
	for i := range 10 { // one value a bucket, some twice
		evs = append(evs, codecEvent{user: "twice", at: 3*day + int64(i/2*600), msg: fmt.Sprintf("t%d", i), v: "music", rev: 2})
	}
	for i := range 10 { // numbers only
		evs = append(evs, codecEvent{user: "nums", at: 8*day - int64(i*300), msg: fmt.Sprintf("n%d", i), v: float64(i), rev: 2})
	}
	feed(en, profiles, evs)
	now := time.Date(2026, 1, 9, 12, 0, 0, 0, time.UTC)
	sawOver, sawMulti, sawN, sawEmpty := false, false, false, false
	for _, p := range profiles {
		en.Finish(p, now)
		st := stateOf(t, en, p)
		for _, g := range st.aggs {
			if g == nil {
				continue
			}
			sawOver = sawOver || slicesContains(g.B.O, true)
			for _, q := range g.B.Q {
				sawMulti = sawMulti || len(q) > 1
				sawN = sawN || (len(q) == 1 && q[0].N > 1)
			}
		}
		checkV3(t, en, st)
		// Empty bucket sets beside full ones: a bucket emptied by hand.
		for _, g := range st.aggs {
			if g != nil && len(g.B.Q) > 1 {
				g.B.Q[0] = nil
				sawEmpty = true
			}
		}
		_, v3 := checkV3(t, en, st)
		if p.ID == "twice" && !bytes.Contains(v3, []byte(`"qn":[`)) {
			t.Errorf("counts above 1 not written: %s", v3)
		}
		if p.ID == "multi" && !bytes.Contains(v3, []byte(`"bq":[{"x":[`)) {
			t.Errorf("sets of several values not written by position: %s", v3)
		}
		if p.ID == "nums" && bytes.Contains(v3, []byte(`"bt":`)) {
			t.Errorf("numbers written as strings: %s", v3)
		}
	}
	if !sawOver || !sawMulti || !sawN || !sawEmpty {
		t.Fatalf("shapes not made: over %v, multi %v, counts %v, empty %v", sawOver, sawMulti, sawN, sawEmpty)
	}
}

func slicesContains(bs []bool, b bool) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// A version 2 state written before version 3 (by the benchmark's 20
// definitions) is still read, and written in version 2 the same, byte for
// byte; in version 3 it is smaller and reads back the same.
func TestStateV2StillRead(t *testing.T) {
	en, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defs := BenchDefinitions()
	if err := en.SetDefinitions(defs); err != nil {
		t.Fatal(err)
	}
	st := decodeState([]byte(goldenV2), en.cfg.Lifecycle)
	if len(st.Aggs) != 20 || len(st.Aggs["ct17"].B.Q) == 0 {
		t.Fatalf("version 2 state not read: %+v", st)
	}
	st.align(en.defs.Load())
	v2, v3 := checkV3(t, en, st)
	if string(v2) != goldenV2 {
		t.Fatalf("version 2 written differently\n%s\nwant\n%s", v2, goldenV2)
	}
	if len(v3) >= len(v2)*4/5 {
		t.Errorf("version 3 is %d bytes, version 2 %d", len(v3), len(v2))
	}
	t.Logf("version 2: %d bytes, version 3: %d bytes\n%s", len(v2), len(v3), v3)
}

// Broken version 3 states are refused, not misread.
func TestStateV3Inconsistent(t *testing.T) {
	for _, raw := range []string{
		`{"v":3,"c":{"x":[1],"n":[1],"e":[0]},"e":[1],"m":["a"],"t":["a"]}`,
		`{"v":3,"c":{"k":["a"],"x":[0],"n":[1],"e":[0]},"e":[1],"m":["a"],"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1,1],"qk":[0]}},"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1,1],"qk":[0,-2]}},"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1],"qk":[0],"qn":[2]}},"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1],"qe":[0]}},"e":[1],"m":["a"],"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1],"bt":[0],"bv":["a"],"be":[1]}},"e":[1],"m":["a"],"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1],"bt":[3],"be":[1]}},"e":[1],"m":["a"],"t":["a"]}`,
		`{"v":3,"a":{"x":{"w":10,"k":[1],"qk":[0],"bq":[{"x":[0]}]}},"t":["a"]}`,
	} {
		if _, err := decodeV2([]byte(raw)); err == nil {
			t.Errorf("read %s", raw)
		}
	}
	// Version 2 ignores version 3's fields, as it always has.
	d, err := decodeV2([]byte(`{"v":2,"c":{"k":["a"],"x":[7],"n":[1],"e":[0]},"e":[1],"m":["a"],"t":["b"]}`))
	if err != nil || d.Cats["a"] == nil || len(d.Cats) != 1 {
		t.Fatalf("version 2 read as %+v, %v", d, err)
	}
}

// goldenV2 is a state written by the version 2 encoder.
const goldenV2 = `{"v":2,"e":[1767225780000000,120000000000,120000000000,120000000000,1920000000000,-1800000000000,120000000000,240000000000,120000000000,240000000000,120000000000,240000000000,120000000000,240000000000,120000000000],"m":["b0000003","b0002003","b0004003","b0006003","b0038003","b0008003","b0010003","b0014003","b0016003","b0020003","b0022003","b0026003","b0028003","b0032003","b0034003"],"b":{"n":20,"s":2070000000,"e":[0,1,2,3],"ea":[3500000,203500000,103500000,3500000],"l":4,"la":203500000},"s":[1767225780000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0,120000000000,0],"c":{"k":["books"],"n":[20],"e":[4]},"ch":{"k":["web"],"n":[20],"e":[4]},"a":{"ct00":{"n":20,"l":5},"ct01":{"n":20,"s":2070000000,"c":20,"l":5},"ct02":{"n":20,"s":2070000000,"c":20,"l":5},"ct03":{"n":20,"l":5,"lo":{"v":3.5,"e":0}},"ct04":{"n":20,"l":5,"hi":{"v":203.5,"e":1}},"ct05":{"n":20,"l":5,"f":{"v":"books","e":0}},"ct06":{"n":20,"l":5,"la":{"v":"books","e":4}},"ct07":{"n":20,"l":5,"q":{"k":["books"],"n":[20],"e":[4]}},"ct08":{"n":20,"l":5,"q":{"k":["books"]}},"ct09":{"n":20,"l":5,"q":{"k":["books"]}},"ct10":{"l":5,"w":9450000000,"k":[187211,12,26],"bn":[1,1,1]},"ct11":{"l":5,"w":18900000000,"k":[93567,6,13,6,13,6,13],"bs":[203500000,103500000,203500000,103500000,203500000,103500000,203500000]},"ct12":{"l":5,"w":28350000000,"k":[62357,8,4,9,4,9,4,8,4,9],"bs":[103500000,203500000,103500000,203500000,103500000,203500000,103500000,203500000,103500000,203500000],"bc":[1,1,1,1,1,1,1,1,1,1]},"ct13":{"w":37800000000,"k":[46755,3,6,3,7,3,6,3,7,3,6,3,7],"bv":[203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5],"be":[2,3,6,7,8,9,10,11,12,13,14,15,5]},"ct14":{"w":47250000000,"k":[37404,2,5,3,5,2,6,2,5,3,5,2,5],"bv":[203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5,103.5,203.5],"be":[2,3,6,7,8,9,10,11,12,13,14,15,5]},"ct15":{"w":56700000000,"k":[31170,2,4,2,4,2,5,2,4,2,4,2,5],"bv":["books","books","books","books","books","books","books","books","books","books","books","books","books"],"be":[2,3,6,7,8,9,10,11,12,13,14,15,5]},"ct16":{"w":66150000000,"k":[26717,2,3,2,4,1,4,2,4,1,4,2,3],"bv":["books","books","books","books","books","books","books","books","books","books","books","books","books"],"be":[2,3,6,7,8,9,10,11,12,13,14,15,5]},"ct17":{"w":75600000000,"k":[23377,2,3,1,4,1,3,2,3,2,3,1,4],"bq":[{"k":["books"],"n":[1],"e":[1]},{"k":["books"],"n":[1],"e":[2]},{"k":["books"],"n":[1],"e":[5]},{"k":["books"],"n":[1],"e":[6]},{"k":["books"],"n":[1],"e":[7]},{"k":["books"],"n":[1],"e":[8]},{"k":["books"],"n":[1],"e":[9]},{"k":["books"],"n":[1],"e":[10]},{"k":["books"],"n":[1],"e":[11]},{"k":["books"],"n":[1],"e":[12]},{"k":["books"],"n":[1],"e":[13]},{"k":["books"],"n":[1],"e":[14]},{"k":["books"],"n":[1],"e":[4]}]},"ct18":{"l":5,"w":85050000000,"k":[20780,1,3,1,3,1,3,2,3,1,3,1,3],"bq":[{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]}]},"ct19":{"l":5,"w":94500000000,"k":[18702,1,2,2,2,1,3,1,3,1,3,1,2],"bq":[{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]},{"k":["books"]}]}}}`

// Any bytes in the compact formats are read or refused, never a panic,
// and what is read is a state the enricher can use: decodeState gives
// the same.
func FuzzStateCompact(f *testing.F) {
	f.Add([]byte(goldenV2))
	f.Add([]byte(`{"v":3,"e":[5],"m":["a"],"t":["x","y"],"c":{"x":[1,0],"n":[2,1],"e":[0,0]},"a":{"u":{"w":10,"k":[1,2],"qk":[0,-1],"qn":[3,0],"qe":[0,0]},"f":{"w":10,"k":[1],"bt":[1],"be":[1]}}}`))
	f.Add([]byte(`{"v":3,"a":{"x":{"w":10,"k":[1,1],"bq":[{"x":[0,1]},{}],"bo":[0]}},"t":["a","b"]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := decodeV2(raw)
		if err != nil {
			return
		}
		if !isV2(raw) {
			return
		}
		if again := decodeState(raw, DefaultConfig().Lifecycle); !reflect.DeepEqual(again, st) {
			t.Fatalf("decodeState and decodeV2 disagree on %s", raw)
		}
	})
}

// A window that has emptied is not written: it reads back as no aggregate,
// and the profile's computed traits come out the same.
func TestStateEmptyWindowsLeftOut(t *testing.T) {
	en := codecDefs(t)
	profiles := map[string]*portrait.Profile{}
	feed(en, profiles, []codecEvent{{user: "u", at: 0, msg: "m1", v: "a", rev: 5}, {user: "u", at: 60, msg: "m2", v: 2.0, rev: 7}})
	p := profiles["u"]
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	en.Finish(p, now.Add(time.Hour))
	if !bytes.Contains(p.State[StateKey], []byte(`"count_revenue_7d":`)) {
		t.Fatalf("a window with events not written: %s", p.State[StateKey])
	}
	// Thirty days on, both windows are empty; the all-time traits stay.
	later := now.Add(30 * 24 * time.Hour)
	en.Finish(p, later)
	raw := p.State[StateKey]
	if bytes.Contains(raw, []byte(`_1d"`)) || bytes.Contains(raw, []byte(`_7d"`)) || !bytes.Contains(raw, []byte(`"count_revenue_":`)) {
		t.Fatalf("empty windows written, or all-time ones left out: %s", raw)
	}
	// Another enricher reads the state afresh: the same traits.
	fresh := codecDefs(t)
	q := &portrait.Profile{ID: p.ID, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen, Traits: map[string]portrait.Trait{}, State: map[string]json.RawMessage{StateKey: raw}}
	fresh.Finish(q, later)
	if !reflect.DeepEqual(q.Traits, p.Traits) {
		t.Fatalf("traits from the state read back differ\n got %v\nwant %v", q.Traits, p.Traits)
	}
	if !bytes.Equal(q.State[StateKey], raw) {
		t.Fatalf("state written differently after reading\n got %s\nwant %s", q.State[StateKey], raw)
	}
}
