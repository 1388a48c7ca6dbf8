package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/demo"
)

// GET /v1/accounts/lookalike: from the won accounts by default, or from
// listed ids and keys; seeds are never returned, each account carries its
// score and reasons, the answer its held-out evaluation; bad seeds and
// parameters are refused with the reason.
func TestAccountLookalikeOverHTTP(t *testing.T) {
	s, svc := accountServer(t)
	asOf := time.Now().UTC()
	var evs []*portrait.Event
	for _, d := range demo.Corporate(5, 150, asOf) {
		b, _ := json.Marshal(d)
		var w struct {
			MessageID  string          `json:"messageId"`
			Type       string          `json:"type"`
			UserID     string          `json:"userId"`
			GroupID    string          `json:"groupId"`
			Event      string          `json:"event"`
			Traits     json.RawMessage `json:"traits"`
			Properties json.RawMessage `json:"properties"`
			Timestamp  time.Time       `json:"timestamp"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, &portrait.Event{MessageID: w.MessageID, Type: w.Type, Source: "crm", UserID: w.UserID, GroupID: w.GroupID,
			Name: w.Event, Traits: w.Traits, Properties: w.Properties, Timestamp: w.Timestamp, ReceivedAt: w.Timestamp})
	}
	if _, err := s.db.Append(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
	syncAccounts(t, s, svc)
	won := map[string]bool{}
	for _, id := range svc.Model.WonAccounts() {
		won[id] = true
	}

	r := s.get(t, "/v1/accounts/lookalike?limit=15")
	if r.status != http.StatusOK {
		t.Fatalf("lookalike: %d %s", r.status, r.raw)
	}
	l := r.body["lookalike"].(map[string]any)
	accs := l["accounts"].([]any)
	if r.body["seed"] != "won" || len(accs) != 15 || l["auc"].(float64) <= 0 || l["held_out"].(float64) < 2 || len(l["curve"].([]any)) == 0 {
		t.Fatalf("lookalike answer: %s", r.raw)
	}
	t.Logf("demo over HTTP: %d won seeds, AUC %.3f, precision@%v %.2f (base %.3f)", len(won), l["auc"], l["held_out"], l["precision_at_k"], l["base_rate"])
	for _, a := range accs {
		a := a.(map[string]any)
		if won[a["id"].(string)] {
			t.Errorf("a seed (won account) returned: %v", a["id"])
		}
		if rs, _ := a["reasons"].([]any); len(rs) == 0 {
			t.Errorf("%v without reasons", a["id"])
		}
	}

	// Seeds by key: ten demo companies by their groupId.
	var keys []string
	for _, g := range []string{"0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0011", "0012"} {
		keys = append(keys, "group:corp-"+g)
	}
	r = s.get(t, "/v1/accounts/lookalike?seed="+strings.Join(keys, ",")+"&limit=5")
	if r.status != http.StatusOK || r.body["lookalike"].(map[string]any)["seed_size"] != 11.0 {
		t.Fatalf("lookalike of keys: %d %s", r.status, r.raw)
	}
	for _, c := range []struct {
		path   string
		status int
		says   string
	}{
		{"/v1/accounts/lookalike?seed=" + strings.Join(keys[:3], ","), 400, "at least 10"},
		{"/v1/accounts/lookalike?seed=group:nobody", 404, "group:nobody"},
		{"/v1/accounts/lookalike?seed=acc_nobody," + strings.Join(keys, ","), 404, "acc_nobody"},
		{"/v1/accounts/lookalike?limit=5000", 400, "limit"},
		{"/v1/accounts/lookalike?hold_out=2", 400, "hold_out"},
	} {
		r := s.get(t, c.path)
		if r.status != c.status || !strings.Contains(string(r.raw), c.says) {
			t.Errorf("%s: %d %s", c.path, r.status, r.raw)
		}
	}
}
