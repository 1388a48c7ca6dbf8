package traits

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
)

// quick must agree with the VM whenever it answers.
func TestQuickFilterAgreesWithVM(t *testing.T) {
	values := []any{nil, 0.0, math.Copysign(0, -1), 1.0, 99.5, 100.0, 100.5, -3.0, 1e300, math.NaN(), math.Inf(1), math.Inf(-1),
		"", "pro", "100", "b", true, false, []any{1.0}, map[string]any{"a": 1.0}, 100, int64(100), json.Number("100")}
	var filters []string
	for _, op := range []string{"==", "!=", "<", "<=", ">", ">="} {
		for _, lit := range []string{"100", "100.0", "99.5", "0", "-3", `"pro"`, `"100"`, "9007199254740993"} {
			filters = append(filters, fmt.Sprintf("properties.x %s %s", op, lit), fmt.Sprintf(`properties["x"] %s %s`, op, lit))
		}
	}
	filters = append(filters, "properties?.x > 1", "properties.x > 1 && true", "1 < properties.x", "properties.x.y == 1")
	var m vm.VM
	quickOnes := 0
	for _, f := range filters {
		c, err := Definition{Name: "t", Aggregate: "count", Filter: f}.compile()
		if err != nil {
			continue
		}
		if c.quick != nil {
			quickOnes++
		}
		for _, v := range values {
			props := map[string]any{"x": v}
			env := map[string]any{"event": "e", "type": "track", "source": "s", "properties": props}
			res, err := m.Run(c.filter, env)
			want, _ := res.(bool)
			want = want && err == nil
			if c.quick == nil {
				continue
			}
			if got, known := c.quick(props); known && got != want {
				t.Errorf("%s with x = %#v: quick %v, VM %v", f, v, got, want)
			}
		}
	}
	if quickOnes < 50 {
		t.Errorf("only %d filters have a quick path", quickOnes)
	}
}

