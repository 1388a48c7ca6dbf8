package demo_test

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/portrait-cdp/portrait/demo"
)

// The demo gives the business map something to show: consults on several
// channels, needs surveys, and after-sales complaints in Chinese and in
// English, each after an order of the same customer.
func TestDemoJourneys(t *testing.T) {
	ds := demo.Generate(1, 800, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	consults, stated, zh, en := 0, 0, 0, 0
	channels := map[string]bool{}
	firstOrder := map[string]string{}
	for _, e := range ds.Events {
		props, _ := e["properties"].(map[string]any)
		user, _ := e["userId"].(string)
		ts := e["timestamp"].(string)
		switch e["event"] {
		case "Order Completed":
			if _, ok := firstOrder[user]; !ok && user != "" {
				firstOrder[user] = ts
			}
		case "Consultation Requested":
			consults++
			channels[props["channel"].(string)] = true
		case "Survey Completed":
			if props["survey"] == "needs" {
				stated++
			}
		case "Ticket Opened":
			d, ok := props["description"].(string)
			if !ok {
				continue // the older tickets carry a topic only
			}
			if first, ok := firstOrder[user]; !ok || first > ts {
				t.Errorf("complaint %q of %s before any order", d, user)
			}
			if strings.IndexFunc(d, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0 {
				zh++
			} else {
				en++
			}
		}
	}
	t.Logf("consults %d, needs surveys %d, complaints zh %d en %d", consults, stated, zh, en)
	if consults < 250 || stated < 150 || zh < 10 || en < 5 || len(channels) < 4 {
		t.Errorf("consults %d on %v, needs surveys %d, complaints zh %d en %d", consults, channels, stated, zh, en)
	}
	again := demo.Generate(1, 800, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	if len(again.Events) != len(ds.Events) || again.Events[len(ds.Events)/2]["messageId"] != ds.Events[len(ds.Events)/2]["messageId"] {
		t.Error("the demo is not deterministic")
	}
}
