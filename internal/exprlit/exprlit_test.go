package exprlit_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/internal/exprlit"
)

func pairs(t *testing.T, src string) []string {
	t.Helper()
	lits, err := exprlit.Find(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	out := []string{}
	for _, l := range lits {
		out = append(out, l.Field+"="+l.Value)
	}
	return out
}

func TestFind(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string
	}{
		{`traits.phone startsWith "+86138"`, []string{"phone=+86138"}},
		{`id_number == "110101199003071234"`, []string{"id_number=110101199003071234"}},
		{`"110101199003071234" == traits["id_number"]`, []string{"id_number=110101199003071234"}},
		{`traits.phone in ["13800138000", '13900139000']`, []string{"phone=13800138000", "phone=13900139000"}},
		{`province == "北京" && phone endsWith "8000"`, []string{"province=北京", "phone=8000"}},
		{`hasPrefix(phone, "138") || indexOf(lower(email), "zhang") >= 0`, []string{"phone=138", "email=zhang"}},
		{`any(traits.phones, {# startsWith "138"})`, []string{"phones=138"}},
		{`any(contacts, {#.phone == "13800138000"})`, []string{"contacts=13800138000", "phone=13800138000"}},
		{`let p = traits.phone; p == "1380"`, []string{"phone=1380"}},
		{`let x = "13800138000"; let y = x; phone == y`, []string{"phone=13800138000"}},
		{`$env["id_number"] == "1101"`, []string{"id_number=1101"}},
		{`properties.contact.phone contains "138"`, []string{"contact=138", "phone=138"}},
		{`phone == 13800138000 || credit == -5.5`, []string{"phone=13800138000", "credit=-5.5"}},
		{`phone == (vip ? "1" : "2")`, []string{"phone=1", "phone=2"}},
		{`phone in 13800000000..13899999999 || age in 20..30`, []string{"phone=13800000000", "phone=13899999999", "age=20", "age=30"}},
		// no literal compared with a field
		{`len(phone) == 11 && revenue > 1000.5`, []string{"revenue=1000.5"}},
		{`event_count("Order Completed", "30d") >= 2`, []string{}},
		{`phone != nil`, []string{}},
	} {
		if got := pairs(t, c.src); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.src, got, c.want)
		}
	}
}

func TestFields(t *testing.T) {
	got, err := exprlit.Fields(`$env["id_number"] != "" && traits.contact.phone == "1" && any(xs, {#.email == ""}) && f(revenue)`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"contact", "email", "id_number", "phone", "revenue", "xs"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// hide masks the literals of phone and id_number, as a clearance below
// confidential would.
func hide(l exprlit.Literal) (string, bool) {
	switch l.Field {
	case "phone":
		return "138****8000", true
	case "id_number":
		return "1101**********1234", true
	}
	return "", false
}

func TestMask(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`traits.phone startsWith "+86138" && province == "北京"`, `traits.phone startsWith "138****8000" && province == "北京"`},
		{"城市 == \"上海\" ||\n  id_number == `110101199003071234`", "城市 == \"上海\" ||\n  id_number == \"1101**********1234\""},
		// an escaped literal is replaced whole
		{`province == "北京" && phone == "\u0031\u0033800138000"`, `province == "北京" && phone == "138****8000"`},
		{`phone in ['13800138000', "13900139000"] && phone == -1`, `phone in ["138****8000", "138****8000"] && phone == "138****8000"`},
		{`revenue > 100`, `revenue > 100`},
		{`let x = "13800138000"; phone == x`, `let x = "138****8000"; phone == x`},
	} {
		got, ok := exprlit.Mask(c.src, hide)
		if !ok || got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.src, got, c.want)
		}
		if strings.Contains(got, "0013") || strings.Contains(got, "19900307") {
			t.Errorf("%s: a hidden value is left in %s", c.src, got)
		}
	}
	if got, ok := exprlit.Mask(`phone ==`, hide); ok || got != `phone ==` {
		t.Errorf("an invalid expression: got %q, %v", got, ok)
	}
}

func ExampleMask() {
	out, _ := exprlit.Mask(`traits.id_number == "110101199003071234" && traits.age > 30`, hide)
	fmt.Println(out)
	// Output: traits.id_number == "1101**********1234" && traits.age > 30
}

// TestMaskerPerHiddenSet: a Masker's remembered texts are per set of
// hidden fields: the same rule read with the phone hidden, the ID hidden,
// both and neither gives four answers, the same again when asked twice;
// a number is masked or left by the mask function (a threshold is left).
func TestMaskerPerHiddenSet(t *testing.T) {
	m := exprlit.NewMasker(func(l exprlit.Literal) (string, bool) {
		if l.Number && l.Field == "revenue" {
			return "", false
		}
		return hide(l)
	})
	const src = `phone == "13800138000" && id_number == "110101199003071234" && revenue > 1000`
	for round := 0; round < 2; round++ {
		for _, c := range []struct {
			hidden []string
			want   string
		}{
			{[]string{"phone"}, `phone == "138****8000" && id_number == "110101199003071234" && revenue > 1000`},
			{[]string{"id_number"}, `phone == "13800138000" && id_number == "1101**********1234" && revenue > 1000`},
			{[]string{"phone", "id_number", "revenue"}, `phone == "138****8000" && id_number == "1101**********1234" && revenue > 1000`},
			{nil, src},
		} {
			got, ok := m.Mask(src, func(f string) bool { return slices.Contains(c.hidden, f) })
			if !ok || got != c.want {
				t.Errorf("round %d, hidden %v:\n got %s\nwant %s", round, c.hidden, got, c.want)
			}
		}
	}
}
