package demo_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait/demo"
	"github.com/portrait-cdp/portrait/tracking"
)

// Every generated event is valid and dated inside the demo's history, and
// buying looks like a shop's: many buyers order once, a few often.
func TestDemoPurchases(t *testing.T) {
	asOf := time.Date(2026, 12, 5, 23, 59, 59, 0, time.UTC)
	ds := demo.Generate(1, 3000, asOf)
	p := tracking.New()
	for i := 0; i < len(ds.Events); i += 500 {
		body, _ := json.Marshal(map[string]any{"batch": ds.Events[i:min(i+500, len(ds.Events))]})
		res, err := p.ParseBatch(body, "demo", asOf)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Rejected {
			t.Errorf("event %d rejected: %s", i+r.Index, r.Reason)
		}
	}
	orders := map[string]int{}
	for _, e := range ds.Events {
		ts, err := time.Parse("2006-01-02T15:04:05.000Z", e["timestamp"].(string))
		if err != nil || ts.After(asOf) || ts.Before(asOf.AddDate(-2, 0, 0)) {
			t.Fatalf("event dated %v outside the history: %v", e["timestamp"], err)
		}
		if e["event"] == "Order Completed" {
			u, _ := e["userId"].(string)
			orders[u]++
		}
	}
	var once, many int
	for _, n := range orders {
		switch {
		case n == 1:
			once++
		case n >= 10:
			many++
		}
	}
	t.Logf("%d buyers of 3,000: %d ordered once, %d ten times or more", len(orders), once, many)
	if share := float64(once) / float64(len(orders)); share < 0.3 || share > 0.7 || many == 0 || many > len(orders)/10 {
		t.Errorf("%d buyers, %d once, %d ten or more times: not the shape of a shop's customers", len(orders), once, many)
	}
}
