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
