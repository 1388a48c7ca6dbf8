package http_test

import (
	"fmt"
	"net/url"
	"testing"
)

// An undo answers once its event is applied: the page that reloads the
// profile right after the answer sees the profiles apart and the split in
// the journal, with no wait of its own (the 360 page raced the processor
// and showed the merge still there). The answer names the profile that
// holds the page's customer; a re-merge answers the same way.
func TestUndoAnswersWhenApplied(t *testing.T) {
	s := linkServer(t, []string{"name", "email", "phone"})
	s.post(t, "/v1/identify", `{"anonymousId":"tablet-1","messageId":"c-1","timestamp":"2026-03-01T08:00:00Z","traits":{"name":"李娜"}}`)
	s.post(t, "/v1/identify", `{"userId":"u-7","messageId":"c-2","timestamp":"2026-03-01T09:00:00Z","traits":{"name":"王芳"}}`)
	s.post(t, "/v1/track", `{"anonymousId":"tablet-1","userId":"u-7","event":"Order Completed","messageId":"c-3","timestamp":"2026-03-01T10:00:00Z"}`)
	s.settle(t)
	lookup := func(typ, v string) string {
		t.Helper()
		r := s.get(t, "/v1/profiles/lookup?type="+typ+"&value="+url.QueryEscape(v))
		if r.status != 200 {
			t.Fatalf("lookup %s %s: %d %s", typ, v, r.status, r.raw)
		}
		return r.body["id"].(string)
	}
	entry := func(id, kind string) map[string]any {
		t.Helper()
		for _, m := range s.get(t, "/v1/profiles/"+id+"/merges").body["merges"].([]any) {
			if m := m.(map[string]any); m["kind"] == kind {
				return m
			}
		}
		return nil
	}
	merged := lookup("user_id", "u-7")
	m := entry(merged, "merged")
	if m == nil {
		t.Fatal("no merge in the journal")
	}
	r := s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", merged, int64(m["id"].(float64))))
	if r.status != 200 || r.body["applied"] != true {
		t.Fatalf("undo: %d %s", r.status, r.raw)
	}
	// No settle: the answer came after the split was applied.
	dev, acct := lookup("anonymous_id", "tablet-1"), lookup("user_id", "u-7")
	if dev == acct {
		t.Fatal("the profiles are still merged when the undo answers")
	}
	if r.body["profile"] != dev && r.body["profile"] != acct {
		t.Errorf("the answer names profile %v, neither side (%s, %s)", r.body["profile"], dev, acct)
	}
	side := acct
	split := entry(acct, "split")
	if split == nil {
		side, split = dev, entry(dev, "split")
	}
	if split == nil {
		t.Fatal("no split in either journal when the undo answers")
	}

	// The split undone: merged again when the answer comes.
	r = s.admin(t, "POST", fmt.Sprintf("/v1/profiles/%s/merges/%d/undo", side, int64(split["id"].(float64))))
	if r.status != 200 || r.body["applied"] != true {
		t.Fatalf("undo of the split: %d %s", r.status, r.raw)
	}
	one := lookup("user_id", "u-7")
	if lookup("anonymous_id", "tablet-1") != one {
		t.Fatal("not merged again when the undo of the split answers")
	}
	if r.body["profile"] != one {
		t.Errorf("the answer names profile %v, want the merged %s", r.body["profile"], one)
	}
}
