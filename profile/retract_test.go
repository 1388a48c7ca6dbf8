package profile_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/portrait-cdp/portrait"
)

// linkEvent is what record linkage appends to merge two profiles: an event
// carrying one identifier of each.
func linkEvent(msg string, at time.Duration, a, b portrait.Identifier) *portrait.Event {
	ctx, _ := json.Marshal(map[string]any{"externalIds": []map[string]string{{"id": a.Value, "type": a.Type}, {"id": b.Value, "type": b.Type}}})
	return &portrait.Event{MessageID: msg, Type: portrait.EventIdentify, Source: "linkage", Context: ctx, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
}

func retractEvent(msg string, at time.Duration, target string) *portrait.Event {
	props, _ := json.Marshal(map[string]string{"message_id": target})
	return &portrait.Event{MessageID: msg, Type: portrait.EventRetract, Source: "linkage", Properties: props, Timestamp: t0.Add(at), ReceivedAt: t0.Add(at)}
}

// A retracted link undoing its merge is storetest's RetractUndoesALinkMerge
// (both stores); here, the retract that arrives before its target.
func TestRetractBeforeItsTargetArrives(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir())
	a := portrait.Identifier{Type: "user_id", Value: "u1"}
	b := portrait.Identifier{Type: "user_id", Value: "u2"}
	e.send(t, retractEvent("undo", 2*time.Hour, "link"))
	e.catchUp(t)
	e.send(t, ev("m1", "identify", "u1", "", 0, ""), ev("m2", "identify", "", "x", 0, `{"crm_id":"K"}`), linkEvent("link", time.Hour, a, portrait.Identifier{Type: "crm_id", Value: "K"}))
	e.catchUp(t)
	pa, _ := e.db.ProfileByIdentifier(ctx, a)
	pk, _ := e.db.ProfileByIdentifier(ctx, portrait.Identifier{Type: "crm_id", Value: "K"})
	if pa.ID == pk.ID {
		t.Error("an event retracted before it arrived was applied")
	}
	_ = b
}
