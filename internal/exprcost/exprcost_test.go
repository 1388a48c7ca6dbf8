package exprcost_test

import (
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/internal/exprcost"
)

func TestCostBound(t *testing.T) {
	for _, c := range []struct {
		src string
		ok  bool
	}{
		// Real rules pass.
		{`age >= 30 && city == "杭州市"`, true},
		{`any(tags_list, {# == "vip"}) && total_spent > 1000`, true},
		{`all(1..999, {# > 0})`, true},
		{`filter(orders, {.amount > 100}) | len() > 3`, true},
		{`properties.revenue > 100`, true},
		// The probe: nested loops over ranges.
		{`all(1..999, {all(1..999, {all(1..999, {true})})})`, false},
		{`all(1..999, {any(1..999, {# == 5})})`, false},
		{`any(1..100000000, {# == 1})`, false},
		{`len(1..1000000000) > 0`, false},
		{`repeat("x", 1000000000) != ""`, false},
		{`count(1..x, {true}) > 0`, false}, // a computed bound counts as huge
		{`map(filter(1..999, {true}), {all(1..999, {true})}) != nil`, false},
		// Memory rather than steps: an accumulator that doubles at each
		// element (probed: accepted as a tag, one profile's evaluation
		// built a 64 MB string at 1..26; 1..34 is 16 GB).
		{`len(reduce(1..34, #acc + #acc, "x")) > 0`, false},
		{`len(reduce(1..26, #acc + #acc, "x")) > 0`, false},
		{`len(reduce(1..40, repeat(#acc, 2), "x")) > 0`, false},
		{`len(reduce(1..30, concat(#acc, #acc), [1])) > 0`, false},
		{`len(reduce(1..x, #acc + #acc, "x")) > 0`, false},
		// An accumulator that grows by a step, or doubles a few times, is fine.
		{`reduce(1..999, #acc + #, 0) > 10`, true},
		{`len(reduce(1..100, #acc + "x", "")) > 10`, true},
		{`len(reduce(1..10, #acc + #acc, "x")) > 10`, true},
	} {
		err := exprcost.Check(c.src, exprcost.Max)
		if (err == nil) != c.ok {
			t.Errorf("%s: ok=%v, err=%v", c.src, c.ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), "over the limit") {
			t.Errorf("%s: unclear refusal: %v", c.src, err)
		}
	}
}
