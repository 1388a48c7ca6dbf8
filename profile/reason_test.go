package profile

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Each reason is built as the replay builds it ("made in the " + b.replay),
// so a change of wording there that the patterns miss fails here.
func TestReasonCode(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	made := func(replay string) string { return "made in the " + replay }
	cases := []struct {
		reason, idType, code string
		params               map[string]any
	}{
		{"", "email", "shared_identifier", map[string]any{"type": "email"}},
		{made(fmt.Sprintf("replay for %d late event(s) from %s on", 3, at.Format(time.RFC3339))), "", "replay_late", map[string]any{"n": 3, "from": "2026-03-01T08:00:00Z"}},
		{made(fmt.Sprintf("replay of %d profile(s)", 2)), "", "replay_profiles", map[string]any{"n": 2}},
		{made("replay without event m-1"), "", "replay_without_event", map[string]any{"message_id": "m-1"}},
		{made("replay under the decisions carried forward by m-2"), "", "replay_carried_forward", map[string]any{"message_id": "m-2"}},
		{made("replay under split m-3"), "", "replay_split", map[string]any{"message_id": "m-3"}},
		{made("replay after split m-4 was undone"), "", "replay_split_undone", map[string]any{"message_id": "m-4"}},
		{"something else", "email", "", nil},
		{"", "", "", nil},
	}
	for _, c := range cases {
		code, ps := ReasonCode(c.reason, c.idType)
		if code != c.code || !reflect.DeepEqual(ps, c.params) {
			t.Errorf("ReasonCode(%q, %q) = %q %v, want %q %v", c.reason, c.idType, code, ps, c.code, c.params)
		}
	}
}
