package demo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/demo"
)

// Company names never repeat a syllable (华信华信科技有限公司) and differ
// from account to account.
func TestCompanyNames(t *testing.T) {
	ds := demo.Generate(1, 75*40, time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC))
	seen := map[string]bool{}
	for _, e := range ds.Events {
		tr, _ := e["traits"].(map[string]any)
		if e["type"] != "group" || tr == nil {
			continue
		}
		name := []rune(tr["name"].(string))
		if string(name[:2]) == string(name[2:4]) {
			t.Errorf("company %s repeats its syllable", string(name))
		}
		if seen[string(name)] {
			t.Errorf("two accounts named %s", string(name))
		}
		seen[string(name)] = true
	}
	if len(seen) != ds.Accounts {
		t.Errorf("%d company names for %d accounts", len(seen), ds.Accounts)
	}
}

// Every demo event comes from one of the demo's sources, and every source
// sends something: provenance names the real system.
func TestEverySourceSends(t *testing.T) {
	ds := demo.Generate(3, 600, time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC))
	known := map[string]bool{}
	for _, s := range demo.Sources {
		known[s] = true
	}
	count := map[string]int{}
	for _, e := range ds.Events {
		s := demo.SourceOf(e)
		if !known[s] {
			t.Fatalf("event %v from unknown source %q", e, s)
		}
		count[s]++
	}
	for _, s := range demo.Sources {
		if count[s] == 0 {
			t.Errorf("source %s sends nothing (%v)", s, count)
		}
	}
	for _, c := range []struct {
		e    map[string]any
		want string
	}{
		{map[string]any{"type": "track", "event": "Survey Completed"}, "survey"},
		{map[string]any{"type": "track", "event": "Order Completed", "properties": map[string]any{"channel": "store"}}, "pos"},
		{map[string]any{"type": "page", "context": map[string]any{"library": map[string]any{"name": "analytics.js"}}}, "web"},
		{map[string]any{"type": "track", "event": "Product Viewed", "context": map[string]any{"library": map[string]any{"name": "analytics-ios"}}}, "app"},
		{map[string]any{"type": "group", "groupId": "acct-001"}, "crm"},
	} {
		if got := demo.SourceOf(c.e); got != c.want {
			t.Errorf("%v: %s, want %s", c.e, got, c.want)
		}
	}
}

// No two people (customers, or key persons of the corporate accounts)
// share an e-mail or a phone: the demo's only intended
// duplicates are the store buyers joined by phone (Dataset.Duplicates),
// which carry no e-mail. Before, about ten customers of 3,000 shared an
// e-mail with another, which merged them or posed as duplicates.
func TestCustomersShareNoIdentifier(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		ds := demo.Generate(seed, 3000, time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC))
		owner := map[string]string{}
		customers := map[string]bool{}
		for _, e := range ds.Events {
			tr, _ := e["traits"].(map[string]any)
			user, _ := e["userId"].(string)
			if e["type"] != "identify" || tr == nil || user == "" {
				continue
			}
			if !strings.HasPrefix(user, "kp-") { // key persons of corporate accounts are not retail customers
				customers[user] = true
			}
			for _, k := range []string{"email", "phone"} {
				v, _ := tr[k].(string)
				if v == "" {
					continue
				}
				v = strings.Join(strings.Fields(strings.ToLower(v)), "")
				if o, ok := owner[k+" "+v]; ok && o != user {
					t.Errorf("seed %d: %s and %s share the %s %s", seed, o, user, k, v)
				}
				owner[k+" "+v] = user
			}
		}
		if len(customers) != 3000 {
			t.Errorf("seed %d: %d customers identified, want 3000", seed, len(customers))
		}
	}
}
