package portrait

import "testing"

// The router holds two generations of anonymous ids: an id used again
// survives a turnover, one not seen for two turnovers is forgotten (its
// events go back to the anonymous id's partition, which is correct, only
// slower).
func TestRouterForgetsTheOldestHalf(t *testing.T) {
	r := NewRouter(2)
	seen := func(anon, user string) { r.Key(&Event{AnonymousID: anon, UserID: user}) }
	key := func(anon string) string { return r.Key(&Event{AnonymousID: anon}) }
	seen("a1", "u1")
	seen("a2", "u2")
	seen("a3", "u3") // turnover: a1, a2 in the old generation
	if k := key("a1"); k != "u:u1" {
		t.Fatalf("a1 after one turnover: %s", k)
	}
	seen("a4", "u4") // turnover: a2 gone; a1 (used again) and a3 kept
	seen("a5", "u5")
	if k := key("a2"); k != "a:a2" {
		t.Errorf("a2 after two turnovers: %s, want its own key", k)
	}
	if k := key("a4"); k != "u:u4" {
		t.Errorf("a4: %s", k)
	}
	if k := key("a9"); k != "a:a9" {
		t.Errorf("a never seen: %s", k)
	}
	if k := r.Key(&Event{UserID: "u7", AnonymousID: "a1"}); k != "u:u7" {
		t.Errorf("an event with a user id: %s", k)
	}
	if k := key("a1"); k != "u:u7" {
		t.Errorf("a1 seen last with u7: %s", k)
	}
}