// States written before windows were bucketed kept every event of the
// window; they are read into buckets.
func TestLegacyWindowState(t *testing.T) {
	e, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetDefinitions([]Definition{{Name: "w", Aggregate: "sum", Property: "revenue", Window: "640s"},
		{Name: "hi", Aggregate: "max", Property: "revenue", Window: "640s"}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	us := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMicro() }
	raw := fmt.Sprintf(`{"a":{"w":{"w":[{"v":1,"t":%d,"m":"a"},{"v":2,"t":%d,"m":"b"},{"v":4,"t":%d,"m":"c"}]},`+
		`"hi":{"w":[{"v":1,"t":%d,"m":"a"},{"v":4,"t":%d,"m":"c"}]}}}`, us(0), us(12), us(15), us(0), us(15))
	p := &portrait.Profile{State: map[string]json.RawMessage{StateKey: json.RawMessage(raw)}}
	e.Finish(p, t0.Add(650*time.Second))
	if got := p.Traits["w"].Value; got != 6.0 {
		t.Errorf("w = %v, want 6 (the events from 10s on)", got)
	}
	if got := p.Traits["hi"]; got.Value != 4.0 || got.MessageID != "c" {
		t.Errorf("hi = %+v, want 4 from c", got)
	}
	// Written again in the new format, and read back the same.
	q := &portrait.Profile{State: map[string]json.RawMessage{StateKey: append([]byte(nil), p.State[StateKey]...)}}
	e.Finish(q, t0.Add(650*time.Second))
	if q.Traits["w"].Value != 6.0 || string(q.State[StateKey]) != string(p.State[StateKey]) {
		t.Errorf("re-read: w = %v, state %s, want %s", q.Traits["w"].Value, q.State[StateKey], p.State[StateKey])
	}
}

// However many events arrive, a window keeps at most 65 buckets.
func TestWindowStateIsBounded(t *testing.T) {
	c, err := Definition{Name: "w", Aggregate: "most_frequent", Property: "x", Window: "1h"}.compile()
	if err != nil {
		t.Fatal(err)
	}
	g := &agg{W: c.width}
	for i := range 100_000 {
		// Out of order: every 7th event is a day late.
		at := int64(i) * 1e6
		if i%7 == 0 {
			at -= 86400e6
		}
		g.addWindowed(c, fmt.Sprint(i%3), at, fmt.Sprint(i))
		if len(g.B.At) > 65 {
			t.Fatalf("%d buckets after %d events", len(g.B.At), i+1)
		}
	}
}

// States written with buckets that each kept their latest event (lt, lm)
// are read, and written again in the compact format, which reads back
// the same.
func TestLegacyBucketState(t *testing.T) {
	e, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetDefinitions([]Definition{{Name: "w", Aggregate: "sum", Property: "revenue", Window: "640s"},
		{Name: "n", Aggregate: "count", Window: "640s"}, {Name: "hi", Aggregate: "max", Property: "revenue", Window: "640s"},
		{Name: "set", Aggregate: "unique", Property: "category", Window: "640s"}, {Name: "all", Aggregate: "count"}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	us := func(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixMicro() }
	raw := fmt.Sprintf(`{"s":[[%d,%d]],"a":{"w":{"bw":10000000,"k":[{"s":3000000,"lt":%d,"lm":"b"},{"s":4000000,"lt":%d,"lm":"c"}]},`+
		`"n":{"bw":10000000,"k":[{"n":2,"lt":%d,"lm":"b"},{"n":1,"lt":%d,"lm":"c"}]},`+
		`"hi":{"bw":10000000,"k":[{"x":{"v":2,"t":%d,"m":"b"}},{"x":{"v":4,"t":%d,"m":"c"}}]},`+
		`"set":{"bw":10000000,"k":[{"q":{"x":{"n":1,"t":%d,"m":"a"},"y":{"n":1,"t":%d,"m":"b"}},"lt":%d,"lm":"b"},{"q":{"x":{"n":1,"t":%d,"m":"c"}},"lt":%d,"lm":"c"}]},`+
		`"all":{"n":3,"lt":%d,"lm":"c"}}}`,
		us(0), us(15), us(5), us(15), us(5), us(15), us(5), us(15), us(0), us(5), us(5), us(15), us(15), us(15))
	p := &portrait.Profile{State: map[string]json.RawMessage{StateKey: json.RawMessage(raw)}}
	p.State[StateKey] = json.RawMessage(raw)
	e.state(p, true) // as if an event came: the state is written again
	e.Finish(p, t0.Add(645*time.Second))
	check := func(p *portrait.Profile) {
		t.Helper()
		for name, want := range map[string]any{"w": 7.0, "n": 3.0, "hi": 4.0, "set": []any{"x", "y"}, "all": 3.0, "sessions": 1.0} {
			if got := p.Traits[name].Value; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		if got := p.Traits["w"]; got.MessageID != "c" || !got.Time.Equal(t0.Add(15*time.Second)) {
			t.Errorf("w from %s at %v, want c at 15s", got.MessageID, got.Time)
		}
	}
	check(p)
	if !isV2(p.State[StateKey]) {
		t.Fatalf("written as %s", p.State[StateKey])
	}
	q := &portrait.Profile{State: map[string]json.RawMessage{StateKey: append([]byte(nil), p.State[StateKey]...)}}
	e.state(q, true)
	e.Finish(q, t0.Add(645*time.Second))
	check(q)
	if string(q.State[StateKey]) != string(p.State[StateKey]) {
		t.Errorf("re-read state %s, want %s", q.State[StateKey], p.State[StateKey])
	}
	// As of 655s the bucket [0, 10) has gone.
	e.Finish(q, t0.Add(655*time.Second))
	if got := q.Traits["w"].Value; got != 4.0 {
		t.Errorf("w as of 655s = %v, want 4", got)
	}
}
