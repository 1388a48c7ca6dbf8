package tag

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait/traits"
)

// The fast path must agree with the VM whenever it answers, over random
// rules and random profiles: missing traits, nil, numbers (NaN, ±0, ±Inf),
// strings, booleans, lists, and values of another type than declared.
func TestFastAgreesWithVM(t *testing.T) {
	types := map[string]string{"n1": traits.TypeNumber, "n2": traits.TypeNumber, "s1": traits.TypeString,
		"s2": traits.TypeString, "any": traits.TypeAny, "l": traits.TypeList, "tm": traits.TypeTime}
	names := []string{"n1", "n2", "s1", "s2", "any", "l", "tm", "event_count"}
	ops := []string{"==", "!=", "<", "<=", ">", ">="}
	lits := []string{"0", "1", "-3", "2.5", "100", "1e300", "9007199254740993", `"books"`, `""`, `"1"`, "true", "nil"}
	values := []any{nil, 0.0, math.Copysign(0, -1), 1.0, 2.5, -3.0, 100.0, 1e300, math.NaN(), math.Inf(1), math.Inf(-1),
		"books", "", "1", "loyal", true, false, []any{"books"}, map[string]any{"a": 1.0}, 1, int64(100)}
	r := rand.New(rand.NewPCG(1, 2))
	leaf := func() string {
		return fmt.Sprintf("%s %s %s", names[r.IntN(len(names))], ops[r.IntN(len(ops))], lits[r.IntN(len(lits))])
	}
	var rule func(depth int) string
	rule = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return leaf()
		}
		op := []string{"&&", "||", "and", "or"}[r.IntN(4)]
		x := fmt.Sprintf("%s %s %s", rule(depth-1), op, rule(depth-1))
		if r.IntN(3) == 0 {
			x = "(" + x + ")"
		}
		return x
	}
	var m vm.VM
	fastOnes, answered, answeredMissing := 0, 0, 0
	for i := range 20000 {
		src := rule(3)
		c, err := Compile(Definition{Name: fmt.Sprint("t", i), Dimension: "value", Expression: src}, types)
		if err != nil {
			continue
		}
		e := NewEnricher()
		e.SetTags([]*Compiled{c}, types)
		s := e.tags.Load()
		f := s.fast[0]
		if f == nil {
			continue
		}
		fastOnes++
		for range 30 {
			vals := make([]any, len(s.refs))
			env := map[string]any{}
			missing := false
			for j, name := range s.refs {
				if r.IntN(5) > 0 {
					vals[j] = values[r.IntN(len(values))]
				}
				env[name] = vals[j]
				missing = missing || vals[j] == nil
			}
			res, err := m.Run(c.program, env)
			want, _ := res.(bool)
			want = want && err == nil
			if o := f(vals); o != unknown {
				got := o == isTrue
				answered++
				if missing {
					answeredMissing++
				}
				if o == fails && err == nil {
					t.Fatalf("%s with %v: fast says the VM fails, the VM gave %v", src, env, res)
				}
				if got != want {
					t.Fatalf("%s with %v: fast %v, VM %v (%v)", src, env, got, want, err)
				}
			}
		}
	}
	if fastOnes < 1000 || answered < 10000 || answeredMissing < 2000 {
		t.Errorf("fast path taken for %d rules, answered %d times (%d with a trait missing)", fastOnes, answered, answeredMissing)
	}
}
