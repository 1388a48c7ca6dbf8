package account_test

import (
	"strings"
	"testing"

	"github.com/portrait-cdp/portrait/account"
)

// TestRefusalsNameNoValue: a refused USCC or domain gives a reason that
// names the field and the rule, never the value (issue 15): an issue's
// reason and an API error are shown where the value may not be.
func TestRefusalsNameNoValue(t *testing.T) {
	const badUSCC = "914403001922038217" // Huawei's with the check character changed
	const mailbox = "zhang.san_13912345678@mail example.com"
	var s seq
	m := newModel()
	m.Apply(s.ev("group", "u1", "g1", "", t0, map[string]any{"uscc": badUSCC}, nil))
	is := m.TakeIssues()
	if len(is) != 1 || !strings.Contains(is[0].Reason, "uscc") || !strings.Contains(is[0].Reason, "check character") || strings.Contains(is[0].Reason, badUSCC) {
		t.Errorf("issues %+v: want a uscc check-character reason without the code", is)
	}
	for name, ed := range map[string]*account.Edit{
		"uscc key":   {Kind: account.EditUpsert, By: "admin", Keys: []account.Key{{Type: account.KeyUSCC, Value: badUSCC}}},
		"uscc trait": {Kind: account.EditUpsert, By: "admin", Keys: []account.Key{{Type: account.KeyCRM, Value: "c1"}}, Traits: map[string]any{"uscc": badUSCC}},
	} {
		err := m.Check(ed)
		if err == nil || !strings.Contains(err.Error(), "uscc") || !strings.Contains(err.Error(), "check character") || strings.Contains(err.Error(), badUSCC) {
			t.Errorf("%s: error %v, want the rule without the code", name, err)
		}
	}
	for _, raw := range []string{mailbox, "13912345678", "zhang-san_110101199003077777.example.com"} {
		_, err := account.NormalizeDomain(raw)
		if err == nil || !strings.Contains(err.Error(), "domain") {
			t.Fatalf("%q: error %v, want a refusal", raw, err)
		}
		for _, v := range []string{"zhang", "13912345678", "110101199003077777"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%q: error %q shows %q", raw, err, v)
			}
		}
	}
}
