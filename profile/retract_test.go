package profile_test

import (
	"context"
	"encoding/json"
	"reflect"
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

func TestRetractUndoesALinkMerge(t *testing.T) {
	ctx := context.Background()
	e := open(t, t.TempDir())
	a := portrait.Identifier{Type: "crm_id", Value: "C-1"}
	b := portrait.Identifier{Type: "email", Value: "wang.fang@example.com"}
	e.send(t,
		ev("m1", "identify", "", "dev-1", 0, `{"crm_id":"C-1","name":"王芳"}`),
		ev("m2", "identify", "", "dev-2", time.Minute, `{"email":"wang.fang@example.com","city":"杭州市"}`),
	)
	e.catchUp(t)
	before := e.snapshot(t)
	e.send(t, linkEvent("link-1", time.Hour, a, b))
	e.catchUp(t)
	pa, _ := e.db.ProfileByIdentifier(ctx, a)
	pb, _ := e.db.ProfileByIdentifier(ctx, b)
	if pa == nil || pb == nil || pa.ID != pb.ID {
		t.Fatal("the link event did not merge the two profiles")
	}
	e.send(t, retractEvent("undo-1", 2*time.Hour, "link-1"))
	e.catchUp(t)
	pa, _ = e.db.ProfileByIdentifier(ctx, a)
	pb, _ = e.db.ProfileByIdentifier(ctx, b)
	if pa.ID == pb.ID {
		t.Fatal("the retract did not split the profiles")
	}
	if after := e.snapshot(t); !reflect.DeepEqual(after, before) {
		t.Errorf("after undo the profiles differ from before the link:\n%v\n%v", after, before)
	}
	merges, _ := e.db.ProfileMerges(ctx, pa.ID)
	found := false
	for _, m := range merges {
		found = found || (m.Kind == portrait.MergeRetracted && m.MessageID == "link-1")
	}
	if !found {
		t.Errorf("the undo is not journalled: %+v", merges)
	}
}

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
